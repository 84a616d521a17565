//! Shared test support: journals on both backends, plan helpers.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod monitoring;
pub mod netns;
pub mod serve;
pub mod servers;

use lifeboat::engine::runner::{self, NewRun, RunOptions, RunReport};
use lifeboat::journal::{Event, Journal};
use std::sync::Arc;

/// A journal under test and what backs it.
pub struct TestJournal {
    pub name: &'static str,
    pub url: String,
    pub journal: Journal,
    _dir: Option<tempfile::TempDir>,
}

/// Every backend the suite runs against: SQLite always; PostgreSQL when
/// `LIFEBOAT_TEST_POSTGRES_URL` names a server (scripts/test.sh starts one). Under CI the
/// PostgreSQL server is mandatory, so a broken set-up cannot pass by skipping.
pub async fn journals() -> Vec<TestJournal> {
    let mut out = vec![sqlite().await];
    match std::env::var("LIFEBOAT_TEST_POSTGRES_URL") {
        Ok(admin) => out.push(postgres(&admin).await),
        Err(_) if std::env::var("CI").is_ok() => panic!("CI must run against PostgreSQL too: run the suite through scripts/test.sh"),
        Err(_) => eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; testing the SQLite journal only (scripts/test.sh tests both)"),
    }
    out
}

pub async fn sqlite() -> TestJournal {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("state.db").display().to_string();
    let journal = Journal::open(&url).await.unwrap();
    TestJournal {
        name: "sqlite",
        url,
        journal,
        _dir: Some(dir),
    }
}

/// A fresh database on the test server, so tests never see each other's runs.
pub async fn postgres(admin_url: &str) -> TestJournal {
    use sqlx::Connection;
    let db = format!("lb_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').expect("URL ends with /dbname");
    let url = format!("{base}/{db}");
    let journal = Journal::open(&url).await.unwrap();
    TestJournal {
        name: "postgres",
        url,
        journal,
        _dir: None,
    }
}

/// A plan `name` that freezes process `pid` (SIGSTOP, reverted by SIGCONT) and then soaks.
pub fn freeze_plan(name: &str, pid: u32) -> String {
    format!(
        "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: {name}
spec:
  steps:
    - id: freeze
      kind: chaos.process_kill
      with: {{ pid: {pid}, signal: STOP, duration: 1h }}
    - id: soak
      kind: sleep
      needs: [freeze]
      with: {{ duration: 5m }}
"
    )
}

/// A drill `name` judged against an RTO of 5 minutes: the disaster, `recover` (a sleep of
/// `recover_for`, which may be an expression), then the recovered mark. `params` is the
/// plan's `params:` block, indented under `spec:`, or "".
pub fn timed_drill(name: &str, recover_for: &str, params: &str) -> String {
    format!(
        "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: {name}
spec:
  objectives: {{ rto: 5m }}
{params}  steps:
    - id: outage
      kind: exec
      mark: disaster
      with: {{ command: [\"true\"] }}
    - id: recover
      kind: sleep
      needs: [outage]
      with: {{ duration: \"{recover_for}\" }}
    - id: healthy
      kind: exec
      needs: [recover]
      mark: recovered
      with: {{ command: [\"true\"] }}
"
    )
}

/// The state letter of process `pid` (`T` when stopped).
pub fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.trim_start().chars().next().unwrap()
}

/// A tool scripts/test.sh installs, named by its environment variable: CI must have it;
/// elsewhere the test goes without (and says so).
pub fn installed_tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(path) => Some(path),
        Err(_) if std::env::var("CI").is_ok() => panic!("CI must have {var}: run the suite through scripts/test.sh"),
        Err(_) => {
            eprintln!("note: {var} unset; going without it (scripts/test.sh installs it)");
            None
        }
    }
}

pub fn compile(source: &str) -> lifeboat::plan::CompiledPlan {
    match lifeboat::plan::compile("test.yaml", source, lifeboat::steps::catalog()) {
        Ok(p) => p,
        Err(d) => panic!("plan does not compile:\n{}", lifeboat::plan::diagnostic::render_all(&d, source)),
    }
}

/// Wraps steps (YAML, indented for `spec:`) into a plan document.
pub fn plan(name: &str, spec_body: &str) -> String {
    format!("apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: {name}\nspec:\n{spec_body}")
}

pub async fn run(journal: &Journal, source: &str) -> RunReport {
    try_run(journal, source).await.expect("run starts")
}

pub async fn try_run(journal: &Journal, source: &str) -> Result<RunReport, runner::EngineError> {
    try_run_with(journal, source, &[]).await
}

/// Runs a plan with `--param name=value`s.
pub async fn run_with(journal: &Journal, source: &str, params: &[(&str, &str)]) -> RunReport {
    try_run_with(journal, source, params).await.expect("run starts")
}

pub async fn try_run_with(journal: &Journal, source: &str, params: &[(&str, &str)]) -> Result<RunReport, runner::EngineError> {
    let plan = compile(source);
    let given = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let params = lifeboat::plan::params::resolve(&plan, &given).expect("params resolve");
    runner::start(
        journal,
        NewRun {
            plan_file: "test.yaml".into(),
            plan_source: source.into(),
            plan: Arc::new(plan),
            params,
        },
        &RunOptions::default(),
    )
    .await
}

pub async fn events(journal: &Journal, run_id: &str) -> Vec<Event> {
    journal.events(run_id).await.unwrap().into_iter().map(|r| r.event).collect()
}

/// The outputs the journal recorded for a step's success.
pub fn outputs_of(events: &[Event], id: &str) -> serde_json::Map<String, serde_json::Value> {
    events
        .iter()
        .find_map(|e| match e {
            Event::StepSucceeded { step, outputs, .. } if step == id => Some(outputs.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("step {id} did not succeed"))
}

/// The error of the first failed attempt.
pub fn first_error(events: &[Event]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            Event::StepFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("an attempt failed")
}

/// The ids of steps in the order they were started (each attempt once).
pub fn started(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::StepStarted { step, .. } = e {
                Some(step.clone())
            } else {
                None
            }
        })
        .collect()
}

pub fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn process_alive(pid: i32) -> bool {
    // A zombie still has /proc/<pid>; only a running or sleeping process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Answers every connection on `listener` with `greeting`, then closes it (on a thread).
pub fn serve_greeting(listener: std::net::TcpListener, greeting: &'static str) {
    use std::io::Write;
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(greeting.as_bytes());
        }
    });
}

/// A loopback server that answers every connection with `greeting`.
pub fn greeter(greeting: &'static str) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    serve_greeting(listener, greeting);
    addr
}

/// What the server at `addr` says on connecting (an error when it cannot be reached).
pub fn greeting(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

//! Kills `lifeboat run` / `lifeboat resume` with SIGKILL at random moments and resumes
//! until the run finishes, over several runs. Every execution of a step takes an exclusive
//! `flock` on a file of its own step for as long as anything of it lives (its shell and the
//! `sleep` it starts share the descriptor), and records its start and end: an execution that
//! finds the lock taken ran beside an earlier one of the same step, so the test sees any
//! overlap, even with an execution killed before it could record its end. The journal must
//! keep completed steps from ever running again, and a resume must stop what is left of an
//! interrupted attempt before it runs the step again.

mod support;

use lifeboat::journal::{Event, RunStatus};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills per journal backend; the suite runs both, so at least twice this in all.
const KILLS: usize = 60;
const STEPS: usize = 24;

fn plan_source(dir: &std::path::Path) -> String {
    // 4 layers × 6 steps, each needing two steps of the layer before, concurrency 3. Each
    // execution holds its step's lock while it lives and takes a while, so kills land mid-step.
    let script = format!(
        "exec 9>>{dir}/$LIFEBOAT_STEP_ID.lock; \
         if ! flock -n 9; then echo \"overlap $LIFEBOAT_STEP_ID $$\" >> {dir}/overlaps.log; exit 3; fi; \
         echo \"start $LIFEBOAT_STEP_ID $$ $(date +%s%N) $LIFEBOAT_IDEMPOTENCY_KEY\" >> {dir}/executions.log; \
         sleep 0.$(( $$ % 3 + 2 )); \
         echo \"end $LIFEBOAT_STEP_ID $$ $(date +%s%N)\" >> {dir}/executions.log",
        dir = dir.display()
    );
    let mut steps = String::new();
    for layer in 0..STEPS / 6 {
        for j in 0..6 {
            let needs = if layer == 0 {
                String::new()
            } else {
                format!("\n      needs: [s{}-{}, s{}-{}]", layer - 1, j, layer - 1, (j + 1) % 6)
            };
            steps.push_str(&format!(
                "    - id: s{layer}-{j}\n      kind: exec{needs}\n      with:\n        command: [\"sh\", \"-c\", {script:?}]\n"
            ));
        }
    }
    support::plan(
        "crash-resume",
        &format!("  concurrency: 3\n  lock: crash-resume\n  steps:\n{steps}"),
    )
}

fn lifeboat(state: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    c.arg("--state").arg(state).args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn kill(mut child: Child) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

/// One execution of a step, from the log.
#[derive(Debug)]
struct Execution {
    step: String,
    pid: u32,
    key: String,
    start: u128,
    end: Option<u128>,
}

fn executions(log: &std::path::Path) -> Vec<Execution> {
    let mut out: Vec<Execution> = Vec::new();
    for line in support::lines(log) {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["start", step, pid, at, key] => out.push(Execution {
                step: step.to_string(),
                pid: pid.parse().unwrap(),
                key: key.to_string(),
                start: at.parse().unwrap(),
                end: None,
            }),
            ["end", step, pid, at] => {
                let e = out
                    .iter_mut()
                    .find(|e| e.step == *step && e.pid.to_string() == *pid && e.end.is_none())
                    .expect("an end follows its start");
                e.end = Some(at.parse().unwrap());
            }
            _ => panic!("unexpected log line `{line}`"),
        }
    }
    out
}

/// Runs the plan until it finishes, killing the engine at random moments; returns the run
/// id and how many kills happened.
async fn crash_and_resume_one_run(
    tj: &support::TestJournal,
    plan_file: &std::path::Path,
    rng: &mut rand::rngs::StdRng,
    kills_left: usize,
) -> (String, usize) {
    let known: Vec<String> = tj.journal.runs(None, 1000).await.unwrap().into_iter().map(|r| r.id).collect();
    let child = lifeboat(&tj.url, &["run", plan_file.to_str().unwrap()]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let run_id = loop {
        assert!(Instant::now() < deadline, "the run never appeared in the journal");
        let runs = tj.journal.runs(None, 1000).await.unwrap();
        if let Some(r) = runs.into_iter().find(|r| !known.contains(&r.id)) {
            break r.id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    kill(child);
    let mut kills = 1;
    for _ in 0..500 {
        let row = tj.journal.run(&run_id).await.unwrap();
        if row.status != RunStatus::Running {
            return (run_id, kills);
        }
        assert!(row.is_interrupted(), "after SIGKILL the run must show as interrupted");
        let child = lifeboat(&tj.url, &["resume", &run_id]).spawn().unwrap();
        if kills < kills_left {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
            kill(child);
            kills += 1;
        } else {
            let status = wait_with_timeout(child, Duration::from_secs(120));
            assert!(status.success(), "the final resume failed: {status:?}");
        }
    }
    panic!("run {run_id} did not finish");
}

async fn crash_and_resume_until_done(tj: support::TestJournal) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.yaml");
    std::fs::write(&plan_file, plan_source(dir.path())).unwrap();
    let seed: u64 = std::env::var("LIFEBOAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{}: crash seed {seed} (set LIFEBOAT_CRASH_SEED to replay)", tj.name);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut kills = 0;
    let mut runs = Vec::new();
    while kills < KILLS {
        let (run_id, k) = crash_and_resume_one_run(&tj, &plan_file, &mut rng, KILLS - kills).await;
        kills += k;
        runs.push(run_id);
    }

    let overlaps = support::lines(&dir.path().join("overlaps.log"));
    assert_eq!(
        overlaps,
        Vec::<String>::new(),
        "{}: executions of a step ran beside an earlier one",
        tj.name
    );
    let all = executions(&dir.path().join("executions.log"));
    let mut reexecutions = 0;
    for run_id in &runs {
        let row = tj.journal.run(run_id).await.unwrap();
        assert_eq!(row.status, RunStatus::Succeeded, "{}: run {run_id}", tj.name);
        let events: Vec<Event> = support::events(&tj.journal, run_id).await;
        let mut succeeded: BTreeMap<String, usize> = BTreeMap::new();
        let mut reruns: BTreeMap<String, usize> = BTreeMap::new();
        for e in &events {
            match e {
                Event::StepSucceeded { step, .. } => *succeeded.entry(step.clone()).or_default() += 1,
                Event::RunResumed { rerun, .. } => {
                    for s in rerun {
                        *reruns.entry(s.clone()).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(succeeded.len(), STEPS, "every step succeeded");
        assert!(succeeded.values().all(|&n| n == 1), "a step succeeded twice: {succeeded:?}");
        let mut by_step: BTreeMap<&str, Vec<&Execution>> = BTreeMap::new();
        for e in all.iter().filter(|e| e.key.starts_with(run_id.as_str())) {
            assert_eq!(
                e.key,
                format!("{run_id}/{}", e.step),
                "the idempotency key names the run and the step"
            );
            by_step.entry(&e.step).or_default().push(e);
        }
        assert_eq!(by_step.len(), STEPS, "every step ran");
        for (step, runs_of_step) in &by_step {
            let interrupted = reruns.get(*step).copied().unwrap_or(0);
            // Once, plus once more for each time it was killed mid-flight and run again.
            assert!(
                runs_of_step.len() <= 1 + interrupted,
                "{step} ran {} times but was interrupted only {interrupted} times",
                runs_of_step.len()
            );
            reexecutions += runs_of_step.len() - 1;
            // Executions that recorded their end must not overlap the next one.
            for pair in runs_of_step.windows(2) {
                if let Some(end) = pair[0].end {
                    assert!(end <= pair[1].start, "{}: {step} ran twice at once: {pair:?}", tj.name);
                }
            }
        }
    }
    eprintln!(
        "{}: {} runs, {kills} kills, {reexecutions} re-executions, {} overlapping",
        tj.name,
        runs.len(),
        overlaps.len()
    );
    kills
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            kill(child);
            panic!("lifeboat resume did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_never_loses_repeats_or_overlaps_work() {
    let mut kills = 0;
    for tj in support::journals().await {
        kills += crash_and_resume_until_done(tj).await;
    }
    assert!(kills >= KILLS, "only {kills} kills happened");
}

/// The run's TCP endpoint dies with a killed engine; the resumed run serves it again on
/// the same address, pointed where the run last pointed it, and stops it at the run's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_serves_its_endpoint_again_where_it_was_last_pointed() {
    let (a, b) = (support::greeter("A"), support::greeter("B"));
    let tj = support::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.yaml");
    std::fs::write(
        &plan_file,
        support::plan(
            "endpoint-resume",
            &format!(
                "  steps:\n    - id: endpoint\n      kind: traffic.proxy\n      with: {{ proxy: db, upstream: \"{a}\" }}\n    \
                 - id: switch\n      kind: traffic.proxy\n      needs: [endpoint]\n      with: {{ proxy: db, upstream: \"{b}\" }}\n    \
                 - id: work\n      kind: exec\n      needs: [switch]\n      with: {{ command: [sleep, \"3\"] }}\n"
            ),
        ),
    )
    .unwrap();
    let first = lifeboat(&tj.url, &["run", plan_file.to_str().unwrap()]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (run_id, endpoint) = loop {
        assert!(Instant::now() < deadline, "the switch step never succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(run) = tj.journal.runs(None, 1).await.unwrap().pop() else {
            continue;
        };
        let events = support::events(&tj.journal, &run.id).await;
        if events
            .iter()
            .any(|e| matches!(e, Event::StepSucceeded { step, .. } if step == "switch"))
        {
            let port = support::outputs_of(&events, "endpoint")["listen_port"].as_u64().unwrap() as u16;
            break (run.id, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        }
    };
    assert_eq!(support::greeting(endpoint).unwrap(), "B", "before the kill the endpoint leads to B");
    kill(first);
    assert!(support::greeting(endpoint).is_err(), "the endpoint died with the engine");

    let resumed = lifeboat(&tj.url, &["resume", &run_id]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let served = loop {
        match support::greeting(endpoint) {
            Ok(text) => break Some(text),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break None,
        }
    };
    let status = wait_with_timeout(resumed, Duration::from_secs(30));
    assert!(status.success(), "the resumed run failed");
    assert_eq!(served.as_deref(), Some("B"), "the resumed run serves the endpoint, pointed at B");
    assert!(support::greeting(endpoint).is_err(), "the endpoint stops with the run");
}

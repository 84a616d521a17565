//! Kills `lifeboat run` / `lifeboat resume` with SIGKILL at random moments and resumes
//! until the run finishes. Every step appends `<step id> <idempotency key>` to a file;
//! the journal must keep completed steps from ever running again.

mod support;

use lifeboat::journal::{Event, RunStatus};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: usize = 24;

fn plan_source(log: &std::path::Path) -> String {
    // 5 layers × 6 steps, each needing two steps of the layer before; every step records
    // itself at its start and then takes a little while, so kills land mid-step too.
    let mut steps = String::new();
    for layer in 0..5 {
        for j in 0..6 {
            let needs = if layer == 0 {
                String::new()
            } else {
                format!("\n      needs: [s{}-{}, s{}-{}]", layer - 1, j, layer - 1, (j + 1) % 6)
            };
            steps.push_str(&format!(
                "    - id: s{layer}-{j}\n      kind: exec{needs}\n      with:\n        command: [\"sh\", \"-c\", \"echo \\\"$LIFEBOAT_STEP_ID $LIFEBOAT_IDEMPOTENCY_KEY\\\" >> {log}; sleep 0.$(( $$ % 2 + 2 ))\"]\n",
                log = log.display()
            ));
        }
    }
    support::plan(
        "crash-resume",
        &format!("  concurrency: 2\n  lock: crash-resume\n  steps:\n{steps}"),
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

async fn crash_and_resume_until_done(tj: support::TestJournal) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("steps.log");
    let plan_file = dir.path().join("plan.yaml");
    std::fs::write(&plan_file, plan_source(&log)).unwrap();
    let seed: u64 = std::env::var("LIFEBOAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{}: crash seed {seed} (set LIFEBOAT_CRASH_SEED to replay)", tj.name);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // First start, killed early; the run id comes from the journal.
    let child = lifeboat(&tj.url, &["run", plan_file.to_str().unwrap()]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let run_id = loop {
        assert!(Instant::now() < deadline, "the run never appeared in the journal");
        if let Some(r) = tj.journal.runs(None, 1).await.unwrap().first() {
            break r.id.clone();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
    kill(child);

    let mut kills = 1;
    let mut finished = false;
    for _ in 0..200 {
        let row = tj.journal.run(&run_id).await.unwrap();
        if row.status != RunStatus::Running {
            finished = true;
            break;
        }
        assert!(row.is_interrupted(), "after SIGKILL the run must show as interrupted");
        let child = lifeboat(&tj.url, &["resume", &run_id]).spawn().unwrap();
        if kills < KILLS {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
            kill(child);
            kills += 1;
        } else {
            let status = wait_with_timeout(child, Duration::from_secs(60));
            assert!(status.success(), "the final resume failed: {status:?}");
        }
    }
    assert!(finished, "the run did not finish");
    assert!(kills >= 20, "only {kills} kills happened");
    // Orphaned step processes of killed engines may still be writing; let them finish.
    std::thread::sleep(Duration::from_millis(300));

    let row = tj.journal.run(&run_id).await.unwrap();
    assert_eq!(row.status, RunStatus::Succeeded, "{}", tj.name);
    let events: Vec<Event> = support::events(&tj.journal, &run_id).await;
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
    assert_eq!(succeeded.len(), 30, "every step succeeded");
    assert!(succeeded.values().all(|&n| n == 1), "a step succeeded twice: {succeeded:?}");

    let mut appearances: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in support::lines(&log) {
        let (step, key) = line.split_once(' ').expect("`step key` lines");
        appearances.entry(step.to_owned()).or_default().push(key.to_owned());
    }
    assert_eq!(appearances.len(), 30, "every step ran");
    for (step, keys) in &appearances {
        let interrupted = reruns.get(step).copied().unwrap_or(0);
        // Once, plus once more for each time it was killed mid-flight and run again.
        assert!(
            keys.len() <= 1 + interrupted,
            "{step} ran {} times but was interrupted only {interrupted} times",
            keys.len()
        );
        let expected_key = format!("{run_id}/{step}");
        assert!(
            keys.iter().all(|k| *k == expected_key),
            "{step} got keys {keys:?}, expected {expected_key}"
        );
    }
    let repeated = appearances.values().filter(|k| k.len() > 1).count();
    eprintln!(
        "{}: {kills} kills, {} resumes listed interrupted steps, {repeated} steps ran twice",
        tj.name,
        reruns.values().sum::<usize>()
    );
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
async fn sigkill_at_random_moments_never_loses_or_repeats_completed_work() {
    for tj in support::journals().await {
        crash_and_resume_until_done(tj).await;
    }
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

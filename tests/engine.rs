//! Executor behaviour against real processes and both journal backends: retries,
//! timeouts, on_failure modes, compensation order, abort + finally, approvals, locks,
//! secrets.

mod support;

use lifeboat::engine::runner::EngineError;
use lifeboat::journal::{Event, RunStatus};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn retries_with_backoff_until_success_and_journals_every_attempt() {
    for tj in journals().await {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("count");
        let source = plan(
            "retry",
            &format!(
                r#"  steps:
    - id: flaky
      kind: exec
      retry: {{ attempts: 4, backoff: 50ms, max_backoff: 200ms }}
      with:
        command: ["sh", "-c", "echo x >> {c}; test $(wc -l < {c}) -ge 3"]
"#,
                c = counter.display()
            ),
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{}", tj.name);
        let events = events(&tj.journal, &report.run_id).await;
        let attempts: Vec<u32> = events
            .iter()
            .filter_map(|e| {
                if let Event::StepStarted { attempt, .. } = e {
                    Some(*attempt)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(attempts, [1, 2, 3], "{}", tj.name);
        let retry_waits: Vec<Option<u64>> = events
            .iter()
            .filter_map(|e| {
                if let Event::StepFailed { retry_in_ms, .. } = e {
                    Some(*retry_in_ms)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(retry_waits.len(), 2);
        assert!(
            retry_waits.iter().all(|w| w.is_some_and(|ms| (25..=200).contains(&ms))),
            "{retry_waits:?}"
        );
        assert_eq!(lines(&counter).len(), 3);
    }
}

#[tokio::test]
async fn gives_up_after_the_retry_budget_and_fails_the_run() {
    for tj in journals().await {
        let source = plan(
            "budget",
            "  steps:\n    - id: never\n      kind: exec\n      retry: { attempts: 2, backoff: 10ms }\n      with: { command: [\"false\"] }\n",
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(started(&events(&tj.journal, &report.run_id).await).len(), 2);
    }
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let tj = sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let source = plan(
        "timeout",
        &format!(
            "  steps:\n    - id: hang\n      kind: exec\n      timeout: 300ms\n      with:\n        command: [\"sh\", \"-c\", \"sleep 30 & echo $! > {}; wait\"]\n        kill_grace: 200ms\n",
            pidfile.display()
        ),
    );
    let report = run(&tj.journal, &source).await;
    assert_eq!(report.status, RunStatus::Failed);
    let failure = first_error(&events(&tj.journal, &report.run_id).await);
    assert!(failure.contains("timed out after 300ms"), "{failure}");
    let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(
        !process_alive(grandchild),
        "the background `sleep` started by the step survived the timeout"
    );
}

#[tokio::test]
async fn continue_lets_dependants_run_and_the_run_succeed() {
    for tj in journals().await {
        let source = plan(
            "cont",
            "  steps:\n    - id: optional\n      kind: exec\n      on_failure: continue\n      with: { command: [\"false\"] }\n    - id: after\n      kind: exec\n      needs: [optional]\n      with: { command: [\"echo\", \"${{ steps.optional.outcome }}\"] }\n",
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::Succeeded);
        let events = events(&tj.journal, &report.run_id).await;
        let out = outputs_of(&events, "after")["stdout"].clone();
        assert_eq!(out, "failed (tolerated)\n");
    }
}

#[tokio::test]
async fn rollback_compensates_completed_steps_in_reverse_completion_order_then_runs_finally() {
    for tj in journals().await {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let l = log.display();
        let step = |id: &str, needs: &str| {
            format!(
                "    - id: {id}\n      kind: exec\n      needs: [{needs}]\n      with: {{ command: [\"sh\", \"-c\", \"echo do-{id} >> {l}\"] }}\n      compensate:\n        kind: exec\n        with: {{ command: [\"sh\", \"-c\", \"echo undo-{id}:${{{{ steps.{id}.outputs.exit_code }}}} >> {l}\"] }}\n"
            )
        };
        let source = plan(
            "rollback",
            &format!(
                "  steps:\n{}{}{}    - id: breaks\n      kind: exec\n      needs: [c]\n      on_failure: rollback\n      with: {{ command: [\"false\"] }}\n    - id: never\n      kind: exec\n      needs: [breaks]\n      with: {{ command: [\"true\"] }}\n  finally:\n    - id: last\n      kind: exec\n      with: {{ command: [\"sh\", \"-c\", \"echo finally >> {l}\"] }}\n",
                step("a", ""),
                step("b", "a"),
                step("c", "b"),
            ),
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::RolledBack, "{}: {:?}", tj.name, report.reason);
        assert_eq!(lines(&log), ["do-a", "do-b", "do-c", "undo-c:0", "undo-b:0", "undo-a:0", "finally"]);
        let events = events(&tj.journal, &report.run_id).await;
        assert!(events.iter().any(|e| matches!(e, Event::RollbackStarted { .. })));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::StepSkipped { step, .. } if step == "never"))
        );
        let compensated: Vec<&str> = events
            .iter()
            .filter_map(|e| {
                if let Event::CompensationSucceeded { step, .. } = e {
                    Some(step.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(compensated, ["c", "b", "a"]);
    }
}

#[tokio::test]
async fn abort_cancels_running_steps_kills_their_processes_and_still_runs_finally() {
    for tj in journals().await {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let marker = dir.path().join("finally-ran");
        let source = plan(
            "abort",
            &format!(
                "  steps:\n    - id: long\n      kind: exec\n      with: {{ command: [\"sh\", \"-c\", \"echo $$ > {p}; exec sleep 60\"] }}\n    - id: after\n      kind: exec\n      needs: [long]\n      with: {{ command: [\"true\"] }}\n  finally:\n    - id: cleanup\n      kind: exec\n      with: {{ command: [\"touch\", \"{m}\"] }}\n",
                p = pidfile.display(),
                m = marker.display()
            ),
        );
        let journal = tj.journal.clone();
        let handle = tokio::spawn(async move { run(&journal, &source).await });
        let pid = wait_for_pid(&pidfile).await;
        let run_id = tj.journal.runs(None, 1).await.unwrap()[0].id.clone();
        tj.journal
            .post_command(&run_id, "abort", None, "tester", Some("drill over"))
            .await
            .unwrap();
        let report = tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .expect("abort takes effect")
            .unwrap();
        assert_eq!(report.status, RunStatus::Aborted, "{}", tj.name);
        assert!(marker.exists(), "finally did not run after abort");
        assert!(!process_alive(pid), "the aborted step's process is still alive");
        let events = events(&tj.journal, &report.run_id).await;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::AbortRequested { by, .. } if by == "tester"))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::StepSkipped { step, .. } if step == "after"))
        );
    }
}

/// A decision by someone not in `approvers`, posted by another writer than the CLI (which
/// refuses it), is passed over: the step waits for, and takes, the first decision by an
/// approver after it.
#[tokio::test]
async fn an_approval_passes_over_a_decision_by_someone_not_allowed_to_decide() {
    let tj = support::sqlite().await;
    let source = plan(
        "gate",
        "  steps:\n    - id: gate\n      kind: approval\n      with: { approvers: [alice] }\n",
    );
    let journal = tj.journal.clone();
    let handle = tokio::spawn(async move { run(&journal, &source).await });
    let run_id = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(r) = tj.journal.runs(None, 1).await.unwrap().first() {
            break r.id.clone();
        }
    };
    tj.journal
        .post_command(&run_id, "reject", Some("gate"), "mallory", None)
        .await
        .unwrap();
    tj.journal
        .post_command(&run_id, "approve", Some("gate"), "alice", Some("ok"))
        .await
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the approval did not wait forever")
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(outputs_of(&events(&tj.journal, &report.run_id).await, "gate")["by"], "alice");
}

async fn wait_for_pid(path: &std::path::Path) -> i32 {
    for _ in 0..200 {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the step never wrote its pid");
}

#[tokio::test]
async fn approval_waits_for_a_decision_and_records_who_and_when() {
    for tj in journals().await {
        for (decision, expected) in [("approve", RunStatus::Succeeded), ("reject", RunStatus::Failed)] {
            let source = plan(
                "gate",
                "  steps:\n    - id: gate\n      kind: approval\n      with: { message: go? }\n    - id: act\n      kind: exec\n      needs: [gate]\n      with: { command: [\"echo\", \"${{ steps.gate.outputs.by }}\"] }\n",
            );
            let journal = tj.journal.clone();
            let handle = tokio::spawn(async move { run(&journal, &source).await });
            let run_id = loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let runs = tj.journal.runs(None, 1).await.unwrap();
                if let Some(r) = runs.first().filter(|r| r.status == RunStatus::Running) {
                    break r.id.clone();
                }
            };
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(!handle.is_finished(), "the run must wait for the decision");
            tj.journal
                .post_command(&run_id, decision, Some("gate"), "alice", Some("checked dashboards"))
                .await
                .unwrap();
            let report = tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
            assert_eq!(report.status, expected, "{} {decision}", tj.name);
            let events = events(&tj.journal, &report.run_id).await;
            if decision == "approve" {
                let outputs = outputs_of(&events, "gate");
                assert_eq!(outputs["by"], "alice");
                assert_eq!(outputs["comment"], "checked dashboards");
                assert!(outputs["at"].as_str().unwrap().starts_with("20"));
            } else {
                let error = first_error(&events);
                assert_eq!(error, "rejected by alice: checked dashboards");
            }
        }
    }
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_run_and_a_dead_holders_lock_is_taken_over() {
    for tj in journals().await {
        let source = plan("locked", "  lock: db\n  steps:\n    - id: gate\n      kind: approval\n");
        let journal = tj.journal.clone();
        let first_source = source.clone();
        let first = tokio::spawn(async move { run(&journal, &first_source).await });
        let run_id = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(r) = tj.journal.runs(None, 1).await.unwrap().first() {
                break r.id.clone();
            }
        };
        match try_run(&tj.journal, &source).await {
            Err(EngineError::LockHeld { name, by_run, .. }) => {
                assert_eq!(name, "db");
                assert_eq!(by_run, run_id);
            }
            other => panic!("expected LockHeld, got {other:?}"),
        }
        tj.journal.post_command(&run_id, "approve", Some("gate"), "t", None).await.unwrap();
        assert_eq!(first.await.unwrap().status, RunStatus::Succeeded);
        // Released at the end: the next run gets it.
        let again = plan(
            "locked",
            "  lock: db\n  steps:\n    - id: ok\n      kind: exec\n      with: { command: [\"true\"] }\n",
        );
        assert_eq!(run(&tj.journal, &again).await.status, RunStatus::Succeeded);
        // A lock whose holder is not a live run is recoverable.
        tj.journal
            .create_run("ghost", "locked", Some("db"), &dead_owner(), &[])
            .await
            .unwrap();
        assert_eq!(
            tj.journal.acquire_lock("db", "ghost").await.unwrap(),
            lifeboat::journal::LockOutcome::Acquired
        );
        assert_eq!(run(&tj.journal, &again).await.status, RunStatus::Succeeded);
    }
}

fn dead_owner() -> lifeboat::journal::Owner {
    let me = lifeboat::journal::Owner::me();
    lifeboat::journal::Owner {
        started: me.started + 12345,
        ..me
    }
}

#[tokio::test]
async fn env_values_are_secrets_they_never_reach_the_journal() {
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("LIFEBOAT_TEST_SECRET", "correct-horse-battery") };
    for tj in journals().await {
        let source = plan(
            "secret",
            "  steps:\n    - id: leak\n      kind: exec\n      with:\n        command: [\"sh\", \"-c\", \"echo $PW; echo \\\"{\\\\\\\"pw\\\\\\\": \\\\\\\"$PW\\\\\\\"}\\\"; echo $PW >&2; exit 1\"]\n        env: { PW: \"${{ env.LIFEBOAT_TEST_SECRET }}\" }\n",
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::Failed);
        let stored = tj.journal.events(&report.run_id).await.unwrap();
        let all = format!("{stored:?}");
        assert!(!all.contains("correct-horse-battery"), "a secret reached the journal: {all}");
        assert!(all.contains("***"), "the failure message should show the masked secret: {all}");
    }
}

#[tokio::test]
async fn skipped_needs_skip_dependants_unless_they_opt_in() {
    for tj in journals().await {
        let source = plan(
            "skips",
            "  params:\n    region: { default: us }\n  steps:\n    - id: eu-only\n      kind: exec\n      when: params.region == 'eu'\n      with: { command: [\"true\"] }\n    - id: dependant\n      kind: exec\n      needs: [eu-only]\n      with: { command: [\"true\"] }\n    - id: tolerant\n      kind: exec\n      needs: [eu-only]\n      when_needs_skipped: run\n      with: { command: [\"true\"] }\n",
        );
        let report = run(&tj.journal, &source).await;
        assert_eq!(report.status, RunStatus::Succeeded);
        let events = events(&tj.journal, &report.run_id).await;
        let skipped: Vec<&str> = events
            .iter()
            .filter_map(|e| {
                if let Event::StepSkipped { step, .. } = e {
                    Some(step.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(skipped, ["eu-only", "dependant"]);
        assert_eq!(started(&events), ["tolerant"]);
    }
}

#[tokio::test]
async fn http_step_checks_status_body_and_json_against_a_real_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let (status, body) = if request.starts_with("GET /health") {
                    ("200 OK", r#"{"status":"ok","replicas":3}"#)
                } else {
                    ("503 Service Unavailable", "down")
                };
                let key_seen = request.to_ascii_lowercase().contains("idempotency-key:");
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-key-seen: {key_seen}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    let tj = sqlite().await;
    let ok = plan(
        "http-ok",
        &format!(
            "  steps:\n    - id: probe\n      kind: http\n      with:\n        url: http://{addr}/health\n        expect: {{ status: 200, body_regex: '\"status\":\"ok\"', json: {{ /replicas: 3 }} }}\n    - id: use\n      kind: exec\n      needs: [probe]\n      with: {{ command: [\"test\", \"${{{{ steps.probe.outputs.json.replicas }}}}\", \"=\", \"3\"] }}\n"
        ),
    );
    assert_eq!(run(&tj.journal, &ok).await.status, RunStatus::Succeeded);
    let down = plan(
        "http-down",
        &format!(
            "  steps:\n    - id: probe\n      kind: http\n      retry: {{ attempts: 2, backoff: 10ms }}\n      with: {{ url: http://{addr}/other }}\n"
        ),
    );
    let report = run(&tj.journal, &down).await;
    assert_eq!(report.status, RunStatus::Failed);
    let events = events(&tj.journal, &report.run_id).await;
    assert_eq!(started(&events).len(), 2, "a 503 is retryable");
    server.abort();
}

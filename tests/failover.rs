//! Failover and failback through the real CLI against real PostgreSQL: a synchronous
//! streaming standby, the replication gate, the primary killed, promotion, the built-in TCP
//! endpoint re-pointed; then the old primary reprotected with pg_rewind and a planned
//! switchover back — the canary writing through the endpoint all along loses nothing.

mod support;

use std::process::Command;

use lifeboat::journal::Journal;
use support::servers::shared_tempdir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_synchronous_standby_then_failback_by_rewind_and_switchover_loses_nothing() {
    let dir = shared_tempdir();
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/failback.yaml");
    let state = dir.path().join("state.db");
    let report = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(&state)
        .args(["drill", &plan.display().to_string(), "--report", &report.display().to_string()])
        .args(["--param", &format!("workdir={}", dir.path().join("w").display())])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let journal = Journal::open(&state.display().to_string()).await.unwrap();
    let run = journal.runs(None, 1).await.unwrap().remove(0);
    let events = support::events(&journal, &run.id).await;
    let standby = support::outputs_of(&events, "standby");
    assert_eq!(standby["sync_state"], "sync");
    assert_eq!(standby["created"], true);
    let gate = support::outputs_of(&events, "gate");
    assert_eq!(gate["lag_bytes"], 0);
    let promote = support::outputs_of(&events, "promote");
    assert_eq!(promote["timeline"], 2, "promotion starts timeline 2");
    assert_eq!(promote["promoted_now"], true);
    let switch = support::outputs_of(&events, "switch");
    let primary = support::outputs_of(&events, "primary");
    assert_eq!(switch["previous_upstream"], format!("127.0.0.1:{}", primary["port"]));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(m["passed"], true);
    assert!(m["rto_ms"].as_i64().unwrap() > 0);
    assert!(!dir.path().join("w").exists(), "the plan removed its directory");
    let fence = support::outputs_of(&events, "fence");
    assert_eq!(fence["action"], "already_down");
    assert_eq!(fence["proxies_cut"], serde_json::json!(["db"]));
    assert_eq!(
        fence["checks"].as_array().unwrap().len(),
        2,
        "the server and the endpoint both refused a write"
    );
    let reprotect = support::outputs_of(&events, "reprotect");
    assert_eq!(reprotect["path"], "rewind", "{reprotect:?}");
    let back = support::outputs_of(&events, "switch_back");
    assert_eq!(back["timeline"], 3, "failback starts timeline 3");
    assert!(
        back["demoted_sync_state"].is_string(),
        "the demoted primary streams from the new one"
    );
    let rpo = support::outputs_of(&events, "rpo");
    assert_eq!(rpo["rows_lost"], 0, "a planned switchover loses nothing: {rpo:?}");
    assert!(rpo["acknowledged_before_disaster"].as_u64().unwrap() > 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_a_reachable_primary_stops_it_and_proves_no_write_gets_through() {
    let dir = shared_tempdir();
    let mut primary = lifeboat_backup::instance::LocalInstance::new(&dir.path().join("old"), support::servers::free_port()).unwrap();
    primary.init(&Default::default()).await.unwrap();
    primary.start().await.unwrap();
    let plan = dir.path().join("fence.yaml");
    std::fs::write(
        &plan,
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {{ name: fence }}\nspec:\n  steps:\n    - id: fence\n      kind: postgres.fence\n      with: {{ dsn: \"{}\", dir: \"{}\" }}\n",
            primary.dsn("postgres"),
            dir.path().join("old").display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(&state)
        .args(["run", &plan.display().to_string()])
        .output()
        .unwrap();
    let still_running = primary.running_pid().is_some();
    support::servers::stop(&primary).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(!still_running, "the fenced primary is still running");
    let journal = Journal::open(&state.display().to_string()).await.unwrap();
    let run = journal.runs(None, 1).await.unwrap().remove(0);
    let fence = support::outputs_of(&support::events(&journal, &run.id).await, "fence");
    assert_eq!(fence["action"], "stopped");
    assert!(fence["checks"][0]["refused"].as_str().unwrap().contains("no connection"));
}

/// The unplanned (built-in endpoint and PgBouncer) and the planned example drills pass their
/// objectives on the local topology.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_failover_and_planned_switchover_drills_pass() {
    for plan in ["region-failover", "planned-switchover", "region-failover-pgbouncer"] {
        let dir = shared_tempdir();
        let mut extra = Vec::new();
        if plan.ends_with("pgbouncer") {
            if !std::path::Path::new("/usr/sbin/pgbouncer").exists() {
                assert!(std::env::var("CI").is_err(), "CI installs pgbouncer (scripts/test.sh)");
                eprintln!("skipped {plan}: pgbouncer is not installed");
                continue;
            }
            extra = vec!["--param".to_owned(), format!("pgbouncer_port={}", support::servers::free_port())];
        }
        let report = dir.path().join("report.json");
        let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .args(["drill", &format!("plans/{plan}.yaml"), "--report", &report.display().to_string()])
            .args(["--param", &format!("workdir={}", dir.path().join("w").display())])
            .args(&extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{plan}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(m["rows_lost"], 0, "{plan}");
        assert!(!dir.path().join("w").exists(), "{plan} removed its directory");
    }
}

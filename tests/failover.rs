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
    let mut primary = lifeboat_backup::instance::LocalInstance::new(
        &dir.path().join("old"),
        support::servers::free_port(),
        lifeboat_backup::process::Spawner::unrecorded(),
    )
    .unwrap();
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
        if plan != "planned-switchover" {
            let journal = Journal::open(&dir.path().join("state.db").display().to_string()).await.unwrap();
            let run = journal.runs(None, 1).await.unwrap().remove(0);
            let fence = support::outputs_of(&support::events(&journal, &run.id).await, "fence");
            let refusals: Vec<&str> = fence["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["refused"].as_str().unwrap())
                .collect();
            assert_eq!(
                refusals.len(),
                2,
                "{plan}: the server and the client endpoint both refused a write: {fence:?}"
            );
        }
    }
}

/// A former primary with neither data checksums nor `wal_log_hints` cannot be rewound:
/// reprotect says so, moves the old data aside (it may hold writes the failover lost), takes
/// a fresh base backup and streams from the new primary. Before that, an unreachable new
/// primary leaves the old one untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprotect_without_checksums_falls_back_to_a_base_backup_and_keeps_the_old_data() {
    use lifeboat_backup::instance::{InitOptions, LocalInstance, StopMode};
    use lifeboat_failover::postgres::{promote, reprotect, standby};
    use std::time::Duration;

    let dir = shared_tempdir();
    let mut old = LocalInstance::new(
        &dir.path().join("old"),
        support::servers::free_port(),
        lifeboat_backup::process::Spawner::unrecorded(),
    )
    .unwrap();
    old.init(&InitOptions {
        data_checksums: false,
        ..Default::default()
    })
    .await
    .unwrap();
    old.start().await.unwrap();
    let sql = |dsn: String, statement: &'static str| async move {
        let mut c = lifeboat_validation::connect(&dsn).await.unwrap();
        sqlx::Executor::execute(&mut c, statement).await.unwrap();
    };
    sql(old.dsn("postgres"), "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").await;
    let new_port = support::servers::free_port();
    let built = standby::build(&standby::StandbyOptions {
        primary_dsn: old.dsn("postgres"),
        dir: dir.path().join("new"),
        port: new_port,
        name: "new".into(),
        synchronous: false,
        wait: Duration::from_secs(60),
        placement: None,
        spawner: lifeboat_backup::process::Spawner::unrecorded(),
    })
    .await
    .unwrap();
    let new = LocalInstance::new(&dir.path().join("new"), new_port, lifeboat_backup::process::Spawner::unrecorded()).unwrap();

    let options = |primary_dsn: String| reprotect::ReprotectOptions {
        dir: dir.path().join("old"),
        port: old.port,
        primary_dsn,
        name: "old".into(),
        within: Duration::from_secs(60),
        spawner: lifeboat_backup::process::Spawner::unrecorded(),
    };
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/postgres", support::servers::free_port());
    let refused = reprotect::reprotect(&options(unreachable)).await.unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert!(
        old.running_pid().is_some(),
        "an unreachable new primary must leave the old one alone"
    );

    // The region is lost: the old primary crashes, the standby is promoted and takes writes.
    old.stop(StopMode::Immediate).await.unwrap();
    promote::promote(&built.dsn, Duration::from_secs(60)).await.unwrap();
    sql(built.dsn.clone(), "INSERT INTO t VALUES (2)").await;

    let done = reprotect::reprotect(&options(built.dsn.clone())).await;
    let in_recovery_and_rows = async {
        let mut c = lifeboat_validation::connect(&old.dsn("postgres")).await.unwrap();
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut c).await.unwrap();
        let mut rows = 0;
        for _ in 0..100 {
            rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM t")
                .fetch_one(&mut c)
                .await
                .unwrap();
            if rows == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (in_recovery, rows)
    };
    let (in_recovery, rows) = if done.is_ok() { in_recovery_and_rows.await } else { (false, 0) };
    let previous = dir.path().join("old/data.before-reprotect");
    let previous_kept = previous.join("PG_VERSION").is_file();
    support::servers::stop(&old).await;
    support::servers::stop(&new).await;
    let done = done.unwrap();
    assert_eq!(done.path, "base_backup", "{done:?}");
    assert!(done.reason.contains("wal_log_hints"), "the reason names the cause: {}", done.reason);
    assert_eq!(done.previous_data.as_deref(), Some(previous.as_path()));
    assert!(previous_kept, "the replaced data directory is kept aside");
    assert!(in_recovery, "the former primary runs as a standby");
    assert_eq!(rows, 2, "the former primary replays the new primary's writes");
}

//! Failover and failback through the real CLI against real PostgreSQL: a synchronous
//! streaming standby, the replication gate, the primary killed, promotion, the built-in TCP
//! endpoint re-pointed; then the old primary reprotected with pg_rewind and a planned
//! switchover back — the canary writing through the endpoint all along loses nothing.

mod support;

use std::process::Command;

use lifeboat::journal::Journal;
use support::servers::shared_tempdir;

const FAILOVER_PLAN: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: { name: failover-blocks }
spec:
  objectives: { rto: 30s, rows_lost: 0 }
  params:
    workdir: { type: string }
  steps:
    - id: primary
      kind: postgres.local_instance
      # Old WAL stays around so that pg_rewind can find the last common checkpoint.
      with: { dir: "${{ params.workdir }}/primary", settings: { wal_keep_size: "256MB" } }
    - id: seed
      kind: exec
      needs: [primary]
      with:
        command: ["psql", "${{ steps.primary.outputs.dsn }}", "-qAt", "-v", "ON_ERROR_STOP=1"]
        stdin: "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);"
    - id: standby
      kind: postgres.standby
      needs: [seed]
      with: { primary_dsn: "${{ steps.primary.outputs.dsn }}", dir: "${{ params.workdir }}/standby", name: replica, synchronous: true }
    - id: gate
      kind: postgres.replication_status
      needs: [standby]
      retry: { attempts: 20, backoff: 200ms, max_backoff: 200ms }
      with: { dsn: "${{ steps.primary.outputs.dsn }}", standby: replica, require_sync: true, max_lag_bytes: 0 }
    - id: entry
      kind: traffic.proxy
      needs: [gate]
      with: { proxy: db, upstream: "127.0.0.1:${{ steps.primary.outputs.port }}" }
    - id: canary
      kind: validation.canary
      needs: [entry]
      with: { dsn: "postgres://postgres@127.0.0.1:${{ steps.entry.outputs.listen_port }}/postgres", interval: 20ms }
    - id: write_through_entry
      kind: exec
      needs: [canary]
      with:
        command: ["psql", "postgres://postgres@127.0.0.1:${{ steps.entry.outputs.listen_port }}/postgres", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", "INSERT INTO t VALUES (101)"]
    - id: kill
      kind: chaos.process_kill
      needs: [write_through_entry]
      mark: disaster
      with: { pid_file: "${{ steps.primary.outputs.pgdata }}/postmaster.pid", include_children: true }
    - id: fence
      kind: postgres.fence
      needs: [kill]
      with:
        dsn: "${{ steps.primary.outputs.dsn }}"
        dir: "${{ params.workdir }}/primary"
        proxies: [db]
        paths: ["postgres://postgres@127.0.0.1:${{ steps.entry.outputs.listen_port }}/postgres"]
    - id: promote
      kind: postgres.promote
      needs: [fence]
      with: { dsn: "${{ steps.standby.outputs.dsn }}" }
    - id: switch
      kind: traffic.proxy
      needs: [promote]
      with: { proxy: db, upstream: "127.0.0.1:${{ steps.standby.outputs.port }}" }
    - id: serving
      kind: validation.sql_probe
      needs: [switch]
      mark: recovered
      with:
        dsn: "postgres://postgres@127.0.0.1:${{ steps.entry.outputs.listen_port }}/postgres"
        query: "SELECT count(*) FILTER (WHERE NOT pg_is_in_recovery()) FROM t"
        expect: "101"
        interval: 50ms
        timeout: 20s
    # Failback: the old primary becomes a standby of the new one, then a planned
    # switchover hands the primary role back with nothing lost.
    - id: reprotect
      kind: postgres.reprotect
      needs: [serving]
      with:
        dir: "${{ params.workdir }}/primary"
        port: "${{ steps.primary.outputs.port }}"
        primary_dsn: "${{ steps.standby.outputs.dsn }}"
        name: original
        within: 15s
    - id: caught_up
      kind: postgres.replication_status
      needs: [reprotect]
      retry: { attempts: 50, backoff: 100ms, max_backoff: 100ms }
      with: { dsn: "${{ steps.standby.outputs.dsn }}", standby: original, max_lag_bytes: 0 }
    - id: switch_back
      kind: postgres.switchover
      needs: [caught_up]
      with:
        primary_dir: "${{ params.workdir }}/standby"
        primary_dsn: "${{ steps.standby.outputs.dsn }}"
        standby_dsn: "${{ steps.primary.outputs.dsn }}"
        demoted_name: replica
    - id: entry_back
      kind: traffic.proxy
      needs: [switch_back]
      with: { proxy: db, upstream: "127.0.0.1:${{ steps.primary.outputs.port }}" }
    - id: writes_back
      kind: validation.sql_probe
      needs: [entry_back]
      with:
        dsn: "postgres://postgres@127.0.0.1:${{ steps.entry.outputs.listen_port }}/postgres"
        query: "SELECT count(*) FROM lifeboat_canary WHERE written_at > '${{ steps.switch_back.outputs.promoted_at }}'"
        min: 3
        interval: 100ms
        timeout: 20s
    - id: rpo
      kind: validation.rpo
      needs: [writes_back]
      with:
        dsn: "${{ steps.primary.outputs.dsn }}"
        canary: canary
        disaster_at: "${{ steps.switch_back.outputs.promoted_at }}"
  finally:
    - id: stop_standby
      kind: postgres.local_instance
      with: { action: stop, dir: "${{ params.workdir }}/standby" }
    - id: stop_primary
      kind: postgres.local_instance
      with: { action: stop, dir: "${{ params.workdir }}/primary", stop_mode: immediate }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_synchronous_standby_then_failback_by_rewind_and_switchover_loses_nothing() {
    let dir = shared_tempdir();
    let plan = dir.path().join("failover.yaml");
    std::fs::write(&plan, FAILOVER_PLAN).unwrap();
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

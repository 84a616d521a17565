//! Drills end to end through the real CLI against real PostgreSQL: the quickstart (local
//! repository and Garage S3), and the canary's RPO through a point-in-time restore to a
//! known target, checked against a count made independently from the databases.

mod support;

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use lifeboat::journal::Journal;
use sqlx::{Connection, PgConnection};
use support::servers::{TestRepo, shared_tempdir};

fn lifeboat(state: &Path, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(state)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn postgres_processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("postgres") && c.contains(&needle))
        .collect()
}

fn quickstart(repo: &TestRepo, dir: &Path) {
    let workdir = dir.join("quickstart");
    let state = dir.join("state.db");
    let report = |ext: &str| dir.join(format!("report.{ext}"));
    let output = lifeboat(
        &state,
        &repo.env,
        &[
            "drill",
            "plans/quickstart.yaml",
            "--param",
            &format!("workdir={}", workdir.display()),
            "--param",
            &format!("repo={}", repo.url),
            "--report",
            &report("html").display().to_string(),
            "--report",
            &report("json").display().to_string(),
            "--report",
            &report("junit.xml").display().to_string(),
            "--report",
            &report("md").display().to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the quickstart drill failed ({}):\n{stdout}\n{}",
        repo.kind,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("drill quickstart PASSED"), "{stdout}");

    let m = read_json(&report("json"));
    assert_eq!(m["passed"], true);
    let rto = m["rto_ms"].as_i64().unwrap();
    assert!(rto > 0 && rto < 60_000, "RTO {rto} ms");
    assert!(m["rows_lost"].as_u64().unwrap() <= 1);
    assert!(m["rpo_ms"].as_i64().unwrap() < 5_000);
    assert_eq!(m["disaster"]["step"], "drop");
    assert_eq!(m["recovered"]["step"], "serving");
    let crash = m["faults"].as_array().unwrap().iter().find(|f| f["step"] == "crash").unwrap();
    assert_eq!(crash["evidence"]["observed"], "gone");
    assert!(
        crash["evidence"]["processes"].as_array().unwrap().len() > 1,
        "the whole server was killed"
    );
    let steps = m["steps"].as_array().unwrap();
    let consistency = steps.iter().find(|s| s["id"] == "consistency").unwrap();
    assert_eq!(consistency["outputs"]["all_match"], true);

    let html = std::fs::read_to_string(report("html")).unwrap();
    assert!(html.contains("<svg") && html.contains(">PASS<") && html.contains("disaster") && html.contains("recovered"));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the HTML report must be self-contained"
    );
    let junit = std::fs::read_to_string(report("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("name=\"RTO\"") && junit.contains("name=\"consistency\""));
    assert!(std::fs::read_to_string(report("md")).unwrap().contains("| RTO | 1m |"));

    assert!(!workdir.exists(), "the drill removed its scratch directory");
    assert_eq!(postgres_processes_under(&workdir), Vec::<String>::new(), "servers left running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_drill_passes_on_a_local_repository_and_cleans_up() {
    let dir = shared_tempdir();
    let repo = TestRepo::local(&dir.path().join("qs-repo-parent"));
    quickstart(&repo, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_drill_passes_against_s3() {
    let Some(repo) = TestRepo::s3() else { return };
    let dir = shared_tempdir();
    quickstart(&repo, dir.path());
}

/// The canary keeps writing through a restore point `cut`, a second of writes, and the
/// disaster; the restore goes back to `cut`. Every row written in that second is lost,
/// and the RPO is the disaster time minus the last row before `cut`.
const RPO_PLAN: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: { name: rpo-check }
spec:
  params:
    workdir: { type: string }
  steps:
    - id: primary
      kind: postgres.local_instance
      with: { dir: "${{ params.workdir }}/primary", archive_repo: "file://${{ params.workdir }}/repo", settings: { archive_timeout: "1s" } }
    - id: backup
      kind: postgres.backup
      needs: [primary]
      with: { repo: "file://${{ params.workdir }}/repo", pgdata: "${{ steps.primary.outputs.pgdata }}" }
    - id: canary
      kind: validation.canary
      needs: [backup]
      with: { dsn: "${{ steps.primary.outputs.dsn }}", interval: 20ms }
    - id: warm
      kind: sleep
      needs: [canary]
      with: { duration: 1s }
    - id: cut
      kind: chaos.sql
      needs: [warm]
      with: { dsn: "${{ steps.primary.outputs.dsn }}", statement: "SELECT pg_create_restore_point('cut')" }
    - id: gap
      kind: sleep
      needs: [cut]
      with: { duration: 1s }
    - id: disaster
      kind: chaos.sql
      needs: [gap]
      mark: disaster
      with: { dsn: "${{ steps.primary.outputs.dsn }}", statement: "CREATE TABLE marker (x int)" }
    - id: shipped
      kind: validation.sql_probe
      needs: [disaster]
      with:
        dsn: "${{ steps.primary.outputs.dsn }}"
        query: "SELECT coalesce(last_archived_wal >= pg_walfile_name('${{ steps.disaster.outputs.lsn_after }}'), false) FROM pg_stat_archiver"
        expect: "t"
        interval: 100ms
    - id: stop_canary
      kind: validation.canary_stop
      needs: [shipped]
      with: { canary: canary }
    - id: restore
      kind: postgres.restore
      needs: [stop_canary]
      with: { repo: "file://${{ params.workdir }}/repo", pgdata: "${{ params.workdir }}/restored/data", target_name: cut }
    - id: rpo
      kind: validation.rpo
      needs: [restore]
      mark: recovered
      with: { dsn: "${{ steps.restore.outputs.dsn }}", canary: canary, disaster_at: "${{ steps.disaster.outputs.injected_at }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_rpo_and_rows_lost_match_an_independent_count() {
    let dir = shared_tempdir();
    let workdir = dir.path().join("rpo");
    let plan = dir.path().join("rpo.yaml");
    std::fs::write(&plan, RPO_PLAN).unwrap();
    let state = dir.path().join("state.db");
    let output = lifeboat(
        &state,
        &[],
        &[
            "run",
            &plan.display().to_string(),
            "--param",
            &format!("workdir={}", workdir.display()),
        ],
    );
    let journal = Journal::open(&state.display().to_string()).await.unwrap();
    let run = journal.runs(None, 1).await.unwrap().remove(0);
    let events = support::events(&journal, &run.id).await;
    let primary = support::outputs_of(&events, "primary");
    let restore = support::outputs_of(&events, "restore");
    let measured = support::outputs_of(&events, "rpo");
    let disaster: DateTime<Utc> = support::outputs_of(&events, "disaster")["injected_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Independently, from the databases alone: the old primary holds every acknowledged
    // canary row; the restored copy holds what survived.
    let mut old = PgConnection::connect(primary["dsn"].as_str().unwrap()).await.unwrap();
    let mut restored = PgConnection::connect(restore["dsn"].as_str().unwrap()).await.unwrap();
    let written: Vec<(i64, DateTime<Utc>)> =
        sqlx::query_as("SELECT seq, written_at FROM lifeboat_canary WHERE run_id = $1 AND written_at < $2 ORDER BY seq")
            .bind(&run.id)
            .bind(disaster)
            .fetch_all(&mut old)
            .await
            .unwrap();
    let survived: Vec<i64> = sqlx::query_scalar("SELECT seq FROM lifeboat_canary WHERE run_id = $1")
        .bind(&run.id)
        .fetch_all(&mut restored)
        .await
        .unwrap();
    let lost: Vec<i64> = written.iter().map(|w| w.0).filter(|s| !survived.contains(s)).collect();
    let newest = written.iter().filter(|w| survived.contains(&w.0)).map(|w| w.1).max().unwrap();
    let expected_rpo = (disaster - newest).num_milliseconds();
    drop((old, restored));
    for (name, port) in [("primary", primary["port"].as_u64()), ("restored", restore["port"].as_u64())] {
        let inst = lifeboat_backup::instance::LocalInstance::new(
            &workdir.join(name),
            port.unwrap() as u16,
            lifeboat_backup::process::Spawner::unrecorded(),
        )
        .unwrap();
        support::servers::stop(&inst).await;
    }
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(lost.len() >= 20, "a second of writes at 20 ms should be lost, found {}", lost.len());
    assert_eq!(measured["rows_lost"], lost.len() as u64);
    assert_eq!(measured["lost_seqs"].as_array().unwrap().len(), lost.len().min(50));
    assert_eq!(measured["lost_seqs"][0], lost[0]);
    assert_eq!(measured["rpo_ms"], expected_rpo);
    assert!(
        expected_rpo >= 1000,
        "the restore point was a second before the disaster: {expected_rpo} ms"
    );
    assert_eq!(measured["newest_present_seq"], *survived.iter().max().unwrap());
}

/// The canary is background work of the run: when the engine is killed and the run is
/// resumed, it writes again, after the last acknowledgement the journal holds. Every
/// journaled acknowledgement names a row the database has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_writes_again_after_the_engine_is_killed_and_the_run_resumes() {
    use lifeboat_backup::instance::LocalInstance;
    use std::time::{Duration, Instant};

    let dir = shared_tempdir();
    let mut db = LocalInstance::new(
        &dir.path().join("db"),
        support::servers::free_port(),
        lifeboat_backup::process::Spawner::unrecorded(),
    )
    .unwrap();
    db.init(&Default::default()).await.unwrap();
    db.start().await.unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        support::plan(
            "canary-resume",
            &format!(
                "  steps:\n    - id: canary\n      kind: validation.canary\n      with: {{ dsn: \"{}\", interval: 20ms }}\n    \
                 - id: work\n      kind: exec\n      needs: [canary]\n      with: {{ command: [sleep, \"4\"] }}\n    \
                 - id: stop\n      kind: validation.canary_stop\n      needs: [work]\n      with: {{ canary: canary }}\n",
                db.dsn("postgres")
            ),
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let mut first = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(&state)
        .args(["run", &plan.display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (journal, run_id) = loop {
        assert!(Instant::now() < deadline, "the canary never journaled 10 acknowledgements");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(journal) = Journal::open(&state.display().to_string()).await else {
            continue;
        };
        let Some(run) = journal.runs(None, 1).await.unwrap().pop() else {
            continue;
        };
        if lifeboat::evidence::read::<lifeboat::evidence::canary::CanaryAck>(&journal, &run.id, "canary")
            .await
            .unwrap()
            .len()
            >= 10
        {
            break (journal, run.id);
        }
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let killed_at = Utc::now();
    let before = lifeboat::evidence::read::<lifeboat::evidence::canary::CanaryAck>(&journal, &run_id, "canary")
        .await
        .unwrap()
        .len();

    let resumed = lifeboat(&state, &[], &["resume", &run_id]);
    let acks = lifeboat::evidence::read::<lifeboat::evidence::canary::CanaryAck>(&journal, &run_id, "canary")
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.dsn("postgres")).await.unwrap();
    let rows: Vec<i64> = sqlx::query_scalar("SELECT seq FROM lifeboat_canary WHERE run_id = $1")
        .bind(&run_id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    drop(conn);
    support::servers::stop(&db).await;
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let after = acks.iter().filter(|r| r.written_at > killed_at).count();
    assert!(
        after >= 20,
        "the canary wrote again after the resume: {after} acknowledgements after the kill, {before} before"
    );
    let rows: std::collections::BTreeSet<i64> = rows.into_iter().collect();
    let missing: Vec<i64> = acks.iter().map(|r| r.seq).filter(|k| !rows.contains(k)).collect();
    assert_eq!(
        missing,
        Vec::<i64>::new(),
        "every journaled acknowledgement is a row in the database"
    );
    let journal_keys: std::collections::BTreeSet<i64> = acks.iter().map(|r| r.seq).collect();
    assert_eq!(journal_keys.len(), acks.len(), "no sequence number was acknowledged twice");
}

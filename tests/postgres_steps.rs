//! The `postgres.*` step kinds driven by the engine through the real CLI: the PITR drill plan
//! shipped in `plans/`, and the pgBackRest restore provider against a real pgBackRest.

mod support;

use std::path::Path;
use std::process::Command;

use lifeboat::journal::Journal;
use lifeboat_backup::instance::{InitOptions, LocalInstance, ServerUser};
use sqlx::{Connection, PgConnection};
use support::servers::{free_port, shared_tempdir, stop_blocking};

fn lifeboat(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

async fn last_run_events(state: &Path) -> Vec<lifeboat::journal::Event> {
    let journal = Journal::open(&state.display().to_string()).await.unwrap();
    let run = journal
        .runs(None, 1)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a run was journaled");
    support::events(&journal, &run.id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pitr_drill_plan_brings_back_every_row_committed_before_the_drop() {
    let dir = shared_tempdir();
    let workdir = dir.path().join("drill");
    let state = dir.path().join("state.db");
    let output = lifeboat(
        &state,
        &[
            "run",
            "plans/postgres-pitr-drill.yaml",
            "--param",
            &format!("workdir={}", workdir.display()),
        ],
    );
    assert!(
        output.status.success(),
        "drill failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let events = last_run_events(&state).await;
    assert_eq!(
        support::outputs_of(&events, "check")["rows"],
        1500,
        "the restored table holds all 1500 rows committed before the drop"
    );
    let restore = support::outputs_of(&events, "restore");
    assert_eq!(restore["target"], "restore point `before_drop`");
    assert!(restore["reached_lsn"].as_str().is_some_and(|l| l.contains('/')), "{restore:?}");
    let backup = support::outputs_of(&events, "backup");
    assert!(
        backup["backup_id"].as_str().unwrap().ends_with("-backup"),
        "the backup is named by the idempotency key: {backup:?}"
    );
    assert!(!workdir.exists(), "finally removed the drill's directory");
}

/// A primary archiving through pgBackRest, with one full backup, rows after it and a
/// restore point; returns the rows committed before the restore point.
async fn pgbackrest_primary(dir: &Path, config: &Path) -> (LocalInstance, i64) {
    let mut primary = LocalInstance::new(&dir.join("primary"), free_port(), lifeboat_backup::process::Spawner::unrecorded()).unwrap();
    let user = ServerUser::current_or_postgres().unwrap();
    let repo = dir.join("pgbackrest-repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(dir.join("pgbackrest-log")).unwrap();
    std::fs::write(
        config,
        format!(
            "[global]\nrepo1-path={}\nlog-path={}\ncompress-type=zst\nstart-fast=y\nlog-level-console=warn\n\
             [drill]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
            repo.display(),
            dir.join("pgbackrest-log").display(),
            primary.pgdata().display(),
            primary.port,
            primary.socket_dir().display()
        ),
    )
    .unwrap();
    ServerUser::chown_tree(user, &repo).unwrap();
    ServerUser::chown_tree(user, &dir.join("pgbackrest-log")).unwrap();
    let options = InitOptions {
        archive_command: Some(format!("pgbackrest --config={} --stanza=drill archive-push %p", config.display())),
        ..InitOptions::default()
    };
    primary.init(&options).await.unwrap();
    primary.start().await.unwrap();
    let pgbackrest = |args: &[&str]| {
        let mut command = std::process::Command::new("pgbackrest");
        command
            .arg(format!("--config={}", config.display()))
            .arg("--stanza=drill")
            .args(args);
        if let Some(user) = user {
            use std::os::unix::process::CommandExt;
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let output = command.output().expect("pgbackrest is installed (scripts/test.sh installs it)");
        assert!(
            output.status.success(),
            "pgbackrest {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    pgbackrest(&["stanza-create"]);
    let mut conn = PgConnection::connect(&primary.dsn("postgres")).await.unwrap();
    sqlx::query("CREATE TABLE accounts AS SELECT g AS id FROM generate_series(1, 300) g")
        .execute(&mut conn)
        .await
        .unwrap();
    pgbackrest(&["backup", "--type=full"]);
    sqlx::query("INSERT INTO accounts SELECT generate_series(301, 450)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SELECT pg_create_restore_point('before_mistake')")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM accounts WHERE id > 100").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT pg_switch_wal()").execute(&mut conn).await.unwrap();
    sqlx::query("CHECKPOINT").execute(&mut conn).await.unwrap();
    pgbackrest(&["check"]);
    (primary, 450)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pgbackrest_provider_restores_to_a_named_point() {
    let dir = shared_tempdir();
    let config = dir.path().join("pgbackrest.conf");
    let (primary, expected_rows) = pgbackrest_primary(dir.path(), &config).await;
    let restored = dir.path().join("restored").join("data");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {{ name: pgbackrest-restore }}\nspec:\n  steps:\n\
             \x20   - id: restore\n      kind: postgres.restore\n      with:\n        provider: pgbackrest\n        stanza: drill\n\
             \x20       pgbackrest_options: [\"--config={}\"]\n        pgdata: {}\n        target_name: before_mistake\n",
            config.display(),
            restored.display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let output = lifeboat(&state, &["run", plan.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let outputs = support::outputs_of(&last_run_events(&state).await, "restore");
    let dsn = outputs["dsn"].as_str().unwrap();
    let mut conn = PgConnection::connect(dsn).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, expected_rows, "pgBackRest restored to the restore point, before the DELETE");
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.unwrap();
    assert!(!in_recovery, "the restored server was promoted");
    stop_blocking(
        &LocalInstance::for_pgdata(
            &restored,
            outputs["port"].as_u64().unwrap() as u16,
            lifeboat_backup::process::Spawner::unrecorded(),
        )
        .unwrap(),
    );
    stop_blocking(&primary);
}

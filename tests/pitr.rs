//! Point-in-time restore against real PostgreSQL 15 and a real repository (local directory
//! and Garage S3): rows written across many WAL segments, a backup in the middle, restores to
//! a time, an LSN, a restore point and the end of the archive. Each restore must hold exactly
//! the rows committed up to its target.

mod support;

use std::time::Duration;

use lifeboat_backup::basebackup::{self, BackupOptions};
use lifeboat_backup::restore::{self, RestoreOptions, Target};
use lifeboat_backup::wal_name::parse_lsn;
use sqlx::PgConnection;
use support::servers::{Primary, TestRepo, free_port, lifeboat_for_postgres, shared_tempdir, stop_blocking};

const BATCHES: i32 = 6;
const ROWS_PER_BATCH: i32 = 15;

async fn insert(conn: &mut PgConnection, seq: i32) {
    sqlx::query("INSERT INTO ledger (seq, committed_at) VALUES ($1, clock_timestamp())")
        .bind(seq)
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn now(conn: &mut PgConnection) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut *conn).await.unwrap()
}

struct Targets {
    /// (target, the highest seq that must be present)
    cases: Vec<(Target, i32)>,
}

/// Writes the ledger: one commit per row, a WAL switch after each batch, the base backup after
/// batch 1, and one recovery target of each kind along the way.
async fn write_history(primary: &Primary, repo: &TestRepo, store: &lifeboat_backup::store::Store) -> Targets {
    let mut conn = primary.connect().await;
    sqlx::query("CREATE TABLE ledger (seq int PRIMARY KEY, committed_at timestamptz NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut cases = Vec::new();
    let mut seq = 0;
    for batch in 0..BATCHES {
        for _ in 0..ROWS_PER_BATCH {
            seq += 1;
            insert(&mut conn, seq).await;
            match (batch, seq % ROWS_PER_BATCH) {
                // A time strictly between two commits, in batch 2.
                (2, 7) => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let between = now(&mut conn).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    cases.push((Target::Time(between), seq));
                }
                (3, 4) => {
                    sqlx::query("SELECT pg_create_restore_point('before_batch_3_row_5')")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    cases.push((Target::Name("before_batch_3_row_5".into()), seq));
                }
                (4, 10) => {
                    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                    cases.push((Target::Lsn(parse_lsn(&lsn).unwrap()), seq));
                }
                _ => {}
            }
        }
        sqlx::query("SELECT pg_switch_wal()").execute(&mut conn).await.unwrap();
        if batch == 1 {
            let options = BackupOptions {
                dsn: primary.instance.dsn("postgres"),
                pgdata: None,
                id: None,
                parallel: 3,
                incremental: false,
            };
            let manifest = basebackup::take(store, &options).await.unwrap();
            assert!(
                manifest.files.iter().any(|f| f.path == "PG_VERSION"),
                "backup holds the data directory"
            );
        }
    }
    cases.push((Target::Latest, seq));
    primary.archive_all().await;
    let _ = repo;
    Targets { cases }
}

async fn restored_rows(dsn: &str) -> Vec<i32> {
    use sqlx::Connection;
    let mut conn = PgConnection::connect(dsn).await.unwrap();
    sqlx::query_scalar("SELECT seq FROM ledger ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn pitr_round_trip(repo: TestRepo, dir: &std::path::Path) {
    let store = repo.store().await;
    let primary = Primary::start(dir, &repo).await;
    let targets = write_history(&primary, &repo, &store).await;
    assert_eq!(targets.cases.len(), 4, "one target of each kind");

    for (index, (target, last_seq)) in targets.cases.into_iter().enumerate() {
        let pgdata = dir.join(format!("restore-{index}"));
        let options = RestoreOptions {
            inclusive: true,
            repo_url: repo.url.clone(),
            pgdata: pgdata.clone(),
            target: target.clone(),
            backup: None,
            delta: false,
            parallel: 3,
            lifeboat_exe: lifeboat_for_postgres(dir),
            port: Some(free_port()),
            start: true,
            user: "postgres".into(),
            keep_archiving: false,
            wait_timeout: Duration::from_secs(120),
            server_env: repo.env.clone(),
            spawner: lifeboat_backup::process::Spawner::unrecorded(),
        };
        let report = restore::restore(&store, &options)
            .await
            .unwrap_or_else(|e| panic!("{} restore to {target}: {e}", repo.kind));
        let dsn = report.dsn.clone().unwrap();
        let rows = restored_rows(&dsn).await;
        let expected: Vec<i32> = (1..=last_seq).collect();
        assert_eq!(
            rows, expected,
            "{} restore to {target}: exactly the rows committed up to the target",
            repo.kind
        );
        assert!(report.reached_lsn.is_some(), "the report says where replay stopped");
        if let Target::Time(time) = target {
            let reached = report.reached_time.expect("a time target reports the last commit replayed");
            assert!(reached <= time, "last replayed commit {reached} is not after the target {time}");
        }
        let instance = lifeboat_backup::instance::LocalInstance::for_pgdata(
            &pgdata,
            options.port.unwrap(),
            lifeboat_backup::process::Spawner::unrecorded(),
        )
        .unwrap();
        stop_blocking(&instance);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_from_a_local_directory_repository() {
    let dir = shared_tempdir();
    pitr_round_trip(TestRepo::local(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_from_an_s3_repository() {
    let Some(repo) = TestRepo::s3() else { return };
    let dir = shared_tempdir();
    pitr_round_trip(repo, dir.path()).await;
}

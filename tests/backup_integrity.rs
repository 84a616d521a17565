//! Damage must be detected, never restored silently: a flipped byte in a backup object, a
//! deleted WAL segment, a backup cut off by the S3 server going away, and a second writer
//! pushing different WAL under an existing name.

mod support;

use std::time::Duration;

use bytes::Bytes;
use lifeboat_backup::basebackup::{self, BackupOptions};
use lifeboat_backup::restore::{self, RestoreOptions, Target};
use lifeboat_backup::wal::{self, PushOutcome};
use lifeboat_backup::{BackupError, catalog, layout, manifest};
use support::servers::{Primary, TestRepo, free_port, lifeboat_for_postgres, shared_tempdir};

fn restore_options(repo: &TestRepo, dir: &std::path::Path, name: &str, target: Target) -> RestoreOptions {
    RestoreOptions {
        repo_url: repo.url.clone(),
        pgdata: dir.join(name),
        target,
        inclusive: true,
        backup: None,
        delta: false,
        parallel: 2,
        lifeboat_exe: lifeboat_for_postgres(dir),
        port: Some(free_port()),
        start: false,
        user: "postgres".into(),
        keep_archiving: false,
        wait_timeout: Duration::from_secs(60),
        server_env: repo.env.clone(),
        spawner: lifeboat_backup::process::Spawner::unrecorded(),
    }
}

async fn primary_with_backup(dir: &std::path::Path, repo: &TestRepo) -> (Primary, lifeboat_backup::store::Store) {
    let store = repo.store().await;
    let primary = Primary::start(dir, repo).await;
    let mut conn = primary.connect().await;
    sqlx::query("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
        .execute(&mut conn)
        .await
        .unwrap();
    let options = BackupOptions {
        dsn: primary.instance.dsn("postgres"),
        pgdata: None,
        id: Some("b1".into()),
        parallel: 2,
        incremental: false,
    };
    basebackup::take(&store, &options).await.unwrap();
    for _ in 0..3 {
        sqlx::query("INSERT INTO t SELECT g, 'later' FROM generate_series(20001, 20100) g")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT pg_switch_wal()").execute(&mut conn).await.unwrap();
    }
    primary.archive_all().await;
    (primary, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_backup_object_fails_verify_and_restore() {
    let dir = shared_tempdir();
    let repo = TestRepo::local(dir.path());
    let (_primary, store) = primary_with_backup(dir.path(), &repo).await;
    assert!(
        catalog::verify(&store, None, 2).await.unwrap().ok(),
        "an intact repository verifies"
    );

    let backup = manifest::read(&store, "b1").await.unwrap().unwrap();
    let victim = dir.path().join("repo").join(&backup.parts[0].key);
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();

    let report = catalog::verify(&store, None, 2).await.unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&backup.parts[0].key) && p.contains("checksum")),
        "{:?}",
        report.problems
    );

    let options = restore_options(&repo, dir.path(), "restored", Target::Latest);
    let error = restore::restore(&store, &options).await.unwrap_err();
    assert!(matches!(error, BackupError::Checksum { .. }), "{error}");
    assert!(error.to_string().contains(&backup.parts[0].key), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_wal_segment_is_a_gap_for_verify_and_restore() {
    let dir = shared_tempdir();
    let repo = TestRepo::local(dir.path());
    let (_primary, store) = primary_with_backup(dir.path(), &repo).await;
    let backup = manifest::read(&store, "b1").await.unwrap().unwrap();
    let missing = backup.stop_segment().next().name(backup.wal_segment_size);
    store.delete(&layout::wal_key(&missing)).await.unwrap();

    let report = catalog::verify(&store, None, 2).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("WAL gap") && p.contains(&missing)),
        "{:?}",
        report.problems
    );

    let options = restore_options(&repo, dir.path(), "restored", Target::Latest);
    let error = restore::restore(&store, &options).await.unwrap_err().to_string();
    assert!(error.contains("WAL gap") && error.contains(&missing), "{error}");
    assert!(
        !dir.path().join("restored").exists(),
        "nothing is written when the restore cannot complete"
    );

    // A target before the gap needs no segment after it and still restores.
    let before_gap = restore_options(&repo, dir.path(), "immediate", Target::Immediate);
    restore::restore(&store, &before_gap)
        .await
        .expect("a target before the gap is restorable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_push_is_idempotent_and_refuses_different_content() {
    for repo in [Some(TestRepo::local(shared_tempdir().path())), TestRepo::s3()]
        .into_iter()
        .flatten()
    {
        let store = repo.store().await;
        let name = "000000010000000000000042";
        let original = Bytes::from(vec![7u8; 1 << 20]);
        assert_eq!(wal::push_bytes(&store, name, original.clone()).await.unwrap(), PushOutcome::Pushed);
        assert_eq!(
            wal::push_bytes(&store, name, original.clone()).await.unwrap(),
            PushOutcome::AlreadyArchived,
            "{}",
            repo.kind
        );
        let mut other = original.to_vec();
        other[100] = 8;
        let error = wal::push_bytes(&store, name, Bytes::from(other)).await.unwrap_err();
        assert!(matches!(error, BackupError::WalConflict { .. }), "{}: {error}", repo.kind);
        assert!(!error.is_retryable());
        assert_eq!(
            wal::download(&store, name).await.unwrap().unwrap(),
            original,
            "{}: the archived segment is untouched",
            repo.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_off_by_the_s3_server_stopping_is_never_restored() {
    let Some(mut repo) = TestRepo::s3() else { return };
    let dir = shared_tempdir();
    let store = repo.store().await;
    let primary = Primary::start(dir.path(), &repo).await;
    let mut conn = primary.connect().await;
    // Incompressible rows, so the backup has many parts and takes a while to upload.
    sqlx::query("CREATE TABLE big AS SELECT g, decode(md5(g::text) || md5((g*7)::text) || md5((g*13)::text), 'hex') AS v FROM generate_series(1, 1500000) g")
        .execute(&mut conn)
        .await
        .unwrap();
    let first = BackupOptions {
        dsn: primary.instance.dsn("postgres"),
        pgdata: None,
        id: Some("complete".into()),
        parallel: 2,
        incremental: false,
    };
    basebackup::take(&store, &first).await.unwrap();

    let options = BackupOptions {
        dsn: primary.instance.dsn("postgres"),
        pgdata: None,
        id: Some("cut-off".into()),
        parallel: 1,
        incremental: false,
    };
    let backup = {
        let store = store.clone();
        tokio::spawn(async move { basebackup::take(&store, &options).await })
    };
    loop {
        let parts = store.list(&layout::backup_prefix("cut-off")).await.unwrap();
        if !parts.is_empty() {
            break;
        }
        assert!(!backup.is_finished(), "the backup finished before any part was seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    repo.garage.as_mut().unwrap().stop();
    let error = backup.await.unwrap().expect_err("the backup must fail when the server goes away");
    assert!(error.to_string().contains("unreachable"), "{error}");
    assert!(error.is_retryable(), "an unreachable endpoint is worth retrying");

    repo.garage.as_mut().unwrap().restart();
    let store = repo.store().await;
    let ids: Vec<String> = manifest::list(&store).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec!["complete".to_string()],
        "the cut-off backup has no manifest, so it does not exist for restore"
    );
    let chosen = restore::choose_backup(&manifest::list(&store).await.unwrap(), &Target::Latest, None)
        .unwrap()
        .id
        .clone();
    assert_eq!(chosen, "complete");
    // The server left backup mode: another backup can start at once.
    let again = BackupOptions {
        dsn: primary.instance.dsn("postgres"),
        pgdata: None,
        id: Some("after".into()),
        parallel: 2,
        incremental: false,
    };
    basebackup::take(&store, &again).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_restore_reuses_matching_files_and_refuses_without_delta() {
    let dir = shared_tempdir();
    let repo = TestRepo::local(dir.path());
    let (_primary, store) = primary_with_backup(dir.path(), &repo).await;
    let first = restore::restore(&store, &restore_options(&repo, dir.path(), "again", Target::Latest))
        .await
        .unwrap();
    assert_eq!(first.files_reused, 0);

    // Damage one file and leave a stray one, as a half-finished earlier restore might.
    let pgdata = dir.path().join("again");
    std::fs::write(pgdata.join("PG_VERSION"), "14\n").unwrap();
    std::fs::write(pgdata.join("stray.tmp"), "left over").unwrap();

    let refused = restore::restore(&store, &restore_options(&repo, dir.path(), "again", Target::Latest))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not empty") && refused.to_string().contains("--delta"),
        "{refused}"
    );

    let mut delta = restore_options(&repo, dir.path(), "again", Target::Latest);
    delta.delta = true;
    delta.start = true;
    let report = restore::restore(&store, &delta).await.unwrap();
    // The damaged file, and postgresql.auto.conf, which the first restore's recovery settings changed.
    assert_eq!(report.files_written, 2, "only files that differ from the backup are rewritten");
    assert_eq!(report.files_reused, first.files_written - 2);
    assert!(!pgdata.join("stray.tmp").exists(), "files the backup does not have are removed");
    assert_eq!(std::fs::read_to_string(pgdata.join("PG_VERSION")).unwrap().trim(), "15");
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(report.dsn.as_deref().unwrap()).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, 20_000 + 3 * 100, "every row archived before the restore is back");
    support::servers::stop_blocking(
        &lifeboat_backup::instance::LocalInstance::for_pgdata(
            &pgdata,
            delta.port.unwrap(),
            lifeboat_backup::process::Spawner::unrecorded(),
        )
        .unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_an_unreachable_endpoint_say_so() {
    let Some(repo) = TestRepo::s3() else { return };
    // SAFETY: this test's own process; no S3 client has read the environment yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", &repo.garage.as_ref().unwrap().key_id);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    }
    let store = lifeboat_backup::store::open(&lifeboat_backup::RepoUrl::parse(&repo.url).unwrap())
        .await
        .unwrap();
    let error = manifest::list(&store).await.unwrap_err();
    assert!(
        error.to_string().contains("access denied") && error.to_string().contains("AWS_SECRET_ACCESS_KEY"),
        "{error}"
    );
    assert!(!error.is_retryable(), "wrong credentials do not fix themselves");

    let port = free_port();
    let url = format!("s3://lifeboat/x?endpoint=http://127.0.0.1:{port}&region=garage");
    let store = lifeboat_backup::store::open(&lifeboat_backup::RepoUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let error = manifest::list(&store).await.unwrap_err();
    assert!(error.to_string().contains("endpoint unreachable"), "{error}");
    assert!(error.is_retryable());
}

async fn exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::query(sql).execute(conn).await.unwrap();
}

/// A full backup and two incrementals on top of it, the older two then pruned: the last
/// incremental alone restores every row, because the parts it shares survive the prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_an_incremental_chain_holds_every_row_after_the_older_backups_are_pruned() {
    let dir = shared_tempdir();
    let repo = TestRepo::s3().unwrap_or_else(|| TestRepo::local(dir.path()));
    let store = repo.store().await;
    let primary = Primary::start(dir.path(), &repo).await;
    let mut conn = primary.connect().await;
    // `cold` (≈ 25 MB) never changes after the full backup; `hot` changes before each incremental.
    exec(
        &mut conn,
        "CREATE TABLE cold AS SELECT g AS id, md5(g::text) || md5((g * 31)::text) AS v FROM generate_series(1, 300000) g",
    )
    .await;
    exec(&mut conn, "CREATE TABLE hot (id int PRIMARY KEY, v text)").await;
    exec(&mut conn, "CHECKPOINT").await;
    let backup = |id: &str, incremental: bool| BackupOptions {
        dsn: primary.instance.dsn("postgres"),
        pgdata: None,
        id: Some(id.into()),
        parallel: 2,
        incremental,
    };
    let full = basebackup::take(&store, &backup("full", true)).await.unwrap();
    assert_eq!(full.reference, None, "with no earlier backup, an incremental one is a full one");

    exec(&mut conn, "INSERT INTO hot SELECT g, 'first' FROM generate_series(1, 1000) g").await;
    exec(&mut conn, "CREATE TABLE added AS SELECT g AS id FROM generate_series(1, 500) g").await;
    exec(&mut conn, "CHECKPOINT").await;
    let first = basebackup::take(&store, &backup("incr1", true)).await.unwrap();
    exec(&mut conn, "INSERT INTO hot SELECT g, 'second' FROM generate_series(1001, 2000) g").await;
    exec(&mut conn, "CHECKPOINT").await;
    let second = basebackup::take(&store, &backup("incr2", true)).await.unwrap();
    exec(&mut conn, "INSERT INTO hot SELECT g, 'after' FROM generate_series(2001, 2100) g").await;
    primary.archive_all().await;

    assert_eq!(first.reference.as_deref(), Some("full"));
    assert_eq!(second.reference.as_deref(), Some("incr1"));
    assert_eq!(second.total_size, second.files.iter().map(|f| f.size).sum::<u64>());
    for incremental in [&first, &second] {
        assert!(
            incremental.stored_size * 4 < full.stored_size,
            "{}: {} bytes stored against the full backup's {}",
            incremental.id,
            incremental.stored_size,
            full.stored_size
        );
    }
    // Which parts hold a table's file in the last backup.
    let mut parts_of = async |table: &str| -> Vec<String> {
        let path: String = sqlx::query_scalar("SELECT pg_relation_filepath($1::regclass)")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let file = second
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{table}'s file is in the backup"));
        file.chunks.iter().map(|c| second.parts[c.part].key.clone()).collect()
    };
    assert!(
        parts_of("cold").await.iter().all(|key| key.starts_with("backups/full/")),
        "the unchanged table is stored once, by the full backup"
    );
    assert!(parts_of("hot").await.iter().all(|key| key.starts_with("backups/incr2/")));

    let pruned = catalog::prune(&store, 1).await.unwrap();
    assert_eq!(pruned.removed_backups, vec!["full".to_string(), "incr1".to_string()]);
    let left: std::collections::BTreeSet<String> = store
        .list("backups/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !k.starts_with("backups/incr2/"))
        .collect();
    let shared: std::collections::BTreeSet<String> = second
        .parts
        .iter()
        .map(|p| p.key.clone())
        .filter(|k| !k.starts_with("backups/incr2/"))
        .collect();
    assert_eq!(left, shared, "the prune keeps exactly the older parts the kept backup lists");
    let verified = catalog::verify(&store, None, 2).await.unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);

    let mut options = restore_options(&repo, dir.path(), "restored", Target::Latest);
    options.start = true;
    let report = restore::restore(&store, &options).await.unwrap();
    assert_eq!(report.backup, "incr2");
    use sqlx::Connection;
    let mut restored = sqlx::PgConnection::connect(report.dsn.as_deref().unwrap()).await.unwrap();
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM cold), (SELECT count(*) FROM hot), (SELECT count(*) FROM added), \
         (SELECT count(*) FROM cold WHERE v = md5(id::text) || md5((id * 31)::text))",
    )
    .fetch_one(&mut restored)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (300_000, 2100, 500, 300_000),
        "every row, with its content, from the chain and the WAL"
    );
    support::servers::stop_blocking(
        &lifeboat_backup::instance::LocalInstance::for_pgdata(
            &options.pgdata,
            options.port.unwrap(),
            lifeboat_backup::process::Spawner::unrecorded(),
        )
        .unwrap(),
    );
}

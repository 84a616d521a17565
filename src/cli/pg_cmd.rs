//! `lifeboat pg …`: the PostgreSQL backup tool on the command line: WAL archiving commands
//! for PostgreSQL itself, base backups, listing, verification, pruning and point-in-time
//! restore. All of it is `lifeboat_backup`; this module only parses and prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use lifeboat_backup::restore::{RestoreOptions, Target, parse_target_time};
use lifeboat_backup::wal_name::parse_lsn;
use lifeboat_backup::{BackupError, RepoUrl, basebackup, catalog, store};

use super::pg_wal::{self, WalFetchArgs, WalPrefetchArgs, WalPushAheadArgs, WalPushArgs};
use super::{Exit, exit};

#[derive(Subcommand, Debug)]
pub enum PgCommand {
    /// Archive one WAL file (archive_command = 'lifeboat pg wal-push --repo URL %p').
    WalPush(WalPushArgs),
    /// Fetch one WAL file (restore_command = 'lifeboat pg wal-fetch --repo URL %f %p').
    /// Exits 1 when the file is not archived, 126 on errors (so recovery stops instead of ending early).
    WalFetch(WalFetchArgs),
    #[command(hide = true)]
    WalPushAhead(WalPushAheadArgs),
    #[command(hide = true)]
    WalPrefetch(WalPrefetchArgs),
    /// Take a base backup of a running server.
    Backup(BackupArgs),
    /// List backups and the archived WAL: the restorable window.
    Backups(RepoArgs),
    /// Check every object's checksum and that WAL is continuous from each backup on.
    Verify(VerifyArgs),
    /// Remove all but the newest N backups and the WAL only they needed.
    Prune(PruneArgs),
    /// Restore to a point in time into a new data directory.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
pub struct RepoArgs {
    /// Repository: file:///path or s3://bucket/prefix?endpoint=URL&region=NAME.
    /// S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the usual AWS chain.
    #[arg(long, env = "LIFEBOAT_REPO")]
    repo: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Data directory of the server (its port and socket are read from postmaster.pid).
    #[arg(long, required_unless_present = "dsn")]
    pgdata: Option<PathBuf>,
    /// Connection to the server: postgres://postgres@127.0.0.1:5432/postgres, or libpq's
    /// keyword form, e.g. "host=/var/run/postgresql port=5432 user=postgres dbname=postgres".
    #[arg(long, value_parser = crate::steps::dsn::to_url)]
    dsn: Option<String>,
    /// Database role used with --pgdata.
    #[arg(long, default_value = "postgres")]
    user: String,
    /// Backup id (default: the start time, 20261122T103000Z).
    #[arg(long)]
    id: Option<String>,
    /// Parallel compression and upload.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Store only the files whose content changed since the newest backup of this cluster
    /// (compared by size and SHA-256); a full backup when there is none.
    #[arg(long)]
    incremental: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this backup (default: all).
    backup: Option<String>,
    #[arg(long, default_value_t = 4)]
    parallel: usize,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// How many of the newest backups to keep.
    #[arg(long)]
    keep: usize,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["target_time", "target_lsn", "target_name", "target_xid", "latest", "immediate"]))]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// New data directory (must not exist or be empty, unless --delta).
    #[arg(long)]
    pgdata: PathBuf,
    /// Recover up to this time (RFC 3339, or `2026-11-22 10:15:00+00`).
    #[arg(long)]
    target_time: Option<String>,
    /// Recover up to this WAL position, e.g. 0/5A3B2C8.
    #[arg(long)]
    target_lsn: Option<String>,
    /// Recover up to this restore point (pg_create_restore_point).
    #[arg(long)]
    target_name: Option<String>,
    /// Recover up to the commit of this transaction id.
    #[arg(long)]
    target_xid: Option<String>,
    /// Stop just before the target instead of just after it (e.g. before a bad transaction).
    #[arg(long)]
    target_exclusive: bool,
    /// Recover all archived WAL.
    #[arg(long)]
    latest: bool,
    /// Stop as soon as the backup is consistent.
    #[arg(long)]
    immediate: bool,
    /// Restore this backup instead of the newest one that reaches the target.
    #[arg(long)]
    backup: Option<String>,
    /// Reuse files in a non-empty --pgdata whose checksums match the backup.
    #[arg(long)]
    delta: bool,
    /// Start PostgreSQL, wait until it reached the target and was promoted.
    #[arg(long)]
    start: bool,
    /// Port for the restored server.
    #[arg(long)]
    port: Option<u16>,
    /// Role to connect as while waiting for recovery.
    #[arg(long, default_value = "postgres")]
    user: String,
    /// Keep WAL archiving on in the restored server (off by default).
    #[arg(long)]
    keep_archiving: bool,
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Give up waiting for recovery after this many seconds.
    #[arg(long, default_value_t = 3600)]
    wait_timeout: u64,
}

pub(super) fn to_anyhow(error: BackupError) -> anyhow::Error {
    let code = match error {
        BackupError::Invalid(_) => exit::INVALID_INPUT,
        _ => exit::RUN_FAILED,
    };
    Exit {
        code,
        message: error.to_string(),
    }
    .into()
}

pub(super) async fn open(repo: &str) -> anyhow::Result<store::Store> {
    let url = RepoUrl::parse(repo).map_err(|e| super::invalid(format!("--repo: {e}")))?;
    store::open(&url).await.map_err(to_anyhow)
}

fn print_json(value: &impl serde::Serialize) {
    outln!("{}", serde_json::to_string_pretty(value).expect("reports serialize"));
}

pub async fn run(command: PgCommand) -> anyhow::Result<u8> {
    match command {
        PgCommand::WalPush(args) => pg_wal::wal_push(args).await,
        PgCommand::WalPushAhead(args) => pg_wal::wal_push_ahead(args).await,
        PgCommand::WalFetch(args) => Ok(pg_wal::wal_fetch(args).await),
        PgCommand::WalPrefetch(args) => pg_wal::wal_prefetch(args).await,
        PgCommand::Backup(args) => {
            let store = open(&args.repo.repo).await?;
            let dsn = match (&args.dsn, &args.pgdata) {
                (Some(dsn), _) => dsn.clone(),
                (None, Some(pgdata)) => basebackup::dsn_from_pgdata(pgdata, &args.user).map_err(to_anyhow)?,
                (None, None) => unreachable!("clap requires one of them"),
            };
            let options = basebackup::BackupOptions {
                dsn,
                pgdata: args.pgdata,
                id: args.id,
                parallel: args.parallel,
                incremental: args.incremental,
            };
            let manifest = basebackup::take(&store, &options).await.map_err(to_anyhow)?;
            if args.repo.json {
                print_json(&serde_json::json!({
                    "id": manifest.id, "start_lsn": manifest.start_lsn, "stop_lsn": manifest.stop_lsn,
                    "start_time": manifest.start_time, "stop_time": manifest.stop_time, "size": manifest.total_size,
                    "stored_size": manifest.stored_size, "files": manifest.files.len(), "reference": manifest.reference,
                }));
            } else {
                let kind = match &manifest.reference {
                    Some(reference) => format!(" (incremental on {reference})"),
                    None => String::new(),
                };
                outln!(
                    "backup {}{kind}: {} files, {} → {} stored, WAL {} .. {} ({} s)",
                    manifest.id,
                    manifest.files.len(),
                    human_bytes(manifest.total_size),
                    human_bytes(manifest.stored_size),
                    manifest.start_lsn,
                    manifest.stop_lsn,
                    (manifest.stop_time - manifest.start_time).num_milliseconds() as f64 / 1000.0
                );
            }
            Ok(exit::SUCCESS)
        }
        PgCommand::Backups(args) => {
            let store = open(&args.repo).await?;
            let catalog = catalog::catalog(&store).await.map_err(to_anyhow)?;
            if args.json {
                print_json(&catalog);
                return Ok(exit::SUCCESS);
            }
            outln!(
                "{:<22} {:>3} {:<25} {:<25} {:>10} {:>10}  INCREMENTAL ON",
                "BACKUP",
                "TLI",
                "START",
                "CONSISTENT AT",
                "SIZE",
                "STORED"
            );
            for b in &catalog.backups {
                outln!(
                    "{:<22} {:>3} {:<25} {:<25} {:>10} {:>10}  {}",
                    b.id,
                    b.timeline,
                    b.start_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    b.stop_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    human_bytes(b.size),
                    human_bytes(b.stored_size),
                    b.reference.as_deref().unwrap_or("-")
                );
            }
            let wal = &catalog.wal;
            outln!(
                "WAL: {} segments, {} .. {}, timelines {:?}",
                wal.segments,
                wal.first.as_deref().unwrap_or("-"),
                wal.last.as_deref().unwrap_or("-"),
                wal.timelines
            );
            match catalog.window() {
                Some((from, to)) => outln!("restorable window: {} .. {}", from.to_rfc3339(), to.to_rfc3339()),
                None => outln!("restorable window: none (no complete backup, or no archived WAL)"),
            }
            Ok(exit::SUCCESS)
        }
        PgCommand::Verify(args) => {
            let store = open(&args.repo.repo).await?;
            let report = catalog::verify(&store, args.backup.as_deref(), args.parallel)
                .await
                .map_err(to_anyhow)?;
            if args.repo.json {
                print_json(&report);
            } else {
                outln!(
                    "checked {} backup(s), {} objects, {}",
                    report.backups_checked.len(),
                    report.objects_checked,
                    human_bytes(report.bytes_checked)
                );
                for problem in &report.problems {
                    outln!("PROBLEM: {problem}");
                }
                outln!("{}", if report.ok() { "OK" } else { "FAILED" });
            }
            Ok(if report.ok() { exit::SUCCESS } else { exit::RUN_FAILED })
        }
        PgCommand::Prune(args) => {
            let store = open(&args.repo.repo).await?;
            let report = catalog::prune(&store, args.keep).await.map_err(to_anyhow)?;
            if args.repo.json {
                print_json(&report);
            } else {
                outln!(
                    "kept {:?}; removed {} backup(s) {:?} and {} WAL file(s)",
                    report.kept,
                    report.removed_backups.len(),
                    report.removed_backups,
                    report.removed_wal
                );
            }
            Ok(exit::SUCCESS)
        }
        PgCommand::Restore(args) => restore(args).await,
    }
}

fn restore_target(args: &RestoreArgs) -> anyhow::Result<Target> {
    Ok(if let Some(time) = &args.target_time {
        Target::Time(parse_target_time(time).map_err(|e| super::invalid(format!("--target-time: {e}")))?)
    } else if let Some(lsn) = &args.target_lsn {
        Target::Lsn(parse_lsn(lsn).map_err(|e| super::invalid(format!("--target-lsn: {e}")))?)
    } else if let Some(name) = &args.target_name {
        Target::Name(name.clone())
    } else if let Some(xid) = &args.target_xid {
        if xid.parse::<u64>().is_err() {
            return Err(super::invalid(format!("--target-xid: `{xid}` is not a transaction id (a number)")));
        }
        Target::Xid(xid.clone())
    } else if args.immediate {
        Target::Immediate
    } else {
        Target::Latest
    })
}

async fn restore(args: RestoreArgs) -> anyhow::Result<u8> {
    let target = restore_target(&args)?;
    let store = open(&args.repo.repo).await?;
    let pgdata = std::path::absolute(&args.pgdata)?;
    let bin_dir = lifeboat_backup::instance::sibling(&pgdata, ".bin");
    let lifeboat_exe = lifeboat_backup::instance::executable_for_server(&std::env::current_exe()?, &bin_dir).map_err(to_anyhow)?;
    let options = RestoreOptions {
        repo_url: args.repo.repo.clone(),
        pgdata,
        target,
        inclusive: !args.target_exclusive,
        backup: args.backup,
        delta: args.delta,
        parallel: args.parallel,
        lifeboat_exe,
        port: args.port,
        start: args.start,
        user: args.user,
        keep_archiving: args.keep_archiving,
        wait_timeout: Duration::from_secs(args.wait_timeout),
        server_env: Vec::new(),
        spawner: lifeboat_backup::process::Spawner::unrecorded(),
    };
    let report = lifeboat_backup::restore::restore(&store, &options).await.map_err(to_anyhow)?;
    if args.repo.json {
        print_json(&report);
    } else {
        outln!(
            "restored backup {} into {} ({} files written, {} reused, {}, {:.1} s) for target {}",
            report.backup,
            report.pgdata.display(),
            report.files_written,
            report.files_reused,
            human_bytes(report.bytes_written),
            report.unpack_ms as f64 / 1000.0,
            report.target
        );
        if report.started {
            outln!(
                "recovered and promoted in {:.1} s: reached LSN {}, last commit {}, timeline {}; connect with {}",
                report.recovery_ms as f64 / 1000.0,
                report.reached_lsn.as_deref().unwrap_or("-"),
                report.reached_time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into()),
                report.timeline.unwrap_or(0),
                report.dsn.as_deref().unwrap_or("-")
            );
        } else {
            outln!("start it with: pg_ctl -D {} start", report.pgdata.display());
        }
    }
    Ok(exit::SUCCESS)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

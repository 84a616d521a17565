//! `lifeboat pg wal-push` and `wal-fetch`: the commands PostgreSQL itself runs as
//! `archive_command` and `restore_command`, and the background workers they start (a pusher
//! ahead of the archiver, a prefetcher ahead of replay) as detached copies of this binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use lifeboat_backup::wal::{self, AheadQueue, FetchOutcome, PushOutcome};
use lifeboat_backup::wal_name::DEFAULT_SEGMENT_SIZE;
use lifeboat_backup::{RepoUrl, store};

use super::exit;
use super::pg_cmd::{open, to_anyhow};

/// PostgreSQL treats a `restore_command` exit status above 125 as fatal and stops recovery,
/// instead of taking the file as missing and ending recovery early at that point.
const FETCH_FATAL: u8 = 126;

/// How long a call waits for the pusher to push its segment before pushing it itself. As
/// pgBackRest's archive-timeout: long enough for a deep backlog, short enough that a stuck
/// pusher does not stall archiving for good.
const PUSHER_WAIT: Duration = Duration::from_secs(60);

/// How long a pusher waits for the next segment before it exits. Under steady write load a
/// segment fills in well under this, so one pusher serves many calls.
const PUSHER_LINGER: Duration = Duration::from_secs(3);

#[derive(Args, Debug)]
pub struct WalPushArgs {
    #[arg(long, env = "LIFEBOAT_REPO")]
    repo: String,
    /// Pushes at a time: segments already marked ready are pushed in parallel by a background
    /// pusher, and the archiver's calls for them return as soon as each is in the repository.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// The WAL file (%p).
    path: PathBuf,
}

#[derive(Args, Debug)]
pub struct WalPushAheadArgs {
    #[arg(long)]
    repo: String,
    #[arg(long)]
    parallel: usize,
    /// The server's pg_wal directory.
    wal_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct WalFetchArgs {
    #[arg(long, env = "LIFEBOAT_REPO")]
    repo: String,
    /// Segments to prefetch ahead of replay into the spool (0 turns prefetch off).
    #[arg(long, default_value_t = 16)]
    prefetch: usize,
    /// Parallel downloads of the prefetcher.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// The WAL file name PostgreSQL wants (%f).
    name: String,
    /// Where to put it (%p).
    dest: PathBuf,
}

#[derive(Args, Debug)]
pub struct WalPrefetchArgs {
    #[arg(long)]
    repo: String,
    #[arg(long)]
    spool: PathBuf,
    #[arg(long)]
    parallel: usize,
    names: Vec<String>,
}

pub async fn wal_push(args: WalPushArgs) -> anyhow::Result<u8> {
    let (queue, name) = AheadQueue::for_wal_file(&args.path, &args.repo).map_err(to_anyhow)?;
    // Under load most calls are for segments the pusher already pushed: answer those
    // before paying for a connection to the repository.
    if queue.take(&name) {
        return Ok(exit::SUCCESS);
    }
    if queue.pusher_running() || (queue.others_ready(&name) && start_pusher(&queue, &args).await) {
        if queue.wait_for(&name, PUSHER_WAIT).await {
            return Ok(exit::SUCCESS);
        }
        tracing::info!(wal = %name, "the pusher did not push this segment; pushing it here");
    }
    let store = open(&args.repo).await?;
    match wal::push_file(&store, &args.path).await.map_err(to_anyhow)? {
        PushOutcome::Pushed => {}
        PushOutcome::AlreadyArchived => tracing::info!(wal = %name, "already archived with identical content"),
    }
    Ok(exit::SUCCESS)
}

/// Starts a detached pusher and waits until it holds its lock (or has exited), so the
/// caller's wait for its marker cannot mistake a pusher still starting for none at all.
/// False when it could not be started.
async fn start_pusher(queue: &AheadQueue, args: &WalPushArgs) -> bool {
    let mut command = detached_self();
    command
        .args(["pg", "wal-push-ahead", "--repo", &args.repo])
        .args(["--parallel", &args.parallel.to_string()])
        .arg(queue.wal_dir());
    let Ok(mut child) = command.spawn() else { return false };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !queue.pusher_running() && Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

pub async fn wal_push_ahead(args: WalPushAheadArgs) -> anyhow::Result<u8> {
    let Some(pusher) = AheadQueue::new(&args.wal_dir, &args.repo).become_pusher().map_err(to_anyhow)? else {
        return Ok(exit::SUCCESS);
    };
    let store = open(&args.repo).await?;
    let pushed = pusher.run(&store, args.parallel, PUSHER_LINGER).await.map_err(to_anyhow)?;
    tracing::debug!(pushed, "pusher done");
    Ok(exit::SUCCESS)
}

pub async fn wal_fetch(args: WalFetchArgs) -> u8 {
    let spool = wal::default_spool(&args.dest);
    let prefetch = args.prefetch > 0;
    match fetch_one(&args, prefetch.then_some(spool.as_path())).await {
        Ok(FetchOutcome::Missing) => exit::RUN_FAILED,
        Ok(_) => {
            if prefetch {
                wal::clean_spool(&spool, &args.name, DEFAULT_SEGMENT_SIZE);
                let names = wal::prefetch_candidates(&args.name, DEFAULT_SEGMENT_SIZE, args.prefetch);
                if !names.is_empty() && !wal::prefetcher_running(&spool) {
                    spawn_prefetcher(&args.repo, &spool, args.parallel, &names);
                }
            }
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: wal-fetch {}: {e}", args.name);
            FETCH_FATAL
        }
    }
}

/// From the spool when the prefetcher has it (no connection to the repository at all),
/// else from the repository.
async fn fetch_one(args: &WalFetchArgs, spool: Option<&Path>) -> lifeboat_backup::Result<FetchOutcome> {
    if let Some(spool) = spool
        && wal::take_spooled(&args.name, &args.dest, spool).await?
    {
        return Ok(FetchOutcome::FromSpool);
    }
    let store = store::open(&RepoUrl::parse(&args.repo)?).await?;
    wal::fetch(&store, &args.name, &args.dest).await
}

pub async fn wal_prefetch(args: WalPrefetchArgs) -> anyhow::Result<u8> {
    let Some(prefetcher) = wal::Prefetcher::for_spool(&args.spool).map_err(to_anyhow)? else {
        return Ok(exit::SUCCESS);
    };
    let store = open(&args.repo).await?;
    prefetcher.run(&store, &args.names, args.parallel).await.map_err(to_anyhow)?;
    Ok(exit::SUCCESS)
}

/// Starts a detached prefetcher so this `restore_command` returns at once.
fn spawn_prefetcher(repo: &str, spool: &Path, parallel: usize, names: &[String]) {
    let mut command = detached_self();
    command
        .args(["pg", "wal-prefetch", "--repo", repo, "--spool"])
        .arg(spool)
        .args(["--parallel", &parallel.to_string()])
        .args(names);
    let _ = command.spawn();
}

/// This binary as a background worker that outlives the command PostgreSQL ran. No stdio:
/// whoever reads the command's output must not wait for the worker, and the worker's
/// failures are reported by the foreground call that meets them next.
fn detached_self() -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("lifeboat"));
    let mut command = std::process::Command::new(exe);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    command
}

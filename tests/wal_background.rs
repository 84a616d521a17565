//! The WAL commands' background workers. Archiving ahead of PostgreSQL's archiver: a pusher
//! pushes every ready segment in parallel and the archiver's calls answer from its markers,
//! per repository, never acknowledging a segment that is not in the repository, and never
//! hiding an error. Fetching: `restore_command` waits for the segment a restore's stager is
//! fetching instead of fetching it again.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lifeboat_backup::wal::{self, AheadQueue};
use support::servers::{TestRepo, lifeboat_for_postgres, shared_tempdir};

/// A `pg_wal` directory as PostgreSQL leaves it: segment files and their `.ready` flags.
struct WalDir(PathBuf);

impl WalDir {
    fn new(dir: &Path) -> WalDir {
        let pg_wal = dir.join("pg_wal");
        std::fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
        WalDir(pg_wal)
    }

    fn name(n: u32) -> String {
        format!("0000000100000000000000{n:02X}")
    }

    /// Distinct content per segment, so a mix-up between segments cannot pass unnoticed.
    fn content(n: u32) -> Bytes {
        (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 ^ n as u8)
            .collect()
    }

    fn ready(&self, n: u32) -> PathBuf {
        let path = self.0.join(Self::name(n));
        std::fs::write(&path, Self::content(n)).unwrap();
        std::fs::write(self.0.join("archive_status").join(format!("{}.ready", Self::name(n))), "").unwrap();
        path
    }

    /// What the archiver does once a call for the segment succeeded.
    fn done(&self, n: u32) {
        let status = self.0.join("archive_status");
        let name = Self::name(n);
        std::fs::rename(status.join(format!("{name}.ready")), status.join(format!("{name}.done"))).unwrap();
    }

    /// Segment markers left behind, for any repository: none once every call has been
    /// answered.
    fn markers_left(&self) -> Vec<String> {
        let Ok(repo_dirs) = std::fs::read_dir(self.0.join(".lifeboat-pushed")) else {
            return Vec::new();
        };
        repo_dirs
            .filter_map(|d| d.ok())
            .flat_map(|d| std::fs::read_dir(d.path()).unwrap().filter_map(|e| e.ok()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 24)
            .collect()
    }
}

/// `archive_command` as PostgreSQL runs it: the real binary, one segment per call.
fn wal_push(repo: &TestRepo, segment: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["pg", "wal-push", "--parallel", "2", "--repo", &repo.url])
        .arg(segment)
        .envs(repo.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn wait_until_no_pusher(queue: &AheadQueue) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.pusher_running() {
        assert!(Instant::now() < deadline, "the pusher exits once nothing is left to push");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pusher_pushes_every_ready_segment_and_its_markers_answer_only_for_its_repository() {
    let dir = shared_tempdir();
    let (first, second) = (TestRepo::local(&dir.path().join("a")), TestRepo::local(&dir.path().join("b")));
    let store = first.store().await;
    let wal_dir = WalDir::new(dir.path());
    for n in 1..=5 {
        wal_dir.ready(n);
    }
    let (queue, other_queue) = (AheadQueue::new(&wal_dir.0, &first.url), AheadQueue::new(&wal_dir.0, &second.url));

    let pusher = queue.become_pusher().unwrap().expect("no pusher is running yet");
    assert!(queue.pusher_running());
    assert!(queue.become_pusher().unwrap().is_none(), "one pusher per repository");
    let other_pusher = other_queue.become_pusher().unwrap();
    assert!(other_pusher.is_some(), "another repository has its own pusher");
    drop(other_pusher);

    assert_eq!(pusher.run(&store, 2, Duration::ZERO).await.unwrap(), 5);
    drop(pusher);
    assert!(!queue.pusher_running());
    for n in 1..=5 {
        let name = WalDir::name(n);
        assert_eq!(
            wal::download(&store, &name).await.unwrap(),
            Some(WalDir::content(n)),
            "{name} is archived"
        );
        assert!(
            !other_queue.take(&name),
            "{name}: a marker for one repository never answers for another"
        );
        assert!(queue.take(&name), "{name}: the pusher left a marker");
        assert!(!queue.take(&name), "{name}: a marker answers once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archivers_calls_through_the_binary_get_every_segment_into_two_repositories() {
    let dir = shared_tempdir();
    let repos = [TestRepo::local(&dir.path().join("a")), TestRepo::local(&dir.path().join("b"))];
    let wal_dir = WalDir::new(dir.path());
    let mut segments: Vec<PathBuf> = (1..=4).map(|n| wal_dir.ready(n)).collect();
    // archive_command = 'lifeboat pg wal-push --repo A %p && lifeboat pg wal-push --repo B %p'.
    // Segment 5 becomes ready between the two repositories' calls for segment 1, after the
    // first repository's pusher may have looked.
    for n in 1..=6u32 {
        for (i, repo) in repos.iter().enumerate() {
            let output = wal_push(repo, &segments[n as usize - 1]);
            assert!(
                output.status.success(),
                "segment {n}, repository {i}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            if n == 1 && i == 0 {
                segments.push(wal_dir.ready(5));
                segments.push(wal_dir.ready(6));
            }
        }
        wal_dir.done(n);
    }
    for repo in &repos {
        let store = repo.store().await;
        for n in 1..=6 {
            assert_eq!(
                wal::download(&store, &WalDir::name(n)).await.unwrap(),
                Some(WalDir::content(n)),
                "segment {n} is in {}",
                repo.url
            );
        }
        wait_until_no_pusher(&AheadQueue::new(&wal_dir.0, &repo.url));
    }
    assert_eq!(wal_dir.markers_left(), Vec::<String>::new(), "every marker was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_segment_stops_the_pusher_and_the_archivers_call_for_it_fails_with_the_conflict() {
    let dir = shared_tempdir();
    let repo = TestRepo::local(&dir.path().join("a"));
    let store = repo.store().await;
    let wal_dir = WalDir::new(dir.path());
    let segments: Vec<PathBuf> = (1..=5).map(|n| wal_dir.ready(n)).collect();
    // Another primary already archived different content as segment 3 (split brain).
    let theirs = Bytes::from(vec![3u8; 1 << 20]);
    wal::push_bytes(&store, &WalDir::name(3), theirs.clone()).await.unwrap();

    for n in 1..=2 {
        let output = wal_push(&repo, &segments[n - 1]);
        assert!(output.status.success(), "segment {n}: {}", String::from_utf8_lossy(&output.stderr));
        wal_dir.done(n as u32);
    }
    let output = wal_push(&repo, &segments[2]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the call for the conflicting segment fails: {stderr}"
    );
    assert!(
        stderr.contains(&WalDir::name(3)) && stderr.contains("already archived with different content"),
        "it says which segment and why: {stderr}"
    );
    assert_eq!(
        wal::download(&store, &WalDir::name(3)).await.unwrap(),
        Some(theirs),
        "the archived segment is untouched"
    );
    let queue = AheadQueue::new(&wal_dir.0, &repo.url);
    wait_until_no_pusher(&queue);
    assert!(!queue.take(&WalDir::name(3)), "no marker answers for the segment that failed");
}

/// A restore runs as root and stages WAL for a server running as `postgres`: the stager's
/// lock file is root's, and the server's `wal-fetch` must still see the stager at work and
/// wait for its segment (the repository here is unreachable, so fetching it again would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_command_as_the_server_user_waits_for_the_segment_a_root_stager_is_fetching() {
    let dir = shared_tempdir();
    let wal_dir = WalDir::new(dir.path());
    let spool = wal_dir.0.join(wal::SPOOL_DIR);
    wal::prepare_spool(&spool).unwrap();
    let postgres = lifeboat_backup::instance::ServerUser::current_or_postgres().unwrap();
    lifeboat_backup::instance::ServerUser::chown_tree(postgres, &wal_dir.0).unwrap();
    let stager = wal::Prefetcher::for_spool(&spool).unwrap().expect("no stager yet");

    let name = WalDir::name(7);
    let dest = wal_dir.0.join("RECOVERYXLOG");
    let mut fetch = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(lifeboat_for_postgres(dir.path()))
        .args(["pg", "wal-fetch", "--repo", "file:///nonexistent/lifeboat-repo", &name])
        .arg(&dest)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fetch.try_wait().unwrap().is_none(), "wal-fetch waits while the stager works");
    let staged = spool.join(&name);
    let partial = spool.join(format!(".{name}.lifeboat-tmp"));
    std::fs::write(&partial, WalDir::content(7)).unwrap();
    lifeboat_backup::instance::ServerUser::chown_tree(postgres, &partial).unwrap();
    std::fs::rename(&partial, &staged).unwrap();
    let output = fetch.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        WalDir::content(7),
        "the staged segment, not another download"
    );
    drop(stager);
}

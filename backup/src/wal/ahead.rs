//! Pushing ahead of PostgreSQL's archiver.
//!
//! The archiver runs `archive_command` for one segment at a time, oldest first, so one
//! segment's round trip bounds archiving throughput. A [`Pusher`] runs beside it instead: a
//! background worker that pushes every segment marked `.ready` with `parallel` pushes at
//! once, keeps every worker busy while segments are waiting, and lingers a little for the
//! next ones. For each segment it has made durable in the repository it leaves a marker;
//! the archiver's call for that segment takes the marker and answers at once ([`AheadQueue`]).
//!
//! The guarantee is unchanged: a call acknowledges a segment only after a push of it has
//! returned from the repository. Markers are kept per repository, because one
//! `archive_command` may push to several and one repository's marker must never answer for
//! another. They live in `pg_wal`, which base backups skip, so a restored cluster never
//! inherits them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::worker_lock::{self, WorkerLock};
use super::{is_segment_name, push_file, wal_file_name};
use crate::error::{BackupError, Result};
use crate::store::{Store, sha256_hex};

/// Directory inside `pg_wal` holding one marker directory per repository.
const MARKERS: &str = ".lifeboat-pushed";

/// How often a waiting call looks for its marker, and an idle pusher for new segments.
const POLL: Duration = Duration::from_millis(5);
const IDLE_POLL: Duration = Duration::from_millis(20);

/// A segment this pusher pushed whose marker is gone but which is still `.ready` is
/// normally one the archiver has just been answered for and is about to mark done. Only
/// if it stays ready this long was the answer lost (the server restarted before it marked
/// the segment), and the pusher pushes it again so the archiver's new call is answered.
const REPUSH_AFTER: Duration = Duration::from_secs(5);

/// The segments of one `pg_wal` directory and what a pusher has pushed of them to one
/// repository.
#[derive(Debug, Clone)]
pub struct AheadQueue {
    wal_dir: PathBuf,
    markers: PathBuf,
}

impl AheadQueue {
    /// The queue of the WAL file at `path` (what `%p` names) for repository `repo`, and the
    /// file's name.
    pub fn for_wal_file(path: &Path, repo: &str) -> Result<(AheadQueue, String)> {
        let name = wal_file_name(path)?;
        let wal_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok((AheadQueue::new(&wal_dir, repo), name))
    }

    pub fn new(wal_dir: &Path, repo: &str) -> AheadQueue {
        AheadQueue {
            wal_dir: wal_dir.to_path_buf(),
            markers: wal_dir.join(MARKERS).join(&sha256_hex(repo.as_bytes())[..16]),
        }
    }

    pub fn wal_dir(&self) -> &Path {
        &self.wal_dir
    }

    /// True (and the marker consumed) when a pusher has already made `name` durable in
    /// the repository: the answer needs neither the file nor the repository.
    pub fn take(&self, name: &str) -> bool {
        std::fs::remove_file(self.markers.join(name)).is_ok()
    }

    pub fn pusher_running(&self) -> bool {
        worker_lock::held(&self.markers)
    }

    /// Whether segments other than `name` are waiting for the archiver: only then is a
    /// pusher worth starting.
    pub fn others_ready(&self, name: &str) -> bool {
        self.ready().iter().any(|n| n != name)
    }

    /// Waits while a pusher runs for it to make `name` durable. True when it did (and the
    /// marker is consumed); false when no pusher is running, it stopped without pushing
    /// `name` (it stops at its first failure) or `timeout` passed: the caller pushes the
    /// segment itself, which reports any error properly.
    pub async fn wait_for(&self, name: &str, timeout: Duration) -> bool {
        if !is_segment_name(name) {
            // History and backup-label files are never pushed ahead.
            return false;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.take(name) {
                return true;
            }
            if !self.pusher_running() {
                // It may have left the marker just before it stopped.
                return self.take(name);
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Becomes this queue's pusher, or `None` when another one is at work.
    pub fn become_pusher(&self) -> Result<Option<Pusher>> {
        std::fs::create_dir_all(&self.markers).map_err(BackupError::io(&self.markers))?;
        Ok(worker_lock::try_hold(&self.markers)?.map(|lock| Pusher {
            queue: self.clone(),
            _lock: lock,
        }))
    }

    /// Segments marked ready, oldest first.
    fn ready(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.wal_dir.join("archive_status")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".ready")).map(str::to_string))
            .filter(|n| is_segment_name(n) && self.wal_dir.join(n).is_file())
            .collect();
        names.sort();
        names
    }

    fn marked(&self, name: &str) -> bool {
        self.markers.join(name).exists()
    }

    fn mark(&self, name: &str) {
        // Only a hint: if it is lost, the archiver's call pushes again and finds the
        // segment already archived.
        if let Err(e) = std::fs::File::create(self.markers.join(name)) {
            tracing::warn!(wal = name, error = %e, "could not leave a pushed-ahead marker");
        }
    }

    /// Markers the archiver will never ask for: their segment is no longer ready (it was
    /// archived by a call that did not wait for the marker).
    fn clear_stale_markers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.markers) else { return };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ready = self.wal_dir.join("archive_status").join(format!("{name}.ready"));
            if is_segment_name(&name) && !ready.exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The one background pusher of an [`AheadQueue`]; holds its lock while it lives.
pub struct Pusher {
    queue: AheadQueue,
    _lock: WorkerLock,
}

impl Pusher {
    /// Pushes ready segments, oldest first and `parallel` at a time, until none has been
    /// waiting for `linger`. Stops taking new segments at the first failure and returns it;
    /// the archiver's own call for that segment then pushes it and reports the error.
    /// Returns how many segments it pushed.
    pub async fn run(&self, store: &Store, parallel: usize, linger: Duration) -> Result<usize> {
        let queue = &self.queue;
        queue.clear_stale_markers();
        let mut in_flight_names: HashSet<String> = HashSet::new();
        let mut finished: HashMap<String, Instant> = HashMap::new();
        let mut waiting: VecDeque<String> = VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        let (mut pushed, mut failure, mut idle_since) = (0, None, Instant::now());
        loop {
            while failure.is_none() && in_flight.len() < parallel.max(1) {
                if waiting.is_empty() {
                    let due = |n: &String| {
                        !in_flight_names.contains(n) && !queue.marked(n) && finished.get(n).is_none_or(|at| at.elapsed() >= REPUSH_AFTER)
                    };
                    waiting.extend(queue.ready().into_iter().filter(due));
                }
                let Some(name) = waiting.pop_front() else { break };
                in_flight_names.insert(name.clone());
                in_flight.push(async move {
                    let outcome = push_file(store, &queue.wal_dir.join(&name)).await;
                    (name, outcome)
                });
            }
            let Some((name, outcome)) = in_flight.next().await else {
                if failure.is_some() || idle_since.elapsed() >= linger {
                    break;
                }
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            };
            idle_since = Instant::now();
            in_flight_names.remove(&name);
            match outcome {
                Ok(_) => {
                    queue.mark(&name);
                    finished.insert(name, Instant::now());
                    pushed += 1;
                }
                Err(e) => {
                    tracing::warn!(wal = %name, error = %e, "pushing ahead failed; the archiver's call will push it");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(pushed),
        }
    }
}

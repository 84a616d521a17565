//! Fetching archived WAL for `restore_command`, and the prefetcher that downloads the
//! segments replay will ask for next into a spool.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;

use super::is_segment_name;
use super::worker_lock::{self, WorkerLock};
use crate::codec;
use crate::error::{BackupError, Result};
use crate::layout::{self, meta};
use crate::store::{Store, sha256_hex};
use crate::wal_name::{Segment, WalFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    Fetched,
    /// Served from the prefetch spool.
    FromSpool,
    /// Not in the archive: the end of the archive, or a history file that never existed.
    Missing,
}

/// Downloads and unpacks one archived WAL file, checking both stored and raw checksums.
pub async fn download(store: &Store, name: &str) -> Result<Option<Bytes>> {
    let key = layout::wal_key(name);
    let Some((stored, object_meta)) = store.get(&key).await? else {
        return Ok(None);
    };
    let raw_size: usize = object_meta.get(meta::RAW_SIZE).and_then(|s| s.parse().ok()).unwrap_or(0);
    let expected = object_meta.get(meta::RAW_SHA256).cloned().unwrap_or_default();
    let key_for_error = key.clone();
    tokio::task::spawn_blocking(move || {
        let raw = codec::decompress(&key_for_error, &stored, raw_size)?;
        let actual = sha256_hex(&raw);
        if actual != expected {
            return Err(BackupError::Checksum {
                key: key_for_error,
                expected,
                actual,
            });
        }
        Ok(Some(Bytes::from(raw)))
    })
    .await
    .expect("decompression does not panic")
}

fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let temp = dest.with_file_name(format!(".{}.lifeboat-tmp", dest.file_name().unwrap_or_default().to_string_lossy()));
    std::fs::write(&temp, bytes).map_err(BackupError::io(&temp))?;
    std::fs::rename(&temp, dest).map_err(BackupError::io(dest))
}

/// Moves `name` from the prefetch spool to `dest`. While a prefetcher is at work it is most
/// likely fetching this very segment: waiting for it beats downloading the same bytes twice
/// on a busy machine. False when it is not there, and not coming: the caller downloads it.
pub async fn take_spooled(name: &str, dest: &Path, spool: &Path) -> Result<bool> {
    // Only segments are ever spooled: a timeline history file asked for while a prefetcher
    // works must not wait for it.
    if !is_segment_name(name) {
        return Ok(false);
    }
    let spooled = spool.join(name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if spooled.is_file() {
            std::fs::rename(&spooled, dest).map_err(BackupError::io(dest))?;
            return Ok(true);
        }
        if !worker_lock::held(spool) || std::time::Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Downloads `name` into `dest` (atomically: PostgreSQL never sees half a segment).
pub async fn fetch(store: &Store, name: &str, dest: &Path) -> Result<FetchOutcome> {
    match download(store, name).await? {
        Some(raw) => {
            write_atomically(dest, &raw)?;
            Ok(FetchOutcome::Fetched)
        }
        None => Ok(FetchOutcome::Missing),
    }
}

/// The segments a prefetcher should fetch after `name`, or none if `name` is not a segment.
pub fn prefetch_candidates(name: &str, segment_size: u64, count: usize) -> Vec<String> {
    let Some(WalFile::Segment(segment)) = WalFile::parse(name, segment_size) else {
        return Vec::new();
    };
    std::iter::successors(Some(segment.next()), |s| Some(s.next()))
        .take(count)
        .map(|s| s.name(segment_size))
        .collect()
}

/// Removes spooled segments that replay has already passed.
pub fn clean_spool(spool: &Path, current: &str, segment_size: u64) {
    let Some(current) = Segment::parse(current, segment_size) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(spool) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = match Segment::parse(&name, segment_size) {
            Some(s) => s.segno < current.segno,
            None => name.contains(".lifeboat-tmp"),
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a prefetcher is filling `spool` right now: starting another would only find it
/// locked.
pub fn prefetcher_running(spool: &Path) -> bool {
    worker_lock::held(spool)
}

/// Creates the spool directory.
pub fn prepare_spool(spool: &Path) -> Result<()> {
    std::fs::create_dir_all(spool).map_err(BackupError::io(spool))
}

/// Downloads `names` into `spool`, as the spool's one prefetcher; returns how many segments
/// were spooled (none when another prefetcher is at work).
pub async fn prefetch(store: &Store, names: &[String], spool: &Path, parallel: usize) -> Result<usize> {
    match Prefetcher::for_spool(spool)? {
        Some(prefetcher) => prefetcher.run(store, names, parallel).await,
        None => Ok(0),
    }
}

/// The one prefetcher of a spool; holds its lock while it lives.
pub struct Prefetcher {
    spool: PathBuf,
    _lock: WorkerLock,
}

impl Prefetcher {
    /// Becomes the spool's prefetcher, or `None` when another one is at work. Taken before
    /// connecting to the repository: most would-be prefetchers started by `wal-fetch` find
    /// one already running.
    pub fn for_spool(spool: &Path) -> Result<Option<Prefetcher>> {
        prepare_spool(spool)?;
        Ok(worker_lock::try_hold(spool)?.map(|lock| Prefetcher {
            spool: spool.to_path_buf(),
            _lock: lock,
        }))
    }

    /// Downloads `names` with `parallel` downloads at a time; stops at the first missing
    /// segment (the end of the archive). Returns how many segments were spooled.
    pub async fn run(&self, store: &Store, names: &[String], parallel: usize) -> Result<usize> {
        let spool = self.spool.as_path();
        let owner = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(spool).ok().map(|m| (m.uid(), m.gid()))
        };
        let wanted: Vec<String> = names.iter().filter(|n| !spool.join(n).exists()).cloned().collect();
        let mut results = futures::stream::iter(wanted.into_iter().map(|name| {
            let store = store.clone();
            async move {
                let result = download(&store, &name).await;
                (name, result)
            }
        }))
        .buffered(parallel.max(1));
        let mut spooled = 0;
        while let Some((name, result)) = results.next().await {
            match result {
                Ok(Some(raw)) => {
                    write_atomically(&spool.join(&name), &raw)?;
                    // A stager running as root serves a server running as its own user.
                    if let Some((uid, gid)) = owner {
                        let _ = std::os::unix::fs::chown(spool.join(&name), Some(uid), Some(gid));
                    }
                    spooled += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    // The foreground fetch will hit the same object and report it properly.
                    tracing::warn!(wal = %name, error = %e, "prefetch failed");
                    break;
                }
            }
        }
        Ok(spooled)
    }
}

/// The spool lives in `pg_wal`, which base backups skip and PostgreSQL leaves alone.
pub const SPOOL_DIR: &str = ".lifeboat-spool";

pub fn default_spool(dest: &Path) -> PathBuf {
    dest.parent().unwrap_or(Path::new(".")).join(SPOOL_DIR)
}

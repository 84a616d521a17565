//! The WAL archive: `wal-push` for `archive_command`, `wal-fetch` for `restore_command`.
//!
//! Push is idempotent for identical content and refuses different content under an existing
//! name, which is what a second primary archiving into the same repository looks like. It
//! also pushes other segments PostgreSQL has marked `.ready` in parallel, leaving a marker so
//! the archiver's later call for them returns at once (the archiver itself is sequential).
//! Fetch serves segments from a spool that a background prefetcher fills ahead of replay.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;

use crate::codec;
use crate::error::{BackupError, Result};
use crate::layout::{self, meta};
use crate::store::{ObjectMeta, Store, sha256_hex};
use crate::wal_name::{Segment, WalFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    AlreadyArchived,
}

/// Directory (inside `pg_wal`, which base backups skip) where pushed-ahead markers live.
const PUSHED_MARKERS: &str = ".lifeboat-pushed";

fn wal_file_name(path: &Path) -> Result<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if WalFile::parse(&name, crate::wal_name::DEFAULT_SEGMENT_SIZE).is_none() && !looks_like_wal(&name) {
        return Err(BackupError::invalid(format!(
            "`{}` is not a WAL file name; archive_command must pass %p (the path of the file to archive)",
            path.display()
        )));
    }
    Ok(name)
}

/// Segment names depend on the segment size only in their value, never in their shape.
fn looks_like_wal(name: &str) -> bool {
    name.get(..24).is_some_and(|head| head.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Archives one WAL file.
pub async fn push_file(store: &Store, path: &Path) -> Result<PushOutcome> {
    let name = wal_file_name(path)?;
    let raw = tokio::fs::read(path).await.map_err(BackupError::io(path))?;
    push_bytes(store, &name, Bytes::from(raw)).await
}

pub async fn push_bytes(store: &Store, name: &str, raw: Bytes) -> Result<PushOutcome> {
    let key = layout::wal_key(name);
    let raw_sha = {
        let raw = raw.clone();
        tokio::task::spawn_blocking(move || sha256_hex(&raw))
            .await
            .expect("hashing does not panic")
    };
    if let Some(existing) = store.head(&key).await? {
        let existing_sha = existing.get(meta::RAW_SHA256).cloned().unwrap_or_default();
        if existing_sha == raw_sha {
            return Ok(PushOutcome::AlreadyArchived);
        }
        return Err(BackupError::WalConflict {
            name: name.to_string(),
            existing: existing_sha,
            pushed: raw_sha,
        });
    }
    let raw_size = raw.len();
    let stored = codec::compress_blocking(raw, codec::WAL_LEVEL).await;
    let meta = ObjectMeta::from([
        (meta::RAW_SHA256.to_string(), raw_sha),
        (meta::RAW_SIZE.to_string(), raw_size.to_string()),
        (
            meta::PUSHED_AT.to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    ]);
    store.put(&key, stored, meta).await?;
    tracing::debug!(wal = name, raw_size, "archived WAL file");
    Ok(PushOutcome::Pushed)
}

/// Where the pushed-ahead markers for one repository live. Per repository, because an
/// `archive_command` may push to several: one repository's marker must never answer for
/// another that has not got the segment.
fn markers_dir(wal_dir: &Path, repo: &str) -> PathBuf {
    wal_dir.join(PUSHED_MARKERS).join(&sha256_hex(repo.as_bytes())[..16])
}

/// True (and the marker consumed) when an earlier call already pushed `path` to `repo`
/// ahead of the archiver: the answer needs neither the file nor the repository.
pub fn take_pushed_ahead(path: &Path, repo: &str) -> Result<bool> {
    let name = wal_file_name(path)?;
    let marker = markers_dir(path.parent().unwrap_or(Path::new(".")), repo).join(name);
    Ok(std::fs::remove_file(marker).is_ok())
}

/// `archive_command` entry point: pushes `path` and up to `batch - 1` other segments already
/// marked ready, `parallel` at a time, so the archiver's sequential calls do not bound
/// throughput. `repo` names the repository for the pushed-ahead markers.
pub async fn push_with_ready(store: &Store, repo: &str, path: &Path, parallel: usize, batch: usize) -> Result<PushOutcome> {
    if take_pushed_ahead(path, repo)? {
        return Ok(PushOutcome::AlreadyArchived);
    }
    let name = wal_file_name(path)?;
    let wal_dir = path.parent().unwrap_or(Path::new("."));
    let markers = markers_dir(wal_dir, repo);
    let mut others: Vec<String> = ready_files(wal_dir).into_iter().filter(|n| *n != name).collect();
    others.sort();
    others.truncate(batch.saturating_sub(1));
    if others.is_empty() {
        return push_file(store, path).await;
    }
    std::fs::create_dir_all(&markers).map_err(BackupError::io(&markers))?;
    // One pool of `parallel` pushes for the asked segment and the ready ones after it, so
    // every worker stays busy until the batch is done.
    let batch = std::iter::once(name.clone()).chain(others).map(|segment| {
        let (markers, asked) = (&markers, segment == name);
        async move {
            let outcome = push_file(store, &wal_dir.join(&segment)).await;
            if !asked && outcome.is_ok() {
                let _ = std::fs::File::create(markers.join(&segment));
            }
            (asked, outcome)
        }
    });
    let outcomes: Vec<(bool, Result<PushOutcome>)> = futures::stream::iter(batch).buffer_unordered(parallel.max(1)).collect().await;
    // Extra segments that failed are simply pushed again when the archiver asks for them.
    outcomes
        .into_iter()
        .find_map(|(asked, outcome)| asked.then_some(outcome))
        .expect("the asked segment is in the batch")
}

fn ready_files(wal_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(wal_dir.join("archive_status")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".ready")).map(str::to_string))
        .filter(|n| looks_like_wal(n) && wal_dir.join(n).is_file())
        .collect()
}

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

/// `restore_command` entry point.
pub async fn fetch(store: &Store, name: &str, dest: &Path, spool: Option<&Path>) -> Result<FetchOutcome> {
    // Only segments are ever spooled: a timeline history file asked for while a prefetcher
    // works must not wait for it.
    let spoolable = name.len() == 24 && looks_like_wal(name);
    if let Some(spool) = spool.filter(|_| spoolable) {
        let spooled = spool.join(name);
        // While a prefetcher is at work it is most likely fetching this very segment: waiting
        // for it beats downloading the same bytes twice on a busy machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if spooled.is_file() {
                std::fs::rename(&spooled, dest).map_err(BackupError::io(dest))?;
                return Ok(FetchOutcome::FromSpool);
            }
            if !prefetcher_running(spool) || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    match download(store, name).await? {
        Some(raw) => {
            write_atomically(dest, &raw)?;
            Ok(FetchOutcome::Fetched)
        }
        None => Ok(FetchOutcome::Missing),
    }
}

fn spool_lock(spool: &Path) -> Result<std::fs::File> {
    let lock_path = spool.join(".lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(BackupError::io(&lock_path))
}

fn prefetcher_running(spool: &Path) -> bool {
    let Ok(file) = spool_lock(spool) else { return false };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
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

/// Creates the spool directory.
pub fn prepare_spool(spool: &Path) -> Result<()> {
    std::fs::create_dir_all(spool).map_err(BackupError::io(spool))
}

/// Downloads `names` into `spool` with `parallel` downloads at a time; stops at the first
/// missing segment (the end of the archive). Holds an exclusive lock on the spool so only one
/// prefetcher works at a time; returns how many segments were spooled.
pub async fn prefetch(store: &Store, names: &[String], spool: &Path, parallel: usize) -> Result<usize> {
    prepare_spool(spool)?;
    let Ok(_lock) = nix::fcntl::Flock::lock(spool_lock(spool)?, nix::fcntl::FlockArg::LockExclusiveNonblock) else {
        return Ok(0);
    };
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

/// The spool lives in `pg_wal`, which base backups skip and PostgreSQL leaves alone.
pub const SPOOL_DIR: &str = ".lifeboat-spool";

pub fn default_spool(dest: &Path) -> PathBuf {
    dest.parent().unwrap_or(Path::new(".")).join(SPOOL_DIR)
}

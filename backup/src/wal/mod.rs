//! The WAL archive: `wal-push` for `archive_command`, `wal-fetch` for `restore_command`.
//!
//! Push is idempotent for identical content and refuses different content under an existing
//! name, which is what a second primary archiving into the same repository looks like.
//! PostgreSQL's archiver asks for one segment at a time, so a background pusher ([`ahead`])
//! pushes every segment already marked `.ready` in parallel and the archiver's calls answer
//! from its markers. Fetch serves segments from a spool that a background prefetcher fills
//! ahead of replay ([`fetch`]).

mod ahead;
mod fetch;
mod push;
mod worker_lock;

use std::path::Path;

pub use ahead::{AheadQueue, Pusher};
pub use fetch::{
    FetchOutcome, Prefetcher, SPOOL_DIR, clean_spool, default_spool, download, fetch, prefetch, prefetch_candidates, prefetcher_running,
    prepare_spool, take_spooled,
};
pub use push::{PushOutcome, push_bytes, push_file};

use crate::error::{BackupError, Result};
use crate::wal_name::WalFile;

/// The name of the WAL file at `path`, refusing anything PostgreSQL would not archive.
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

/// A segment proper: 24 hex digits, not a history, backup-label or partial file.
fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && looks_like_wal(name)
}

//! At most one background worker per directory (a prefetcher per spool, a pusher per
//! repository), found by others through an advisory lock on `<dir>/.lock`.

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{BackupError, Result};

/// Held for as long as the worker works; the kernel releases it if the worker dies.
pub type WorkerLock = Flock<File>;

/// Read-only when the file exists: flock needs no write access, and a lock file created by a
/// worker running as root (a restore's stager) must still work for the server's user.
fn open(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    match File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(BackupError::io(&path)),
        opened => opened.map_err(BackupError::io(&path)),
    }
}

/// The lock, or `None` when another worker holds it.
pub fn try_hold(dir: &Path) -> Result<Option<WorkerLock>> {
    Ok(Flock::lock(open(dir)?, FlockArg::LockExclusiveNonblock).ok())
}

/// Whether a worker is at work in `dir` right now.
pub fn held(dir: &Path) -> bool {
    let Ok(file) = open(dir) else { return false };
    Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
}

//! zstd framing of stored objects. CPU-heavy, so callers run these on blocking threads.

use bytes::Bytes;

use crate::error::{BackupError, Result};

/// zstd level 3 for base backups (pgBackRest's zstd default): stored once, kept long.
pub const BACKUP_LEVEL: i32 = 3;
/// zstd level 1 for WAL: the archiver is on the write path of a busy primary, and WAL
/// compresses nearly as well at level 1 for half the CPU.
pub const WAL_LEVEL: i32 = 1;

pub fn compress(raw: &[u8], level: i32) -> Bytes {
    Bytes::from(zstd::bulk::compress(raw, level).expect("in-memory zstd compression cannot fail"))
}

pub fn decompress(key: &str, stored: &[u8], raw_size: usize) -> Result<Vec<u8>> {
    zstd::bulk::decompress(stored, raw_size.max(1)).map_err(|e| {
        BackupError::Restore(format!(
            "{key}: cannot decompress ({e}); the object is corrupt or not written by lifeboat"
        ))
    })
}

pub async fn compress_blocking(raw: Bytes, level: i32) -> Bytes {
    tokio::task::spawn_blocking(move || compress(&raw, level))
        .await
        .expect("compression does not panic")
}

//! zstd framing of stored objects. CPU-heavy, so callers run these on blocking threads.

use bytes::Bytes;

use crate::error::{BackupError, Result};

/// zstd level 3: pgBackRest's default for zstd, a good speed/ratio point for WAL and pages.
pub const LEVEL: i32 = 3;

pub fn compress(raw: &[u8]) -> Bytes {
    Bytes::from(zstd::bulk::compress(raw, LEVEL).expect("in-memory zstd compression cannot fail"))
}

pub fn decompress(key: &str, stored: &[u8], raw_size: usize) -> Result<Vec<u8>> {
    zstd::bulk::decompress(stored, raw_size.max(1)).map_err(|e| {
        BackupError::Restore(format!(
            "{key}: cannot decompress ({e}); the object is corrupt or not written by lifeboat"
        ))
    })
}

pub async fn compress_blocking(raw: Bytes) -> Bytes {
    tokio::task::spawn_blocking(move || compress(&raw))
        .await
        .expect("compression does not panic")
}

//! Archiving one WAL file: checksummed, compressed, and never overwriting different content.

use std::path::Path;

use bytes::Bytes;

use super::wal_file_name;
use crate::codec;
use crate::error::{BackupError, Result};
use crate::layout::{self, meta};
use crate::store::{ObjectMeta, Store, sha256_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    AlreadyArchived,
}

/// Archives one WAL file; returns once it is durable in the repository.
pub async fn push_file(store: &Store, path: &Path) -> Result<PushOutcome> {
    let name = wal_file_name(path)?;
    let raw = tokio::fs::read(path).await.map_err(BackupError::io(path))?;
    push_bytes(store, &name, Bytes::from(raw)).await
}

pub async fn push_bytes(store: &Store, name: &str, raw: Bytes) -> Result<PushOutcome> {
    let key = layout::wal_key(name);
    let raw_size = raw.len();
    // Ask the repository whether the segment exists while it is hashed and compressed: it
    // almost never does, so the round trip is hidden and the compression rarely wasted.
    let prepare = tokio::task::spawn_blocking(move || (sha256_hex(&raw), codec::compress(&raw, codec::WAL_LEVEL)));
    let (existing, prepared) = tokio::join!(store.head(&key), prepare);
    let (raw_sha, stored) = prepared.expect("hashing and compressing do not panic");
    if let Some(existing) = existing? {
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

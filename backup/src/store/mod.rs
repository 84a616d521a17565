//! One small object-store interface over two backends: S3-compatible servers and local
//! directories. Every object carries the SHA-256 of its stored bytes in its metadata, and
//! every read checks it, so corruption anywhere between writer and reader is caught.

mod local;
mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{BackupError, Result};
use crate::repo_url::RepoUrl;

pub use local::LocalStore;
pub use s3::S3Store;

/// Metadata kept with an object. `sha256` (of the stored bytes) is always present; callers
/// add their own fields (e.g. the checksum of the uncompressed content).
pub type ObjectMeta = BTreeMap<String, String>;

pub const SHA256: &str = "sha256";

#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Stores `body` under `key` atomically: readers see the old object, no object, or the
    /// whole new one. `meta` gets the body's SHA-256 added.
    async fn put(&self, key: &str, body: Bytes, meta: ObjectMeta) -> Result<()>;
    /// Reads an object and verifies it against its recorded SHA-256.
    async fn get(&self, key: &str) -> Result<Option<(Bytes, ObjectMeta)>>;
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;
    /// All objects whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    async fn delete(&self, key: &str) -> Result<()>;
}

pub type Store = Arc<dyn ObjectStore>;

pub async fn open(url: &RepoUrl) -> Result<Store> {
    Ok(match url {
        RepoUrl::Local { root } => Arc::new(LocalStore::open(root)?),
        RepoUrl::S3(location) => Arc::new(S3Store::connect(location.clone()).await?),
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a body against the checksum in its metadata. An object without a checksum was not
/// written by lifeboat (or lost its metadata) and is treated as corrupt.
fn verify(key: &str, body: &[u8], meta: &ObjectMeta) -> Result<()> {
    let actual = sha256_hex(body);
    let expected = meta.get(SHA256).cloned().unwrap_or_else(|| "(none)".to_string());
    if expected != actual {
        return Err(BackupError::Checksum {
            key: key.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

//! The backup manifest: what a base backup contains and where in the WAL it starts and ends.
//! It is written last; a backup without a manifest does not exist for restore.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};
use crate::layout;
use crate::store::Store;
use crate::wal_name::{Segment, parse_lsn};

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub pg_version: String,
    pub pg_version_num: i32,
    pub system_identifier: String,
    pub timeline: u32,
    pub start_lsn: String,
    pub stop_lsn: String,
    pub start_wal: String,
    pub stop_wal: String,
    pub start_time: DateTime<Utc>,
    pub stop_time: DateTime<Utc>,
    pub wal_segment_size: u64,
    pub backup_label: String,
    pub tablespace_map: Option<String>,
    /// Bytes of every file in the backup.
    pub total_size: u64,
    /// Bytes this backup added to the repository (its own parts, compressed).
    pub stored_size: u64,
    /// For an incremental backup, the backup it was taken against. Its `parts` then include
    /// earlier backups' parts, which stay in the repository while any manifest lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Every object holding this backup's bytes: its own, then any shared with earlier backups.
    pub parts: Vec<Part>,
    pub dirs: Vec<DirEntry>,
    pub files: Vec<FileEntry>,
}

/// A stored object holding the bytes of one or more files (or a slice of a large one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub key: String,
    pub raw_size: u64,
    pub stored_size: u64,
    /// SHA-256 of the stored (compressed) object.
    pub sha256: String,
}

impl Part {
    /// Downloads this part; `None` when it is missing. The store's `get` checks the body
    /// against the checksum stored with it; comparing that with the manifest's says it is the
    /// object this backup wrote, not another intact one, without hashing it a second time.
    pub async fn fetch(&self, store: &Store) -> Result<Option<bytes::Bytes>> {
        let Some((stored, meta)) = store.get(&self.key).await? else {
            return Ok(None);
        };
        let recorded = meta.get(crate::store::SHA256).cloned().unwrap_or_default();
        if recorded != self.sha256 {
            return Err(BackupError::Checksum {
                key: self.key.clone(),
                expected: self.sha256.clone(),
                actual: recorded,
            });
        }
        Ok(Some(stored))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirEntry {
    pub path: String,
    pub mode: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub mode: u32,
    /// SHA-256 of the file's content as backed up.
    pub sha256: String,
    pub chunks: Vec<Chunk>,
}

/// `len` bytes of a file, at the file's running offset, are at `offset` in part `part`'s raw bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chunk {
    pub part: usize,
    pub offset: u64,
    pub len: u64,
}

impl Manifest {
    pub fn start_lsn(&self) -> u64 {
        parse_lsn(&self.start_lsn).unwrap_or(0)
    }

    pub fn stop_lsn(&self) -> u64 {
        parse_lsn(&self.stop_lsn).unwrap_or(0)
    }

    /// The first WAL segment the backup needs ([`read`] refuses a manifest where it does
    /// not parse; a hand-made one falls back to the start LSN's segment).
    pub fn start_segment(&self) -> Segment {
        Segment::parse(&self.start_wal, self.wal_segment_size)
            .unwrap_or_else(|| Segment::containing(self.timeline, self.start_lsn(), self.wal_segment_size))
    }

    pub fn stop_segment(&self) -> Segment {
        Segment::parse(&self.stop_wal, self.wal_segment_size)
            .unwrap_or_else(|| Segment::containing(self.timeline, self.stop_lsn(), self.wal_segment_size))
    }

    /// What makes a manifest unusable, in words: a damaged repository must be reported, not
    /// crash the commands meant to find the damage.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let size = self.wal_segment_size;
        if !(size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)) {
            problems.push(format!("wal_segment_size {size} is not a power of two from 1 MiB to 1 GiB"));
        }
        for (field, name) in [("start_wal", &self.start_wal), ("stop_wal", &self.stop_wal)] {
            if Segment::parse(name, size.max(1)).is_none() {
                problems.push(format!("{field} `{name}` is not a WAL segment name"));
            }
        }
        for (field, lsn) in [("start_lsn", &self.start_lsn), ("stop_lsn", &self.stop_lsn)] {
            if parse_lsn(lsn).is_err() {
                problems.push(format!("{field} `{lsn}` is not an LSN"));
            }
        }
        problems
    }
}

pub async fn write(store: &Store, manifest: &Manifest) -> Result<()> {
    let body = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::invalid(format!("manifest of backup {}: {e}", manifest.id)))?;
    store
        .put(&layout::manifest_key(&manifest.id), body.into(), Default::default())
        .await
}

pub async fn read(store: &Store, id: &str) -> Result<Option<Manifest>> {
    let Some((body, _)) = store.get(&layout::manifest_key(id)).await? else {
        return Ok(None);
    };
    let manifest: Manifest =
        serde_json::from_slice(&body).map_err(|e| BackupError::Restore(format!("manifest of backup {id} is unreadable: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Restore(format!(
            "backup {id} has manifest format {}, this lifeboat reads format {FORMAT}; use a matching lifeboat version",
            manifest.format
        )));
    }
    let problems = manifest.problems();
    if !problems.is_empty() {
        return Err(BackupError::Restore(format!(
            "manifest of backup {id} is damaged: {}; the backup cannot be used (`lifeboat pg prune` or remove backups/{id}/)",
            problems.join("; ")
        )));
    }
    Ok(Some(manifest))
}

/// Every complete backup (one with a manifest), oldest first.
pub async fn list(store: &Store) -> Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for object in store.list(layout::BACKUPS_DIR).await? {
        let Some(rest) = object.key.strip_prefix(layout::BACKUPS_DIR) else {
            continue;
        };
        let Some((id, layout::MANIFEST)) = rest.split_once('/') else {
            continue;
        };
        if let Some(manifest) = read(store, id).await? {
            manifests.push(manifest);
        }
    }
    manifests.sort_by_key(|m| m.stop_time);
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(start_wal: &str, segment_size: u64) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "format": FORMAT, "id": "b1", "pg_version": "15", "pg_version_num": 150000,
            "system_identifier": "1", "timeline": 1, "start_lsn": "0/2000028", "stop_lsn": "0/2000100",
            "start_wal": start_wal, "stop_wal": "000000010000000000000002",
            "start_time": "2026-11-22T10:00:00Z", "stop_time": "2026-11-22T10:00:01Z",
            "wal_segment_size": segment_size, "backup_label": "", "tablespace_map": null,
            "total_size": 0, "stored_size": 0, "parts": [], "dirs": [], "files": [],
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_damaged_manifest_is_an_error_naming_the_damage_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::RepoUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        let store = crate::store::open(&url).await.unwrap();
        for (damaged, why) in [
            (manifest("not-a-segment", 16 << 20), "start_wal `not-a-segment`"),
            (manifest("000000010000000000000002", 0), "wal_segment_size 0"),
        ] {
            write(&store, &damaged).await.unwrap();
            let error = list(&store).await.unwrap_err().to_string();
            assert!(error.contains("manifest of backup b1 is damaged") && error.contains(why), "{error}");
            // What reads the fields directly falls back instead of panicking.
            let _ = (damaged.start_segment(), damaged.stop_segment());
        }
        write(&store, &manifest("000000010000000000000002", 16 << 20)).await.unwrap();
        assert_eq!(list(&store).await.unwrap().len(), 1);
    }
}

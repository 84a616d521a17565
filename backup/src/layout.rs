//! Where things live in a repository. Changing these breaks existing repositories.

pub const WAL_DIR: &str = "wal/";
pub const BACKUPS_DIR: &str = "backups/";
pub const MANIFEST: &str = "manifest.json";

pub fn wal_key(name: &str) -> String {
    format!("{WAL_DIR}{name}.zst")
}

/// The WAL file name of an archive key, if the key is one.
pub fn wal_name(key: &str) -> Option<&str> {
    key.strip_prefix(WAL_DIR)?.strip_suffix(".zst")
}

pub fn backup_prefix(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}/")
}

pub fn manifest_key(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}/{MANIFEST}")
}

pub fn part_key(id: &str, index: usize) -> String {
    format!("{BACKUPS_DIR}{id}/parts/{index:06}.zst")
}

/// Metadata fields of WAL objects.
pub mod meta {
    pub const RAW_SHA256: &str = "raw-sha256";
    pub const RAW_SIZE: &str = "raw-size";
    pub const PUSHED_AT: &str = "pushed-at";
}

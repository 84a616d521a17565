//! Local-directory backend: the embedded default. Objects are plain files; metadata sits in
//! a `.lbmeta` sidecar written first, so an object whose data file exists always has it.
//! Both are written to a temporary name, fsynced and renamed, then the directory is fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectInfo, ObjectMeta, ObjectStore, SHA256, sha256_hex, verify};
use crate::error::{BackupError, Result};

const META_SUFFIX: &str = ".lbmeta";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// When root writes into a repository someone else owns (PostgreSQL's archiver runs as
    /// `postgres`), new files and directories are given to that owner so both can keep writing.
    owner: Option<(u32, u32)>,
}

impl LocalStore {
    pub fn open(root: &Path) -> Result<LocalStore> {
        use std::os::unix::fs::MetadataExt;
        // Opening creates nothing: a mistyped path must not leave an empty repository behind.
        // Writes create directories as they need them.
        let owner = std::fs::metadata(root)
            .ok()
            .filter(|m| nix::unistd::geteuid().is_root() && m.uid() != 0)
            .map(|m| (m.uid(), m.gid()));
        Ok(LocalStore {
            root: root.to_path_buf(),
            owner,
        })
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().expect("object paths have a parent");
        if let Some((uid, gid)) = self.owner {
            let mut missing = Vec::new();
            let mut current = dir;
            while !current.exists() && current.starts_with(&self.root) {
                missing.push(current.to_path_buf());
                current = current.parent().unwrap_or(&self.root);
            }
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
            for created in missing {
                std::os::unix::fs::chown(&created, Some(uid), Some(gid)).map_err(BackupError::io(&created))?;
            }
            write_atomically(path, bytes)?;
            return std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(BackupError::io(path));
        }
        write_atomically(path, bytes)
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(BackupError::invalid(format!("object key `{key}` is not a clean relative path")));
        }
        Ok(self.root.join(key))
    }
}

fn meta_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(META_SUFFIX);
    PathBuf::from(name)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        rand_suffix()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(BackupError::io(path))
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64)
}

fn read_meta(path: &Path) -> Result<ObjectMeta> {
    let text = std::fs::read(meta_path(path)).map_err(BackupError::io(meta_path(path)))?;
    serde_json::from_slice(&text).map_err(|e| BackupError::invalid(format!("{}: unreadable metadata: {e}", meta_path(path).display())))
}

fn not_found(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<ObjectInfo>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(META_SUFFIX) {
            continue;
        }
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            walk(&entry.path(), root, out)?;
        } else {
            let key = entry
                .path()
                .strip_prefix(root)
                .expect("walked below root")
                .to_string_lossy()
                .into_owned();
            out.push(ObjectInfo {
                key,
                size: metadata.len(),
                modified: metadata.modified().ok().map(Into::into),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes, mut meta: ObjectMeta) -> Result<()> {
        let path = self.path(key)?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            meta.insert(SHA256.to_string(), sha256_hex(&body));
            store.write(&meta_path(&path), &serde_json::to_vec(&meta).expect("string map serializes"))?;
            store.write(&path, &body)
        })
        .await
        .expect("blocking task does not panic")
    }

    async fn get(&self, key: &str) -> Result<Option<(Bytes, ObjectMeta)>> {
        let path = self.path(key)?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let body = match std::fs::read(&path) {
                Ok(body) => body,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(BackupError::io(&path)(e)),
            };
            let meta = read_meta(&path)?;
            verify(&key, &body, &meta)?;
            Ok(Some((Bytes::from(body), meta)))
        })
        .await
        .expect("blocking task does not panic")
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(_) => read_meta(&path).map(Some),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(BackupError::io(&path)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Walk only the deepest directory the prefix names, then filter by the rest.
        let dir = match prefix.rfind('/') {
            Some(slash) => self.root.join(&prefix[..slash]),
            None => self.root.clone(),
        };
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&dir, &root, &mut out).map_err(BackupError::io(&dir))?;
            out.retain(|o| o.key.starts_with(&prefix));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .expect("blocking task does not panic")
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        for p in [path.clone(), meta_path(&path)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(BackupError::io(&p)(e)),
            }
        }
        Ok(())
    }
}

//! Filling a filesystem until only so much space remains, with one file that the revert
//! removes (durably: `lifeboat resume` removes it too if the engine died).

use super::{ChaosError, DurableRevert, Injection, Revert, evidence, ts};
use chrono::Utc;
use nix::sys::statvfs::statvfs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub enum Remaining {
    Bytes(u64),
    Percent(f64),
}

pub struct FillOptions {
    pub directory: PathBuf,
    pub remaining: Remaining,
    /// Refuse to write more than this (a wrong path could otherwise fill a huge disk).
    pub max_fill: u64,
    /// Name of the fill file inside `directory`.
    pub file_name: String,
}

impl FillOptions {
    pub fn path(&self) -> PathBuf {
        self.directory.join(&self.file_name)
    }

    /// How the fill is undone, known before it is applied (journaled first, as an intent).
    pub fn revert(&self) -> DurableRevert {
        DurableRevert::RemoveFile { path: self.path() }
    }
}

pub fn free_space(dir: &Path) -> Result<(u64, u64), ChaosError> {
    let st = statvfs(dir).map_err(|e| ChaosError::Invalid(format!("path {}: {e}", dir.display())))?;
    let block = st.fragment_size();
    Ok((st.blocks_available() * block, st.blocks() * block))
}

pub async fn inject(options: FillOptions) -> Result<Injection, ChaosError> {
    let (free_before, total) = free_space(&options.directory)?;
    let keep = match options.remaining {
        Remaining::Bytes(b) => b,
        Remaining::Percent(p) if (0.0..100.0).contains(&p) => (total as f64 * p / 100.0) as u64,
        Remaining::Percent(p) => return Err(ChaosError::Invalid(format!("free_percent: {p} is not between 0 and 100"))),
    };
    let fill = free_before.saturating_sub(keep);
    if fill == 0 {
        return Err(ChaosError::Invalid(format!(
            "{} has {free_before} bytes free, already no more than the {keep} to leave",
            options.directory.display()
        )));
    }
    if fill > options.max_fill {
        return Err(ChaosError::Invalid(format!(
            "filling {} would write {fill} bytes, more than max_fill ({}); raise max_fill if that is intended",
            options.directory.display(),
            options.max_fill
        )));
    }
    let path = options.path();
    let write_path = path.clone();
    tokio::task::spawn_blocking(move || write_fill(&write_path, fill))
        .await
        .map_err(|e| ChaosError::NotApplied(e.to_string()))?
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })?;
    let (free_after, _) = free_space(&options.directory)?;
    let injected_at = Utc::now();
    let durable = options.revert();
    let undo_with = durable.clone();
    let directory = options.directory.clone();
    Ok(Injection {
        injected_at,
        evidence: evidence([
            ("path", path.display().to_string().into()),
            ("filled_bytes", fill.into()),
            ("free_before_bytes", free_before.into()),
            ("free_after_bytes", free_after.into()),
            ("total_bytes", total.into()),
            ("observed_at", ts(injected_at)),
        ]),
        revert: Some(Revert {
            undo: Box::pin(async move {
                let note = undo_with.apply()?;
                let free = free_space(&directory).map(|f| f.0).unwrap_or_default();
                Ok(evidence([("removed", note.into()), ("free_after_revert_bytes", free.into())]))
            }),
            durable: Some(durable),
        }),
    })
}

fn write_fill(path: &Path, bytes: u64) -> Result<(), ChaosError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ChaosError::NotApplied(format!("creating {}: {e}", path.display())))?;
    let len = i64::try_from(bytes).map_err(|_| ChaosError::Invalid("fill size too large".into()))?;
    match nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, len) {
        Ok(()) => {}
        // tmpfs and some filesystems lack fallocate in some kernels: write zeros instead.
        Err(nix::errno::Errno::EOPNOTSUPP) => {
            let chunk = vec![0u8; 1 << 20];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])
                    .map_err(|e| ChaosError::NotApplied(format!("writing {}: {e}", path.display())))?;
                left -= n as u64;
            }
        }
        Err(e) => {
            return Err(ChaosError::NotApplied(format!(
                "allocating {bytes} bytes in {}: {e}",
                path.display()
            )));
        }
    }
    file.sync_all()
        .map_err(|e| ChaosError::NotApplied(format!("syncing {}: {e}", path.display())))?;
    Ok(())
}

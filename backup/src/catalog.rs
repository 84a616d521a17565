//! Looking after a repository: what can be restored (`backups`), whether it really can
//! (`verify`), and removing what nobody needs any more (`prune`).

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::archive::{WalArchive, ranges};
use crate::error::{BackupError, Result};
use crate::manifest::{self, Manifest};
use crate::store::Store;
use crate::wal;
use crate::wal_name::{DEFAULT_SEGMENT_SIZE, WalFile};
use crate::{codec, layout};

#[derive(Debug, Serialize)]
pub struct Catalog {
    pub backups: Vec<BackupSummary>,
    pub wal: WalSummary,
}

#[derive(Debug, Serialize)]
pub struct BackupSummary {
    pub id: String,
    pub timeline: u32,
    pub start_time: DateTime<Utc>,
    pub stop_time: DateTime<Utc>,
    pub start_lsn: String,
    pub stop_lsn: String,
    pub size: u64,
    pub stored_size: u64,
    pub pg_version: String,
    /// The backup an incremental one was taken against.
    pub reference: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WalSummary {
    pub segments: usize,
    pub first: Option<String>,
    pub last: Option<String>,
    pub last_archived_at: Option<DateTime<Utc>>,
    pub timelines: Vec<u32>,
}

impl Catalog {
    /// The restorable window: from the oldest backup's end to the newest archived WAL.
    pub fn window(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((self.backups.first()?.stop_time, self.wal.last_archived_at?))
    }
}

fn segment_size(backups: &[Manifest]) -> u64 {
    backups.last().map(|m| m.wal_segment_size).unwrap_or(DEFAULT_SEGMENT_SIZE)
}

pub async fn catalog(store: &Store) -> Result<Catalog> {
    let backups = manifest::list(store).await?;
    let size = segment_size(&backups);
    let archive = WalArchive::load(store, size).await?;
    let timeline = backups.last().map(|b| archive.latest_timeline_from(b.timeline));
    let mut timelines: Vec<u32> = archive.segments.keys().map(|s| s.timeline).collect();
    timelines.dedup();
    Ok(Catalog {
        backups: backups
            .iter()
            .map(|m| BackupSummary {
                id: m.id.clone(),
                timeline: m.timeline,
                start_time: m.start_time,
                stop_time: m.stop_time,
                start_lsn: m.start_lsn.clone(),
                stop_lsn: m.stop_lsn.clone(),
                size: m.total_size,
                stored_size: m.stored_size,
                pg_version: m.pg_version.clone(),
                reference: m.reference.clone(),
            })
            .collect(),
        wal: WalSummary {
            segments: archive.segments.len(),
            first: archive.segments.keys().next().map(|s| s.name(size)),
            last: archive.segments.keys().next_back().map(|s| s.name(size)),
            last_archived_at: timeline
                .and_then(|t| archive.newest_archived_at(t))
                .or_else(|| archive.segments.values().flatten().max().copied()),
            timelines,
        },
    })
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub backups_checked: Vec<String>,
    pub objects_checked: usize,
    pub bytes_checked: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads every object of the chosen backups (all by default) and every WAL segment from each
/// backup's start to the newest, checking checksums and continuity.
pub async fn verify(store: &Store, backup: Option<&str>, parallel: usize) -> Result<VerifyReport> {
    let all = manifest::list(store).await?;
    let chosen: Vec<&Manifest> = match backup {
        Some(id) => vec![
            all.iter()
                .find(|m| m.id == id)
                .ok_or_else(|| BackupError::NotFound(format!("backup {id} is not in the repository")))?,
        ],
        None => all.iter().collect(),
    };
    let mut report = VerifyReport::default();
    if chosen.is_empty() {
        report.problems.push("the repository has no complete backup".into());
    }
    let size = segment_size(&all);
    let archive = WalArchive::load(store, size).await?;
    for (parent, children) in archive.forks() {
        report.problems.push(format!(
            "timeline fork: timelines {children:?} all branch from timeline {parent}; more than one server was promoted from the same history"
        ));
    }
    let mut wal_needed = std::collections::BTreeSet::new();
    for backup in &chosen {
        report.backups_checked.push(backup.id.clone());
        verify_backup(store, backup, parallel, &mut report).await;
        let timeline = archive.latest_timeline_from(backup.timeline);
        let start = backup.start_segment().segno;
        let end = archive.newest_segno(timeline).unwrap_or(start).max(backup.stop_segment().segno);
        let missing = archive.missing(timeline, start, end);
        if !missing.is_empty() {
            report.problems.push(format!(
                "backup {}: WAL gap, missing {} (replay from this backup stops before it)",
                backup.id,
                ranges(&missing, size).join(", ")
            ));
        }
        for segno in start..=end {
            let segment = archive.expected(timeline, segno);
            if archive.segments.contains_key(&segment) {
                wal_needed.insert(segment.name(size));
            }
        }
    }
    let checks = futures::stream::iter(wal_needed.into_iter().map(|name| {
        let store = store.clone();
        async move { (wal::download(&store, &name).await, name) }
    }))
    .buffer_unordered(parallel.max(1))
    .collect::<Vec<_>>()
    .await;
    for (result, name) in checks {
        report.objects_checked += 1;
        match result {
            Ok(Some(raw)) => report.bytes_checked += raw.len() as u64,
            Ok(None) => report.problems.push(format!("WAL segment {name} disappeared during verification")),
            Err(e) => report.problems.push(format!("WAL segment {name}: {e}")),
        }
    }
    Ok(report)
}

async fn verify_backup(store: &Store, backup: &Manifest, parallel: usize, report: &mut VerifyReport) {
    // Parts are checked in order so each file's checksum can be computed across the parts it spans.
    let mut hashers: Vec<sha2::Sha256> = backup.files.iter().map(|_| <sha2::Sha256 as sha2::Digest>::new()).collect();
    let mut per_part: Vec<Vec<(usize, u64, u64)>> = vec![Vec::new(); backup.parts.len()];
    for (index, file) in backup.files.iter().enumerate() {
        for chunk in &file.chunks {
            if let Some(slot) = per_part.get_mut(chunk.part) {
                slot.push((index, chunk.offset, chunk.len));
            }
        }
    }
    let mut parts = futures::stream::iter(backup.parts.clone().into_iter().map(|part| {
        let store = store.clone();
        async move {
            let raw = match part.fetch(&store).await {
                Ok(Some(stored)) => codec::decompress(&part.key, &stored, part.raw_size as usize).map_err(|e| e.to_string()),
                Ok(None) => Err(format!("{} is missing", part.key)),
                Err(e) => Err(e.to_string()),
            };
            (part, raw)
        }
    }))
    .buffered(parallel.max(1));
    let mut index = 0;
    let mut damaged = std::collections::BTreeSet::new();
    while let Some((part, raw)) = parts.next().await {
        report.objects_checked += 1;
        match raw {
            Ok(raw) => {
                report.bytes_checked += part.stored_size;
                for (file, offset, len) in &per_part[index] {
                    match raw.get(*offset as usize..(*offset + *len) as usize) {
                        Some(slice) => sha2::Digest::update(&mut hashers[*file], slice),
                        None => {
                            damaged.insert(*file);
                        }
                    }
                }
            }
            Err(problem) => {
                report.problems.push(format!("backup {}: {problem}", backup.id));
                for (file, ..) in &per_part[index] {
                    damaged.insert(*file);
                }
            }
        }
        index += 1;
    }
    for (index, (file, hasher)) in backup.files.iter().zip(hashers).enumerate() {
        if damaged.contains(&index) {
            continue;
        }
        let actual = hex::encode(sha2::Digest::finalize(hasher));
        if actual != file.sha256 {
            report
                .problems
                .push(format!("backup {}: file {} does not match its checksum", backup.id, file.path));
        }
    }
    if let Err(e) = store.head(&layout::manifest_key(&backup.id)).await {
        report.problems.push(format!("backup {}: manifest unreadable: {e}", backup.id));
    }
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub kept: Vec<String>,
    pub removed_backups: Vec<String>,
    pub removed_wal: usize,
}

/// Keeps the newest `keep` backups and the WAL they need; removes the rest (but not the
/// parts a kept incremental backup shares with a removed one). The manifest of
/// a removed backup goes first, so an interrupted prune never leaves a half-deleted backup
/// that restore would pick.
pub async fn prune(store: &Store, keep: usize) -> Result<PruneReport> {
    if keep == 0 {
        return Err(BackupError::invalid(
            "--keep must be at least 1: pruning every backup would leave nothing to restore",
        ));
    }
    let backups = manifest::list(store).await?;
    let mut report = PruneReport::default();
    let split = backups.len().saturating_sub(keep);
    let (old, kept) = backups.split_at(split);
    report.kept = kept.iter().map(|m| m.id.clone()).collect();
    // Incremental backups list parts of the backups they were taken against; those parts
    // stay for as long as a kept manifest lists them.
    let shared: std::collections::HashSet<&str> = kept.iter().flat_map(|m| m.parts.iter().map(|p| p.key.as_str())).collect();
    for backup in old {
        store.delete(&layout::manifest_key(&backup.id)).await?;
        for object in store.list(&layout::backup_prefix(&backup.id)).await? {
            if !shared.contains(object.key.as_str()) {
                store.delete(&object.key).await?;
            }
        }
        report.removed_backups.push(backup.id.clone());
    }
    let Some(oldest_kept) = kept.first() else { return Ok(report) };
    let size = oldest_kept.wal_segment_size;
    let first_needed = oldest_kept.start_segment().segno;
    for object in store.list(layout::WAL_DIR).await? {
        let Some(name) = layout::wal_name(&object.key) else { continue };
        let obsolete = match WalFile::parse(name, size) {
            Some(WalFile::Segment(s)) | Some(WalFile::Partial(s)) => s.segno < first_needed,
            Some(WalFile::BackupHistory) => name[..24] < *oldest_kept.start_wal,
            _ => false,
        };
        if obsolete {
            store.delete(&object.key).await?;
            report.removed_wal += 1;
        }
    }
    Ok(report)
}

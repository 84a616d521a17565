//! What the WAL archive holds: segments per timeline, timeline histories, and which segment
//! each point of a timeline's history is read from, so gaps can be found before a restore
//! trips over them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::layout;
use crate::store::Store;
use crate::wal;
use crate::wal_name::{HistoryEntry, Segment, WalFile, parse_history};

#[derive(Debug, Default)]
pub struct WalArchive {
    pub segment_size: u64,
    pub segments: BTreeMap<Segment, Option<DateTime<Utc>>>,
    /// Timeline → its ancestors with the LSN where each ended.
    pub histories: BTreeMap<u32, Vec<HistoryEntry>>,
}

impl WalArchive {
    pub async fn load(store: &Store, segment_size: u64) -> Result<WalArchive> {
        let mut archive = WalArchive {
            segment_size,
            ..Default::default()
        };
        for object in store.list(layout::WAL_DIR).await? {
            let Some(name) = layout::wal_name(&object.key) else { continue };
            match WalFile::parse(name, segment_size) {
                Some(WalFile::Segment(segment)) => {
                    archive.segments.insert(segment, object.modified);
                }
                Some(WalFile::History(timeline)) => {
                    if let Some(raw) = wal::download(store, name).await? {
                        archive.histories.insert(timeline, parse_history(&String::from_utf8_lossy(&raw)));
                    }
                }
                _ => {}
            }
        }
        Ok(archive)
    }

    /// The newest timeline whose history descends from `from` (or `from` itself).
    pub fn latest_timeline_from(&self, from: u32) -> u32 {
        self.histories
            .iter()
            .filter(|(_, history)| history.iter().any(|h| h.timeline == from))
            .map(|(timeline, _)| *timeline)
            .chain(std::iter::once(from))
            .max()
            .unwrap_or(from)
    }

    /// (timeline, first segno it covers), oldest first, for the path ending at `timeline`.
    fn path(&self, timeline: u32) -> Vec<(u32, u64)> {
        let mut path = vec![];
        let mut begin = 0;
        for entry in self.histories.get(&timeline).into_iter().flatten() {
            path.push((entry.timeline, begin));
            begin = entry.switchpoint / self.segment_size;
        }
        path.push((timeline, begin));
        path
    }

    /// The segment replay reads for `segno` when following `timeline`, as PostgreSQL picks it:
    /// from the newest timeline on the path that had begun by then.
    pub fn expected(&self, timeline: u32, segno: u64) -> Segment {
        let path = self.path(timeline);
        let tli = path
            .iter()
            .rev()
            .find(|(_, begin)| *begin <= segno)
            .map(|(t, _)| *t)
            .unwrap_or(timeline);
        Segment { timeline: tli, segno }
    }

    /// The newest segment number archived on the path to `timeline`.
    pub fn newest_segno(&self, timeline: u32) -> Option<u64> {
        let path = self.path(timeline);
        self.segments
            .keys()
            .filter(|s| path.iter().any(|(t, _)| *t == s.timeline))
            .map(|s| s.segno)
            .max()
    }

    /// Segments replay would need from `from` to `to` (inclusive) that are not archived.
    pub fn missing(&self, timeline: u32, from: u64, to: u64) -> Vec<Segment> {
        (from..=to)
            .map(|segno| self.expected(timeline, segno))
            .filter(|s| !self.segments.contains_key(s))
            .collect()
    }

    /// The first segment on the path archived at or after `time`: replay of everything committed
    /// before `time` needs no segment after it.
    pub fn first_segno_archived_after(&self, timeline: u32, from: u64, time: DateTime<Utc>) -> Option<u64> {
        let newest = self.newest_segno(timeline)?;
        (from..=newest).find(|segno| {
            let segment = self.expected(timeline, *segno);
            self.segments.get(&segment).copied().flatten().is_some_and(|at| at >= time)
        })
    }

    pub fn newest_archived_at(&self, timeline: u32) -> Option<DateTime<Utc>> {
        let newest = self.newest_segno(timeline)?;
        self.segments.get(&self.expected(timeline, newest)).copied().flatten()
    }

    /// Timelines branching off the same parent: two promotions of the same history.
    pub fn forks(&self) -> Vec<(u32, Vec<u32>)> {
        let mut children: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for (timeline, history) in &self.histories {
            if let Some(parent) = history.last() {
                children.entry(parent.timeline).or_default().insert(*timeline);
            }
        }
        children
            .into_iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(p, c)| (p, c.into_iter().collect()))
            .collect()
    }
}

/// Collapses segments into `first..last` runs for messages.
pub fn ranges(segments: &[Segment], segment_size: u64) -> Vec<String> {
    let mut out: Vec<(Segment, Segment)> = Vec::new();
    for segment in segments {
        match out.last_mut() {
            Some((_, last)) if last.timeline == segment.timeline && last.segno + 1 == segment.segno => *last = *segment,
            _ => out.push((*segment, *segment)),
        }
    }
    out.into_iter()
        .map(|(a, b)| {
            if a == b {
                a.name(segment_size)
            } else {
                format!("{}..{}", a.name(segment_size), b.name(segment_size))
            }
        })
        .collect()
}

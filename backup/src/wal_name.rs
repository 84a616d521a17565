//! PostgreSQL WAL file names: segments `TTTTTTTTLLLLLLLLSSSSSSSS`, timeline history files
//! `TTTTTTTT.history`, `.partial` segments left by a promotion, and `.backup` history files.

use crate::error::{BackupError, Result};

pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    pub timeline: u32,
    pub segno: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalFile {
    Segment(Segment),
    History(u32),
    Partial(Segment),
    BackupHistory,
}

fn hex_u32(text: &str) -> Option<u32> {
    (text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

/// Never zero: a segment size out of PostgreSQL's range (1 MiB to 1 GiB, refused when a
/// manifest is read) must not divide by zero anywhere.
fn segments_per_log(segment_size: u64) -> u64 {
    (0x1_0000_0000 / segment_size.max(1)).max(1)
}

impl Segment {
    pub fn parse(name: &str, segment_size: u64) -> Option<Segment> {
        if name.len() != 24 {
            return None;
        }
        let timeline = hex_u32(&name[0..8])?;
        let log = hex_u32(&name[8..16])? as u64;
        let seg = hex_u32(&name[16..24])? as u64;
        Some(Segment {
            timeline,
            segno: log * segments_per_log(segment_size) + seg,
        })
    }

    pub fn name(&self, segment_size: u64) -> String {
        let per_log = segments_per_log(segment_size);
        format!("{:08X}{:08X}{:08X}", self.timeline, self.segno / per_log, self.segno % per_log)
    }

    pub fn containing(timeline: u32, lsn: u64, segment_size: u64) -> Segment {
        Segment {
            timeline,
            segno: lsn / segment_size.max(1),
        }
    }

    pub fn next(&self) -> Segment {
        Segment {
            timeline: self.timeline,
            segno: self.segno + 1,
        }
    }
}

impl WalFile {
    pub fn parse(name: &str, segment_size: u64) -> Option<WalFile> {
        if let Some(tli) = name.strip_suffix(".history") {
            return hex_u32(tli).map(WalFile::History);
        }
        if let Some(segment) = name.strip_suffix(".partial") {
            return Segment::parse(segment, segment_size).map(WalFile::Partial);
        }
        if name.ends_with(".backup") && name.len() > 24 && name.get(..24).and_then(|head| Segment::parse(head, segment_size)).is_some() {
            return Some(WalFile::BackupHistory);
        }
        Segment::parse(name, segment_size).map(WalFile::Segment)
    }
}

/// Parses `X/Y` LSN text.
pub fn parse_lsn(text: &str) -> Result<u64> {
    let (hi, lo) = text
        .trim()
        .split_once('/')
        .ok_or_else(|| BackupError::invalid(format!("`{text}` is not an LSN like 0/16B3748")))?;
    let hi = u64::from_str_radix(hi, 16).map_err(|_| BackupError::invalid(format!("`{text}` is not an LSN like 0/16B3748")))?;
    let lo = u64::from_str_radix(lo, 16).map_err(|_| BackupError::invalid(format!("`{text}` is not an LSN like 0/16B3748")))?;
    if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
        return Err(BackupError::invalid(format!("`{text}` is out of range for an LSN")));
    }
    Ok((hi << 32) | lo)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// One line of a timeline history file: `parent_tli  switchpoint  reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub timeline: u32,
    pub switchpoint: u64,
}

/// Parses a `.history` file: the ancestors of a timeline and where each one ended.
pub fn parse_history(text: &str) -> Vec<HistoryEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let timeline = fields.next()?.parse().ok()?;
            let switchpoint = parse_lsn(fields.next()?).ok()?;
            Some(HistoryEntry { timeline, switchpoint })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let size = DEFAULT_SEGMENT_SIZE;
        let segment = Segment::parse("0000000200000001000000FF", size).unwrap();
        assert_eq!(
            segment,
            Segment {
                timeline: 2,
                segno: 256 + 255
            }
        );
        assert_eq!(segment.next().name(size), "000000020000000200000000");
        assert_eq!(WalFile::parse("00000002.history", size), Some(WalFile::History(2)));
        assert_eq!(
            WalFile::parse("000000010000000000000003.partial", size),
            Some(WalFile::Partial(Segment { timeline: 1, segno: 3 }))
        );
        assert_eq!(
            WalFile::parse("000000010000000000000003.00000028.backup", size),
            Some(WalFile::BackupHistory)
        );
        assert_eq!(WalFile::parse("RECOVERYXLOG", size), None);
        assert_eq!(parse_lsn("1/2A").unwrap(), 0x1_0000_002A);
        assert_eq!(format_lsn(0x1_0000_002A), "1/2A");
        assert_eq!(Segment::containing(1, 0x1_0300_0000, size).name(size), "000000010000000100000003");
    }

    #[test]
    fn reads_history_files() {
        let text = "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tat restore point \"x\"\n";
        assert_eq!(
            parse_history(text),
            vec![
                HistoryEntry {
                    timeline: 1,
                    switchpoint: 0x3000158
                },
                HistoryEntry {
                    timeline: 2,
                    switchpoint: 0x5000000
                }
            ]
        );
    }
}

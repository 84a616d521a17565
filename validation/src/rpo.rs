//! RPO and rows lost, from the canary's acknowledged writes and what the recovered
//! database holds.
//!
//! RPO is the disaster time minus the `written_at` of the newest acknowledged row that
//! was written before the disaster and survived. Rows lost are the acknowledged rows
//! written before the disaster that are missing. Zero data loss means zero such rows.

use crate::ValidationError;
use crate::canary::quote_table;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How many lost sequence numbers a report lists.
pub const LOST_SAMPLE: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpoReport {
    pub disaster_at: DateTime<Utc>,
    /// Acknowledged rows written before the disaster.
    pub acknowledged_before_disaster: u64,
    /// Of those, how many the recovered database holds.
    pub present: u64,
    pub rows_lost: u64,
    /// The first lost sequence numbers (at most [`LOST_SAMPLE`]).
    pub lost_seqs: Vec<i64>,
    pub newest_present_seq: Option<i64>,
    pub newest_present_written_at: Option<DateTime<Utc>>,
    /// `None` when no acknowledged row survived: the RPO cannot be bounded.
    pub rpo_ms: Option<i64>,
    /// The canary table did not exist in the recovered database at all.
    pub table_missing: bool,
}

/// Reads the canary rows of `run_id` from the recovered database and judges `acks`.
pub async fn measure(
    dsn: &str,
    table: &str,
    run_id: &str,
    acks: &[(i64, DateTime<Utc>)],
    disaster_at: DateTime<Utc>,
) -> Result<RpoReport, ValidationError> {
    let quoted = quote_table(table)?;
    let mut conn = crate::connect(dsn).await?;
    let rows: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(&format!("SELECT seq FROM {quoted} WHERE run_id = $1"))
        .bind(run_id)
        .fetch_all(&mut conn)
        .await;
    let (present, table_missing) = match rows {
        Ok(seqs) => (seqs.into_iter().collect::<HashSet<i64>>(), false),
        // undefined_table: the recovered copy predates the canary table.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => (HashSet::new(), true),
        Err(e) => return Err(ValidationError::db(format!("reading canary rows from {table}"))(e)),
    };
    Ok(judge(&present, table_missing, acks, disaster_at))
}

/// The arithmetic of [`measure`], apart from the database.
pub fn judge(present: &HashSet<i64>, table_missing: bool, acks: &[(i64, DateTime<Utc>)], disaster_at: DateTime<Utc>) -> RpoReport {
    let mut before: Vec<&(i64, DateTime<Utc>)> = acks.iter().filter(|(_, at)| *at < disaster_at).collect();
    before.sort_by_key(|(seq, _)| *seq);
    let lost: Vec<i64> = before
        .iter()
        .filter(|(seq, _)| !present.contains(seq))
        .map(|(seq, _)| *seq)
        .collect();
    let newest = before.iter().rev().find(|(seq, _)| present.contains(seq));
    RpoReport {
        disaster_at,
        acknowledged_before_disaster: before.len() as u64,
        present: (before.len() - lost.len()) as u64,
        rows_lost: lost.len() as u64,
        lost_seqs: lost.iter().take(LOST_SAMPLE).copied().collect(),
        newest_present_seq: newest.map(|(s, _)| *s),
        newest_present_written_at: newest.map(|(_, at)| *at),
        rpo_ms: newest.map(|(_, at)| (disaster_at - *at).num_milliseconds().max(0)),
        table_missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rpo_counts_only_rows_acknowledged_before_the_disaster() {
        let t = |ms: i64| Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap();
        let acks: Vec<(i64, DateTime<Utc>)> = (1..=10).map(|s| (s, t(s * 100))).collect();
        let present: HashSet<i64> = [1, 2, 3, 4, 5, 7, 10].into_iter().collect();
        let r = judge(&present, false, &acks, t(850));
        assert_eq!(r.acknowledged_before_disaster, 8);
        assert_eq!(r.lost_seqs, vec![6, 8]);
        assert_eq!(r.rows_lost, 2);
        assert_eq!(r.newest_present_seq, Some(7));
        assert_eq!(r.rpo_ms, Some(150));
    }

    #[test]
    fn nothing_survived_means_no_bound() {
        let t = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap();
        let r = judge(&HashSet::new(), true, &[(1, t(1)), (2, t(2))], t(10));
        assert_eq!(r.rows_lost, 2);
        assert_eq!(r.rpo_ms, None);
    }
}

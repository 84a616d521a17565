//! The RPO canary: a background writer that inserts `(run_id, seq, written_at)` rows into
//! the protected database at a steady pace and reports every *acknowledged* commit.
//!
//! After recovery, the acknowledged rows that are missing from the recovered database
//! are exactly the writes the recovery lost ([`crate::rpo`]). A row counts only once its
//! commit returned: an insert cut off by the fault may or may not have committed, so it
//! is never counted as lost.

use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Debug, Clone)]
pub struct CanaryOptions {
    pub dsn: String,
    /// `table` or `schema.table`; created if missing.
    pub table: String,
    /// Tells this canary's rows from other runs' in a shared table.
    pub run_id: String,
    pub interval: Duration,
}

/// One acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub seq: i64,
    /// Taken just before the insert was sent.
    pub written_at: DateTime<Utc>,
    /// When the commit returned.
    pub acked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CanaryStats {
    pub attempted: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub first_failure_at: Option<DateTime<Utc>>,
}

/// A running canary. Dropping it stops the writer at its next tick.
pub struct Canary {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<CanaryStats>,
    ended: Option<oneshot::Receiver<()>>,
}

/// Checks the table name, connects once and creates the table, so that a wrong DSN or
/// a read-only database fails the step instead of a silent background loop.
pub async fn prepare(options: &CanaryOptions) -> Result<i64, ValidationError> {
    let table = quote_table(&options.table)?;
    let mut conn = crate::connect(&options.dsn).await?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (run_id text NOT NULL, seq bigint NOT NULL, written_at timestamptz NOT NULL, PRIMARY KEY (run_id, seq))"
    ))
    .execute(&mut conn)
    .await
    .map_err(ValidationError::db(format!("creating the canary table {}", options.table)))?;
    let next: i64 = sqlx::query_scalar(&format!("SELECT coalesce(max(seq), 0) + 1 FROM {table} WHERE run_id = $1"))
        .bind(&options.run_id)
        .fetch_one(&mut conn)
        .await
        .map_err(ValidationError::db("reading the canary's last sequence number"))?;
    Ok(next)
}

/// Starts writing from `first_seq`; every acknowledged row is sent to `acks`.
pub fn start(options: CanaryOptions, first_seq: i64, acks: mpsc::UnboundedSender<Ack>) -> Result<Canary, ValidationError> {
    let table = quote_table(&options.table)?;
    let (stop, stopped) = watch::channel(false);
    let (ended_tx, ended) = oneshot::channel();
    let task = tokio::spawn(async move {
        let stats = write_loop(options, table, first_seq, acks, stopped).await;
        let _ = ended_tx.send(());
        stats
    });
    Ok(Canary {
        stop,
        task,
        ended: Some(ended),
    })
}

impl Canary {
    /// Stops writing and returns the counts. An insert in flight is awaited, so its
    /// acknowledgement is not lost.
    pub async fn stop(self) -> Result<CanaryStats, ValidationError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| ValidationError::Invalid(format!("the canary writer crashed: {e}")))
    }

    /// Resolves when the writer ends: with the reason if it died without being stopped (a
    /// panic), with `None` after a stop. Taken once, to watch the writer from elsewhere.
    pub fn crashed(&mut self) -> impl std::future::Future<Output = Option<String>> + Send + 'static {
        let ended = self.ended.take();
        async move {
            match ended {
                Some(ended) => ended.await.err().map(|_| "the canary writer crashed".to_owned()),
                None => None,
            }
        }
    }
}

async fn write_loop(
    options: CanaryOptions,
    table: String,
    mut seq: i64,
    acks: mpsc::UnboundedSender<Ack>,
    mut stopped: watch::Receiver<bool>,
) -> CanaryStats {
    let run_id = string_literal(&options.run_id);
    // A write that hangs (a blackholed network) must not stall the canary for long.
    let write_timeout = (options.interval * 20).max(Duration::from_secs(2));
    let mut stats = CanaryStats::default();
    let mut conn: Option<PgConnection> = None;
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return stats,
        }
        if *stopped.borrow() {
            return stats;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match crate::connect(&options.dsn).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    note_failure(&mut stats, e.to_string());
                    continue;
                }
            },
        };
        stats.attempted += 1;
        let written_at = Utc::now();
        // The simple query protocol (a bare &str, no arguments): one message, one transaction. The extended protocol
        // parses and executes after separate Syncs, and a pooler in transaction mode
        // (PgBouncer) may hand those to different server connections, which loses the
        // unnamed statement in between ("unnamed prepared statement does not exist").
        let insert = format!(
            "INSERT INTO {table} (run_id, seq, written_at) VALUES ({run_id}, {seq}, '{}')",
            written_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        let result = tokio::time::timeout(write_timeout, sqlx::Executor::execute(&mut *c, insert.as_str())).await;
        seq += 1;
        match result {
            Ok(Ok(_)) => {
                stats.acknowledged += 1;
                let _ = acks.send(Ack {
                    seq: seq - 1,
                    written_at,
                    acked_at: Utc::now(),
                });
            }
            // The number was taken by a write whose acknowledgement died with a crashed
            // engine (the canary restarts after the last journaled one): not a failure.
            Ok(Err(sqlx::Error::Database(db))) if db.code().as_deref() == Some("23505") => stats.attempted -= 1,
            Ok(Err(e)) => {
                note_failure(&mut stats, e.to_string());
                conn = None;
            }
            Err(_) => {
                note_failure(&mut stats, format!("the insert did not return within {write_timeout:?}"));
                conn = None;
            }
        }
    }
}

/// A string as an SQL literal that means the same whatever `standard_conforming_strings` is.
fn string_literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn note_failure(stats: &mut CanaryStats, error: String) {
    stats.failed += 1;
    stats.first_failure_at.get_or_insert_with(Utc::now);
    tracing::debug!(error = %error, "canary write failed");
    stats.last_error = Some(error);
}

/// `table` or `schema.table`, each part a plain identifier, double-quoted.
pub fn quote_table(name: &str) -> Result<String, ValidationError> {
    let parts: Vec<&str> = name.split('.').collect();
    let plain = |p: &str| {
        !p.is_empty()
            && p.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(ValidationError::Invalid(format!(
            "invalid table name `{name}`: use lower-case letters, digits and `_`, optionally `schema.table`"
        )));
    }
    Ok(parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(super::quote_table("app.canary").unwrap(), "\"app\".\"canary\"");
        assert!(super::quote_table("x; drop table y").is_err());
        assert!(super::quote_table("a.b.c").is_err());
        assert!(super::quote_table("Canary").is_err());
    }

    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(super::string_literal("20261122-0424"), "E'20261122-0424'");
        assert_eq!(super::string_literal(r"it's a\b"), r"E'it''s a\\b'");
    }
}

//! Promoting a standby and proving it takes writes.

use super::connect;
use crate::error::{FailoverError, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    /// False when the server was already a primary (a resumed step).
    pub promoted_now: bool,
    /// When the first write was acknowledged after promotion.
    pub promoted_at: DateTime<Utc>,
    pub timeline: u32,
    /// The WAL position right after promotion.
    pub promotion_lsn: String,
}

/// Promotes the standby at `dsn` (no-op if it already is a primary) and waits until a
/// write transaction commits on it.
pub async fn promote(dsn: &str, within: Duration) -> Result<Promotion> {
    let mut conn = connect(dsn).await?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .map_err(FailoverError::pg("reading the server's role"))?;
    if in_recovery {
        let seconds = within.as_secs().clamp(1, i32::MAX as u64) as i32;
        let done: bool = sqlx::query_scalar("SELECT pg_promote(true, $1)")
            .bind(seconds)
            .fetch_one(&mut conn)
            .await
            .map_err(FailoverError::pg("pg_promote"))?;
        if !done {
            return Err(FailoverError::NotReady(format!(
                "the standby did not finish promotion within {seconds} s"
            )));
        }
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // Assigning a transaction id fails while the server is still read-only.
        match sqlx::query_scalar::<_, String>("SELECT pg_current_xact_id()::text")
            .fetch_one(&mut conn)
            .await
        {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(FailoverError::NotReady(format!("the promoted server still refuses writes: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let promoted_at = Utc::now();
    let (walfile, lsn): (String, String) = sqlx::query_as("SELECT pg_walfile_name(pg_current_wal_lsn()), pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .map_err(FailoverError::pg("reading the new timeline"))?;
    let timeline = u32::from_str_radix(&walfile[..8], 16).unwrap_or(0);
    Ok(Promotion {
        promoted_now: in_recovery,
        promoted_at,
        timeline,
        promotion_lsn: lsn,
    })
}

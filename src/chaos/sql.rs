//! A destructive SQL statement (an accidental `DROP TABLE`, a bad `UPDATE`): the classic
//! point-in-time-recovery drill. The evidence brackets the commit: `started_at` and the
//! WAL position before it (restore targets), `committed_at` after it (the disaster).

use super::{ChaosError, Injection, evidence, ts};
use chrono::Utc;

pub async fn inject(dsn: &str, statement: &str) -> Result<Injection, ChaosError> {
    let mut conn = lifeboat_validation::connect(dsn).await.map_err(|e| ChaosError::NotApplied(e.to_string()))?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the server's state: {e}")))?;
    if in_recovery {
        return Err(ChaosError::Invalid("the server is a standby; run the statement on the primary".into()));
    }
    let lsn_before: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the WAL position: {e}")))?;
    let started_at = Utc::now();
    let result = sqlx::Executor::execute(&mut conn, statement).await.map_err(|e| match &e {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("42")) => {
            ChaosError::Invalid(format!("the statement failed: {db}; fix it in the plan"))
        }
        _ => ChaosError::NotApplied(format!("the statement failed: {e}")),
    })?;
    let committed_at = Utc::now();
    let lsn_after: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the WAL position: {e}")))?;
    Ok(Injection {
        injected_at: committed_at,
        evidence: evidence([
            ("statement", statement.into()),
            ("rows_affected", result.rows_affected().into()),
            ("started_at", ts(started_at)),
            ("committed_at", ts(committed_at)),
            ("lsn_before", lsn_before.into()),
            ("lsn_after", lsn_after.into()),
        ]),
        revert: None,
    })
}

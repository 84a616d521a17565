//! A destructive SQL statement (an accidental `DROP TABLE`, a bad `UPDATE`): the classic
//! point-in-time-recovery drill. The evidence brackets the commit: `started_at` and the
//! WAL position before it, its xid (restore targets), and the disaster time: the server's
//! clock as the commit began (without a transaction: the client's acknowledgement).

use super::{ChaosError, Injection, evidence, ts};
use chrono::{DateTime, Utc};

/// Runs `statement`, in one transaction unless `transaction` is false (for statements
/// such as `VACUUM` that refuse transaction blocks). In a transaction, the evidence holds
/// its xid: a restore to that xid, exclusive, undoes exactly this fault.
pub async fn inject(dsn: &str, statement: &str, transaction: bool) -> Result<Injection, ChaosError> {
    let mut conn = lifeboat_validation::connect(dsn)
        .await
        .map_err(|e| ChaosError::NotApplied(e.to_string()))?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the server's state: {e}")))?;
    if in_recovery {
        return Err(ChaosError::Invalid(
            "the server is a standby; run the statement on the primary".into(),
        ));
    }
    let lsn_before: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the WAL position: {e}")))?;
    let started_at = Utc::now();
    let failed = |e: sqlx::Error| match &e {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("42")) => {
            ChaosError::Invalid(format!("the statement failed: {db}; fix it in the plan"))
        }
        _ => ChaosError::NotApplied(format!("the statement failed: {e}")),
    };
    let (rows_affected, xid, commit_began_at) = if transaction {
        let mut tx = sqlx::Connection::begin(&mut conn).await.map_err(failed)?;
        let result = sqlx::Executor::execute(&mut *tx, statement).await.map_err(failed)?;
        // The server's clock right before COMMIT: the commit record (what replay and
        // other sessions see) is stamped a moment later, while the client's
        // acknowledgement can come much later, after the WAL flush.
        let (xid, at): (String, DateTime<Utc>) = sqlx::query_as("SELECT pg_current_xact_id()::text, clock_timestamp()")
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        (result.rows_affected(), Some(xid), Some(at))
    } else {
        let result = sqlx::Executor::execute(&mut conn, statement).await.map_err(failed)?;
        (result.rows_affected(), None, None)
    };
    let committed_at = Utc::now();
    let lsn_after: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("reading the WAL position: {e}")))?;
    Ok(Injection {
        injected_at: commit_began_at.unwrap_or(committed_at),
        evidence: evidence([
            ("statement", statement.into()),
            ("rows_affected", rows_affected.into()),
            ("xid", xid.into()),
            ("started_at", ts(started_at)),
            ("commit_began_at", commit_began_at.map(ts).into()),
            ("committed_at", ts(committed_at)),
            ("lsn_before", lsn_before.into()),
            ("lsn_after", lsn_after.into()),
        ]),
        revert: None,
    })
}

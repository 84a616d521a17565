//! Replication state as the primary sees it (`pg_stat_replication`).

use super::connect;
use crate::error::{FailoverError, Result};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplicaStatus {
    pub application_name: String,
    pub state: String,
    /// `async`, `sync`, `potential` or `quorum`.
    pub sync_state: String,
    pub sent_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// WAL the primary has written that the standby has not replayed yet.
    pub lag_bytes: i64,
    /// `replay_lag` (NULL when idle) in seconds.
    pub replay_lag_seconds: Option<f64>,
}

/// Every standby connected to the primary at `dsn`.
pub async fn replicas(dsn: &str) -> Result<Vec<ReplicaStatus>> {
    let mut conn = connect(dsn).await?;
    let rows = sqlx::query(
        "SELECT application_name::text AS name, state::text AS state, sync_state::text AS sync_state, \
         sent_lsn::text AS sent, replay_lsn::text AS replay, \
         coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::int8 AS lag, \
         extract(epoch FROM replay_lag)::float8 AS replay_lag FROM pg_stat_replication ORDER BY application_name",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(FailoverError::pg("reading pg_stat_replication"))?;
    rows.iter()
        .map(|r| {
            Ok(ReplicaStatus {
                application_name: r.try_get("name")?,
                state: r.try_get("state")?,
                sync_state: r.try_get("sync_state")?,
                sent_lsn: r.try_get("sent")?,
                replay_lsn: r.try_get("replay")?,
                lag_bytes: r.try_get("lag")?,
                replay_lag_seconds: r.try_get("replay_lag")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(FailoverError::pg("reading pg_stat_replication"))
}

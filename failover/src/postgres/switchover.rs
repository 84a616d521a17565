//! Planned switchover with zero data loss: stop the primary cleanly (its WAL senders ship
//! everything, up to the shutdown checkpoint, before they exit), wait until the standby has
//! replayed past that checkpoint, promote the standby, and restart the old primary as a
//! standby of the new one. It never needs `pg_rewind`: the new timeline forks after the old
//! primary's last record.

use super::follow::{control_data, follow};
use super::promote::{Promotion, promote};
use super::{connect, parse_dsn};
use crate::error::{FailoverError, Result};
use lifeboat_backup::instance::{LocalInstance, StopMode};
use lifeboat_backup::process::Spawner;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SwitchoverOptions {
    /// Instance directory and DSN of the current primary (it must be local: it is stopped).
    pub primary_dir: PathBuf,
    pub primary_dsn: String,
    /// The standby to promote.
    pub standby_dsn: String,
    /// `application_name` and slot of the old primary once it follows the new one.
    pub demoted_name: String,
    pub within: Duration,
    /// Starts PostgreSQL's tools; see `lifeboat_backup::process`.
    pub spawner: Spawner,
}

#[derive(Debug, Clone, Serialize)]
pub struct Switchover {
    /// The old primary's shutdown checkpoint: everything it ever committed is before it.
    pub final_lsn: String,
    /// What the standby had replayed when it was promoted (≥ `final_lsn`).
    pub standby_replayed_lsn: String,
    pub promotion: Promotion,
    /// Sync state of the old primary, now streaming from the new one.
    pub demoted_sync_state: String,
}

fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub async fn switchover(options: &SwitchoverOptions) -> Result<Switchover> {
    let primary = parse_dsn(&options.primary_dsn)?;
    let mut old = LocalInstance::new(&options.primary_dir, primary.get_port(), options.spawner.clone())?;
    old.superuser = primary.get_username().to_owned();
    // A clean stop: clients are disconnected (no write is acknowledged after this) and the
    // WAL senders wait until standbys have received the shutdown checkpoint.
    old.stop(StopMode::Fast).await?;
    let control = control_data(&old).await?;
    let state = control.get("Database cluster state").cloned().unwrap_or_default();
    if state != "shut down" {
        return Err(FailoverError::Invalid(format!(
            "the primary in {} is `{state}`, not cleanly shut down; this is a failover, not a switchover",
            options.primary_dir.display()
        )));
    }
    let final_lsn = control
        .get("Latest checkpoint location")
        .cloned()
        .ok_or_else(|| FailoverError::Invalid("pg_controldata shows no checkpoint location".into()))?;
    let target = parse_lsn(&final_lsn).unwrap_or(u64::MAX);
    let mut standby = connect(&options.standby_dsn).await?;
    let deadline = tokio::time::Instant::now() + options.within;
    let replayed = loop {
        let lsn: Option<String> = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn()::text")
            .fetch_one(&mut standby)
            .await
            .map_err(FailoverError::pg("reading the standby's replay position"))?;
        match lsn {
            Some(l) if parse_lsn(&l).is_some_and(|v| v > target) => break l,
            other if tokio::time::Instant::now() >= deadline => {
                // Starting the old primary again keeps the service as it was.
                old.start().await?;
                return Err(FailoverError::NotReady(format!(
                    "the standby replayed only to {} of the primary's final {final_lsn} within {:?}; the old primary was restarted",
                    other.unwrap_or_else(|| "nothing".into()),
                    options.within
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    drop(standby);
    let promotion = promote(&options.standby_dsn, options.within).await?;
    let demoted_sync_state = follow(&old, &options.standby_dsn, &options.demoted_name, options.within).await?;
    Ok(Switchover {
        final_lsn,
        standby_replayed_lsn: replayed,
        promotion,
        demoted_sync_state,
    })
}

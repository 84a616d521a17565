//! Reprotect: turn a former primary into a standby of the new primary. `pg_rewind` first
//! (it needs data checksums or `wal_log_hints`, and a cleanly shut down target, so a crashed
//! cluster first finishes crash recovery in single-user mode, which accepts no clients);
//! when rewinding is impossible, a fresh base backup. The report says which path and why.
//!
//! The new primary must answer before anything is touched: an unreachable primary is a
//! retryable error, never a reason to throw the old data away. The data a fresh base backup
//! replaces is moved aside, not deleted: it may hold the only copy of writes the failover lost.

use super::follow::{control_data, follow};
use super::parse_dsn;
use crate::error::{FailoverError, Result};
use lifeboat_backup::instance::{LocalInstance, StopMode};
use lifeboat_backup::process::Spawner;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReprotectOptions {
    /// Instance directory and port of the former primary.
    pub dir: PathBuf,
    pub port: u16,
    /// The new primary.
    pub primary_dsn: String,
    /// `application_name` and slot of the former primary as a standby.
    pub name: String,
    pub within: Duration,
    /// Starts PostgreSQL's tools; see `lifeboat_backup::process`.
    pub spawner: Spawner,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reprotected {
    /// `rewind`, `base_backup` or `already_standby`.
    pub path: String,
    pub reason: String,
    pub sync_state: String,
    /// Where the replaced data directory was moved (the base-backup path only).
    pub previous_data: Option<PathBuf>,
}

/// Suffix of the replaced data directory, next to the new one.
const PREVIOUS_DATA_SUFFIX: &str = ".before-reprotect";

pub async fn reprotect(options: &ReprotectOptions) -> Result<Reprotected> {
    let primary = parse_dsn(&options.primary_dsn)?;
    let mut old = LocalInstance::new(&options.dir, options.port, options.spawner.clone())?;
    old.superuser = primary.get_username().to_owned();
    let pgdata = old.pgdata();
    if pgdata.join("standby.signal").is_file() && old.running_pid().is_some() {
        let sync_state = super::follow::wait_streaming(&options.primary_dsn, &options.name, false, options.within, &old.log_file()).await?;
        return Ok(Reprotected {
            path: "already_standby".into(),
            reason: "it already runs as a standby".into(),
            sync_state,
            previous_data: None,
        });
    }
    checkpoint_new_primary(&primary).await?;
    old.stop(StopMode::Fast).await?;
    let (path, reason) = match rewind(&old, &primary).await {
        Ok(()) => ("rewind", "pg_rewind synchronised it with the new primary's timeline".to_owned()),
        Err(why) => {
            let previous = lifeboat_backup::instance::sibling(&pgdata, PREVIOUS_DATA_SUFFIX);
            tracing::warn!(dir = %options.dir.display(), reason = %why, previous_data = %previous.display(),
                "pg_rewind impossible; moving the data aside and taking a fresh base backup");
            let io =
                |e: std::io::Error| FailoverError::Invalid(format!("moving {} aside to {}: {e}", pgdata.display(), previous.display()));
            if !pgdata.join("PG_VERSION").is_file() {
                // What an interrupted base backup left; the data set aside before it stays.
                if pgdata.exists() {
                    std::fs::remove_dir_all(&pgdata).map_err(io)?;
                }
            } else {
                if previous.exists() {
                    std::fs::remove_dir_all(&previous).map_err(io)?;
                }
                std::fs::rename(&pgdata, &previous).map_err(io)?;
            }
            let built = super::standby::build(&super::standby::StandbyOptions {
                primary_dsn: options.primary_dsn.clone(),
                dir: options.dir.clone(),
                port: options.port,
                name: options.name.clone(),
                synchronous: false,
                wait: options.within,
                // The instance keeps its recorded placement: that file is not moved aside.
                placement: None,
                spawner: options.spawner.clone(),
            })
            .await?;
            return Ok(Reprotected {
                path: "base_backup".into(),
                reason: format!("pg_rewind was impossible: {why}"),
                sync_state: built.sync_state,
                previous_data: Some(previous),
            });
        }
    };
    let sync_state = follow(&old, &options.primary_dsn, &options.name, options.within).await?;
    Ok(Reprotected {
        path: path.into(),
        reason,
        sync_state,
        previous_data: None,
    })
}

/// A freshly promoted primary records its new timeline in the control file only at its next
/// checkpoint; before that pg_rewind sees one timeline and wrongly rewinds nothing. This is
/// also the reachability check that must pass before the old cluster is touched.
async fn checkpoint_new_primary(primary: &sqlx::postgres::PgConnectOptions) -> Result<()> {
    let mut source = super::connect(&format!(
        "postgres://{}@{}:{}/postgres",
        primary.get_username(),
        primary.get_host(),
        primary.get_port()
    ))
    .await?;
    sqlx::query("CHECKPOINT")
        .execute(&mut source)
        .await
        .map_err(FailoverError::pg("CHECKPOINT on the new primary"))?;
    Ok(())
}

/// Runs `pg_rewind` against the new primary; the error says why it could not.
async fn rewind(old: &LocalInstance, primary: &sqlx::postgres::PgConnectOptions) -> std::result::Result<(), String> {
    let control = control_data(old).await.map_err(|e| e.to_string())?;
    let checksums = control.get("Data page checksum version").is_some_and(|v| v != "0");
    let state = control.get("Database cluster state").cloned().unwrap_or_default();
    if state != "shut down" {
        old.clear_dead_pid_file().map_err(|e| e.to_string())?;
        // Crash recovery without accepting a single client: single-user mode, stdin closed.
        let mut single = old.tool("postgres");
        single.arg("--single").arg("-D").arg(old.pgdata()).arg("postgres");
        let out = old.spawner.output(single).await.map_err(|e| format!("single-user recovery: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "single-user recovery failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let mut command = old.tool("pg_rewind");
    command.arg("--target-pgdata").arg(old.pgdata()).arg(format!(
        "--source-server=host={} port={} user={} dbname=postgres",
        primary.get_host(),
        primary.get_port(),
        primary.get_username()
    ));
    let out = old.spawner.output(command).await.map_err(|e| format!("running pg_rewind: {e}"))?;
    if out.status.success() {
        tracing::info!(output = %String::from_utf8_lossy(&out.stderr).trim(), "pg_rewind finished");
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(if checksums {
            stderr
        } else {
            format!("{stderr} (the cluster has neither data checksums nor, perhaps, wal_log_hints)")
        })
    }
}

//! Building a streaming standby of a primary in another "region" (its own directory and
//! port, optionally its own address and network namespace): a replication slot on the primary, `pg_basebackup`, `primary_conninfo` with the
//! standby's name, optionally synchronous replication, then wait until it streams.

use super::{connect, parse_dsn};
use crate::error::{FailoverError, Result};
use lifeboat_backup::instance::{LocalInstance, Placement, ServerUser, quote_conf, run_checked};
use lifeboat_backup::process::Spawner;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StandbyOptions {
    /// The primary, `postgres://user@host:port/db`; the user needs replication rights.
    pub primary_dsn: String,
    /// Instance directory (`data/`, `run/`, `postgres.log` inside).
    pub dir: PathBuf,
    pub port: u16,
    /// The standby's `application_name` and replication slot name.
    pub name: String,
    /// Make it the primary's synchronous standby (`synchronous_standby_names`).
    pub synchronous: bool,
    /// How long to wait for it to stream.
    pub wait: Duration,
    /// Where it runs on the network; `None` keeps the instance's recorded placement
    /// (loopback for a new one).
    pub placement: Option<Placement>,
    /// Starts PostgreSQL's tools; see `lifeboat_backup::process`.
    pub spawner: Spawner,
}

#[derive(Debug, Clone, Serialize)]
pub struct Standby {
    pub dsn: String,
    pub pgdata: PathBuf,
    pub port: u16,
    pub slot: String,
    pub sync_state: String,
    /// False when the standby existed already (a resumed step) and was only started.
    pub created: bool,
}

pub async fn build(options: &StandbyOptions) -> Result<Standby> {
    let name = &options.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(FailoverError::Invalid(format!(
            "standby name `{name}`: use lower-case letters, digits and `_` (it names a replication slot)"
        )));
    }
    let primary = parse_dsn(&options.primary_dsn)?;
    let mut instance = LocalInstance::new(&options.dir, options.port, options.spawner.clone())?;
    instance.superuser = primary.get_username().to_owned();
    if let Some(placement) = &options.placement {
        instance.set_placement(placement.clone())?;
    }
    let pgdata = instance.pgdata();
    let created = !pgdata.join("PG_VERSION").is_file();
    let mut conn = connect(&options.primary_dsn).await?;
    if created {
        super::follow::create_slot(&options.primary_dsn, name).await?;
        if pgdata.exists() {
            std::fs::remove_dir_all(&pgdata).map_err(|e| FailoverError::Invalid(format!("{}: {e}", pgdata.display())))?;
        }
        std::fs::create_dir_all(&options.dir).map_err(|e| FailoverError::Invalid(format!("{}: {e}", options.dir.display())))?;
        ServerUser::chown_tree(instance.user, &options.dir)?;
        let mut command = instance.tool("pg_basebackup");
        command
            .arg("-D")
            .arg(&pgdata)
            .args(["-h", primary.get_host(), "-p", &primary.get_port().to_string()])
            .args([
                "-U",
                primary.get_username(),
                "-X",
                "stream",
                "-S",
                name,
                "-R",
                "-c",
                "fast",
                "--no-password",
            ]);
        run_checked(&instance.spawner, command, "pg_basebackup").await?;
        // `-R` wrote primary_conninfo into postgresql.auto.conf; ours go after it and win.
        super::follow::write_standby_settings(&instance, &options.primary_dsn, name)?;
    }
    if options.synchronous {
        sqlx::query(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = {}",
            quote_conf(&format!("\"{name}\""))
        ))
        .execute(&mut conn)
        .await
        .map_err(FailoverError::pg("setting synchronous_standby_names"))?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await
            .map_err(FailoverError::pg("reloading the primary's configuration"))?;
    }
    instance.start().await?;
    let sync_state =
        super::follow::wait_streaming(&options.primary_dsn, name, options.synchronous, options.wait, &instance.log_file()).await?;
    Ok(Standby {
        dsn: instance.dsn(primary.get_database().unwrap_or("postgres")),
        pgdata,
        port: options.port,
        slot: name.clone(),
        sync_state,
        created,
    })
}

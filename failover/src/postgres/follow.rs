//! Making a stopped cluster a streaming standby of a primary: its own placement, a slot on
//! the primary, `primary_conninfo`, `standby.signal`, start, wait until it streams. Shared
//! by switchover (demoting the old primary) and reprotect.

use super::{connect, parse_dsn};
use crate::error::{FailoverError, Result};
use lifeboat_backup::instance::{LocalInstance, append_settings};
use std::time::Duration;

pub(crate) async fn create_slot(primary_dsn: &str, name: &str) -> Result<()> {
    let mut conn = connect(primary_dsn).await?;
    sqlx::query(
        "SELECT pg_create_physical_replication_slot($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
    )
    .bind(name)
    .execute(&mut conn)
    .await
    .map_err(FailoverError::pg("creating the replication slot"))?;
    Ok(())
}

/// Settings that make `instance` (a cluster directory) a standby of `primary_dsn` named
/// `name`, written last into `postgresql.auto.conf` so they win over anything copied from
/// another cluster.
pub(crate) fn write_standby_settings(instance: &LocalInstance, primary_dsn: &str, name: &str) -> Result<()> {
    let primary = parse_dsn(primary_dsn)?;
    let mut settings = instance.placement_settings();
    settings.push((
        "primary_conninfo".into(),
        format!(
            "host={} port={} user={} application_name={name}",
            primary.get_host(),
            primary.get_port(),
            primary.get_username()
        ),
    ));
    settings.push(("primary_slot_name".into(), name.to_owned()));
    settings.push(("recovery_target_timeline".into(), "latest".into()));
    settings.push(("hot_standby".into(), "on".into()));
    let pgdata = instance.pgdata();
    append_settings(
        &pgdata.join("postgresql.auto.conf"),
        "standby settings written by lifeboat",
        &settings,
    )?;
    std::fs::write(pgdata.join("standby.signal"), b"").map_err(|e| FailoverError::Invalid(format!("{}: {e}", pgdata.display())))?;
    lifeboat_backup::instance::ServerUser::chown_tree(instance.user, &pgdata.join("standby.signal"))?;
    Ok(())
}

/// Waits until the primary at `primary_dsn` sees `name` streaming; returns its sync state.
pub(crate) async fn wait_streaming(
    primary_dsn: &str,
    name: &str,
    synchronous: bool,
    within: Duration,
    log: &std::path::Path,
) -> Result<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let replicas = super::status::replicas(primary_dsn).await?;
        match replicas.into_iter().find(|r| r.application_name == name && r.state == "streaming") {
            Some(r) if !synchronous || r.sync_state == "sync" => return Ok(r.sync_state),
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(FailoverError::NotReady(format!(
                    "`{name}` is not streaming{} after {within:?}; see {}",
                    if synchronous { " synchronously" } else { "" },
                    log.display()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Makes the stopped cluster of `instance` follow `primary_dsn` as `name` and waits until it
/// streams.
pub(crate) async fn follow(instance: &LocalInstance, primary_dsn: &str, name: &str, within: Duration) -> Result<String> {
    create_slot(primary_dsn, name).await?;
    write_standby_settings(instance, primary_dsn, name)?;
    instance.start().await?;
    wait_streaming(primary_dsn, name, false, within, &instance.log_file()).await
}

/// `pg_controldata` of a cluster, as key → value.
pub(crate) async fn control_data(instance: &LocalInstance) -> Result<std::collections::BTreeMap<String, String>> {
    let mut command = instance.tool("pg_controldata");
    command.arg("-D").arg(instance.pgdata());
    let out = instance
        .spawner
        .output(command)
        .await
        .map_err(|e| FailoverError::Invalid(format!("running pg_controldata: {e}")))?;
    if !out.status.success() {
        return Err(FailoverError::Invalid(format!(
            "pg_controldata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect())
}

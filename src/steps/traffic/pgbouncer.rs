//! `traffic.pgbouncer`: move a PgBouncer database entry to a new host/port without
//! dropping client connections (PAUSE, rewrite, RELOAD, RESUME).

use crate::steps::outputs_of;
use crate::steps::postgres::Port;
use crate::steps::timestamp;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::pgbouncer::{self, PgBouncerSwitch};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The running PgBouncer's `pgbouncer.ini` (lifeboat rewrites it).
    pub config: Text,
    /// Admin console address (default 127.0.0.1) and port.
    #[serde(default)]
    pub admin_host: Option<Text>,
    pub admin_port: Port,
    /// A user listed in `admin_users` (default `postgres`).
    #[serde(default)]
    pub admin_user: Option<Text>,
    /// The `[databases]` entry to move.
    pub database: Text,
    /// Where it should point now.
    pub host: Text,
    pub port: Port,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let psql = lifeboat_backup::instance::PgBinaries::locate()?.tool("psql");
    let switch = PgBouncerSwitch {
        config: options.config.0.into(),
        admin_host: options.admin_host.map_or_else(|| "127.0.0.1".into(), |h| h.0),
        admin_port: options.admin_port.get() as u16,
        admin_user: options.admin_user.map_or_else(|| "postgres".into(), |u| u.0),
        database: options.database.0,
        host: options.host.0,
        port: options.port.get() as u16,
        psql,
        spawner: cx.spawner(),
    };
    let done = pgbouncer::switch(&switch).await?;
    let mut out = outputs_of(&done);
    out.insert("switched_at".into(), timestamp(done.switched_at));
    Ok(out)
}

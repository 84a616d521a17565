//! `postgres.standby`: build (or, when it exists, start) a streaming standby of a primary
//! in its own directory and port (optionally its own address and network namespace),
//! optionally synchronous, and wait until it streams.

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::postgres::{Port, configured_port, free_port, placement, scratch_dir};
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::postgres::standby::{self, StandbyOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The primary, `postgres://user@host:port/db` (the user needs replication rights).
    pub primary_dsn: crate::steps::dsn::Dsn,
    /// Instance directory of the standby (default: a scratch directory of the run and step).
    #[serde(default)]
    pub dir: Option<Text>,
    /// Port (default: the existing standby's, else a free one).
    #[serde(default)]
    pub port: Option<Port>,
    /// Address it listens on and is reached at (default `127.0.0.1`), e.g. its address
    /// inside `netns`.
    #[serde(default)]
    pub host: Option<Text>,
    /// A network namespace (`ip netns`) to run it in, as another region; needs root.
    #[serde(default)]
    pub netns: Option<Text>,
    /// `application_name` and replication slot (default `standby`).
    #[serde(default)]
    pub name: Option<String>,
    /// Make it the primary's synchronous standby.
    #[serde(default)]
    pub synchronous: bool,
    /// How long to wait until it streams (default 2m).
    #[serde(default)]
    pub wait: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let dir = options.dir.map(|d| PathBuf::from(d.0)).unwrap_or_else(|| scratch_dir(cx));
    let dir = std::path::absolute(&dir).map_err(|e| StepError::terminal(format!("dir: {e}")))?;
    let port = match &options.port {
        Some(p) => p.get() as u16,
        None => match configured_port(&dir) {
            Some(port) => port,
            None => free_port()?,
        },
    };
    let placement = placement(options.host, options.netns);
    let standby_options = StandbyOptions {
        primary_dsn: options.primary_dsn.0,
        dir,
        port,
        name: options.name.unwrap_or_else(|| "standby".into()),
        synchronous: options.synchronous,
        wait: options.wait.map_or(Duration::from_secs(120), |d| d.get()),
        placement,
        spawner: cx.spawner(),
    };
    let built = tokio::select! {
        r = standby::build(&standby_options) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(outputs_of(&built))
}

//! `postgres.reprotect`: turn a former primary into a standby of the new primary with
//! `pg_rewind`, or a fresh base backup when rewinding is impossible; outputs which path
//! was taken and why.

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::postgres::Port;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::postgres::reprotect::{self, ReprotectOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Instance directory of the former primary.
    pub dir: Text,
    /// Its port.
    pub port: Port,
    /// The new primary.
    pub primary_dsn: crate::steps::dsn::Dsn,
    /// `application_name` and slot as a standby (default `standby`).
    #[serde(default)]
    pub name: Option<String>,
    /// Time limit of each phase (default 2m).
    #[serde(default)]
    pub within: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let reprotect_options = ReprotectOptions {
        dir: std::path::absolute(&options.dir.0).map_err(|e| StepError::terminal(format!("dir: {e}")))?,
        port: options.port.get() as u16,
        primary_dsn: options.primary_dsn.0,
        name: options.name.unwrap_or_else(|| "standby".into()),
        within: options.within.map_or(Duration::from_secs(120), |d| d.get()),
        spawner: cx.spawner(),
    };
    let done = tokio::select! {
        r = reprotect::reprotect(&reprotect_options) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(outputs_of(&done))
}

//! `postgres.reprotect`: turn a former primary into a standby of the new primary with
//! `pg_rewind`, or a fresh base backup when rewinding is impossible; outputs which path
//! was taken and why.

use super::postgres::parse_port;
use super::validation::{duration_or, outputs_of};
use super::{Outputs, StepContext, StepError, Text};
use crate::plan::model::HumanDuration;
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
    pub port: Text,
    /// The new primary.
    pub primary_dsn: Text,
    /// `application_name` and slot as a standby (default `standby`).
    #[serde(default)]
    pub name: Option<String>,
    /// Time limit of each phase (default 2m).
    #[serde(default)]
    pub within: Option<HumanDuration>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let reprotect_options = ReprotectOptions {
        dir: std::path::absolute(&options.dir.0).map_err(|e| StepError::terminal(format!("dir: {e}")))?,
        port: parse_port(&options.port)?,
        primary_dsn: options.primary_dsn.0,
        name: options.name.unwrap_or_else(|| "standby".into()),
        within: duration_or(&options.within, "within", Duration::from_secs(120))?,
    };
    let done = tokio::select! {
        r = reprotect::reprotect(&reprotect_options) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(outputs_of(&done))
}

//! `postgres.switchover`: planned, zero-data-loss role swap — stop the (local) primary
//! cleanly, wait until the standby replayed its final checkpoint, promote the standby, and
//! make the old primary stream from the new one.

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::postgres::switchover::{self, SwitchoverOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Instance directory of the current primary (it is stopped and restarted as a standby).
    pub primary_dir: Text,
    pub primary_dsn: crate::steps::dsn::Dsn,
    /// The standby to promote.
    pub standby_dsn: crate::steps::dsn::Dsn,
    /// `application_name` and slot of the old primary as a standby (default `standby`).
    #[serde(default)]
    pub demoted_name: Option<String>,
    /// Time limit of each phase (default 60s).
    #[serde(default)]
    pub within: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let switch = SwitchoverOptions {
        primary_dir: std::path::absolute(&options.primary_dir.0).map_err(|e| StepError::terminal(format!("primary_dir: {e}")))?,
        primary_dsn: options.primary_dsn.0,
        standby_dsn: options.standby_dsn.0.clone(),
        demoted_name: options.demoted_name.unwrap_or_else(|| "standby".into()),
        within: options.within.map_or(Duration::from_secs(60), |d| d.get()),
        spawner: cx.spawner(),
    };
    let done = tokio::select! {
        r = switchover::switchover(&switch) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = outputs_of(&done);
    out.insert("dsn".into(), options.standby_dsn.0.into());
    out.insert("promoted_at".into(), crate::steps::timestamp(done.promotion.promoted_at));
    out.insert("timeline".into(), done.promotion.timeline.into());
    Ok(out)
}

//! `postgres.promote`: promote a standby and wait until it commits a write. Outputs the
//! new timeline, the promotion LSN and `promoted_at`.

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::timestamp;
use crate::steps::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The standby, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// How long promotion may take (default 60s).
    #[serde(default)]
    pub within: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let within = options.within.map_or(Duration::from_secs(60), |d| d.get());
    let promotion = tokio::select! {
        r = lifeboat_failover::postgres::promote::promote(&options.dsn.0, within) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = outputs_of(&promotion);
    out.insert("promoted_at".into(), timestamp(promotion.promoted_at));
    out.insert("dsn".into(), options.dsn.0.into());
    Ok(out)
}

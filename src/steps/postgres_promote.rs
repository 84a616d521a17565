//! `postgres.promote`: promote a standby and wait until it commits a write. Outputs the
//! new timeline, the promotion LSN and `promoted_at`.

use super::validation::{duration_or, outputs_of, timestamp};
use super::{Outputs, StepContext, StepError, Text};
use crate::plan::model::HumanDuration;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The standby, `postgres://user@host:port/db`.
    pub dsn: Text,
    /// How long promotion may take (default 60s).
    #[serde(default)]
    pub within: Option<HumanDuration>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let within = duration_or(&options.within, "within", Duration::from_secs(60))?;
    let promotion = tokio::select! {
        r = lifeboat_failover::postgres::promote::promote(&options.dsn.0, within) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = outputs_of(&promotion);
    out.insert("promoted_at".into(), timestamp(promotion.promoted_at));
    out.insert("dsn".into(), options.dsn.0.into());
    Ok(out)
}

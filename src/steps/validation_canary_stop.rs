//! `validation.canary_stop`: stop the canary a `validation.canary` step started and
//! report its counts.

use super::validation::outputs_of;
use super::validation_canary::stats_channel;
use super::{Outputs, StepContext, StepError};
use crate::engine::background::{self, Class};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The id of the `validation.canary` step.
    pub canary: String,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    background::release_step(
        &cx.run_id,
        &options.canary,
        Class::Canary,
        "stopped by a validation.canary_stop step",
    )
    .await;
    let records = cx
        .journal
        .channel(&cx.run_id, &stats_channel(&options.canary))
        .await
        .map_err(|e| StepError::retryable(format!("reading the canary's counts: {e}")))?;
    match records.first() {
        Some(record) => Ok(outputs_of(&record.payload)),
        None => Err(StepError::terminal(format!(
            "no canary was started by step `{}` in this run; name a validation.canary step",
            options.canary
        ))),
    }
}

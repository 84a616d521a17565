//! `validation.canary_stop`: stop the canary a `validation.canary` step started and
//! report its counts.

use crate::evidence::canary::CanaryStopped;
use crate::steps::background::Class;
use crate::steps::{Outputs, StepContext, StepError, outputs_of};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The id of the `validation.canary` step.
    pub canary: String,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    cx.run
        .release_step(&options.canary, Class::Canary, "stopped by a validation.canary_stop step")
        .await;
    match cx.run.records::<CanaryStopped>(&options.canary).await?.into_iter().next() {
        Some(stopped) => Ok(outputs_of(&stopped)),
        None => Err(StepError::terminal(format!(
            "no canary was started by step `{}` in this run; name a validation.canary step",
            options.canary
        ))),
    }
}

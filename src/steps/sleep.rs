//! `sleep`: wait for a duration (cancellable).

use super::{Outputs, StepContext, StepError};
use crate::plan::duration::{DAY_MS, HumanDuration};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// How long to wait, e.g. `30s`.
    pub duration: HumanDuration<0, { 30 * DAY_MS }>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let duration = options.duration.get();
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    }
    let mut out = Outputs::new();
    out.insert("slept_ms".into(), (duration.as_millis() as u64).into());
    Ok(out)
}

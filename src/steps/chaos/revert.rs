//! `chaos.revert`: revert the faults still active in this run (all, or those of the
//! named steps) — typically in `finally`.

use crate::steps::background::Class;
use crate::steps::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Fault steps to revert; empty means every active fault of the run.
    #[serde(default)]
    pub steps: Vec<String>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let reason = format!("reverted by step {}", cx.step_id);
    let reverted = if options.steps.is_empty() {
        cx.run.release_class(Class::Fault, &reason).await
    } else {
        let mut n = 0;
        for step in &options.steps {
            n += cx.run.release_step(step, Class::Fault, &reason).await;
        }
        n
    };
    let mut out = Outputs::new();
    out.insert("reverted".into(), reverted.into());
    Ok(out)
}

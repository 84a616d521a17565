//! `chaos.clock_skew`: run a command under a shifted clock (Debian's `faketime`); the
//! command is stopped when `duration` ends, on revert, or at the run's end.

use super::activate;
use crate::chaos::clock_skew::{self, SkewOptions};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// libfaketime offset: `+2h`, `-30m`, `+1d`, or an absolute `@2030-01-01 00:00:00`.
    pub offset: String,
    /// The program and its arguments.
    pub command: Vec<Text>,
    /// How long the command runs under the skew.
    #[serde(default)]
    pub duration: Option<Limit>,
    /// Wait for `duration` to end (and report the command's output) before completing.
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let skew = SkewOptions {
        offset: options.offset,
        command: options.command.into_iter().map(|t| t.0).collect(),
    };
    activate(
        cx,
        clock_skew::inject(skew, cx.spawner()),
        options.duration.map(|d| d.get()),
        options.wait,
    )
    .await
}

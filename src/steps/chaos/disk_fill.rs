//! `chaos.disk_fill`: fill the filesystem of `path` until only `free` bytes (or
//! `free_percent`) remain; the fill file is removed on revert.

use super::activate_with_intent;
use crate::chaos::disk_fill::{self, FillOptions, Remaining};
use crate::plan::model::Limit;
use crate::plan::size::{GIB, Size};
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// A directory on the filesystem to fill; the fill file is created in it.
    pub path: Text,
    /// Space to leave free, e.g. `100MiB`.
    #[serde(default)]
    pub free: Option<Size>,
    /// Space to leave free, as a percentage of the filesystem.
    #[serde(default)]
    pub free_percent: Option<crate::plan::ratio::Percent>,
    /// Refuse to write more than this (default `20GiB`).
    #[serde(default)]
    pub max_fill: Option<Size<1>>,
    /// How long the disk stays full; without it, until `chaos.revert` or the run's end.
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let remaining = match (&options.free, options.free_percent) {
        (Some(f), None) => Remaining::Bytes(f.bytes()),
        (None, Some(p)) => Remaining::Percent(p.0),
        _ => return Err(StepError::terminal("give exactly one of `free` or `free_percent`")),
    };
    let fill = FillOptions {
        directory: options.path.0.clone().into(),
        remaining,
        max_fill: options.max_fill.map_or(20 * GIB, |m| m.bytes()),
        file_name: format!(".lifeboat-disk-fill-{}", cx.idempotency_key.replace('/', "-")),
    };
    let intent = fill.revert();
    activate_with_intent(
        cx,
        Some(intent),
        disk_fill::inject(fill),
        options.duration.map(|d| d.get()),
        options.wait,
    )
    .await
}

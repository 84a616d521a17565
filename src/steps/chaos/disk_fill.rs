//! `chaos.disk_fill`: fill the filesystem of `path` until only `free` bytes (or
//! `free_percent`) remain; the fill file is removed on revert.

use super::{activate_with_intent, parse_size};
use crate::chaos::disk_fill::{self, FillOptions, Remaining};
use crate::plan::model::Limit;
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
    pub free: Option<String>,
    /// Space to leave free, as a percentage of the filesystem.
    #[serde(default)]
    pub free_percent: Option<f64>,
    /// Refuse to write more than this (default `20GiB`).
    #[serde(default)]
    pub max_fill: Option<String>,
    /// How long the disk stays full; without it, until `chaos.revert` or the run's end.
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let remaining = match (&options.free, options.free_percent) {
        (Some(f), None) => Remaining::Bytes(parse_size(f, "free")?),
        (None, Some(p)) => Remaining::Percent(p),
        _ => return Err(StepError::terminal("give exactly one of `free` or `free_percent`")),
    };
    let fill = FillOptions {
        directory: options.path.0.clone().into(),
        remaining,
        max_fill: parse_size(options.max_fill.as_deref().unwrap_or("20GiB"), "max_fill")?,
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

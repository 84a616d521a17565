//! `chaos.stress`: CPU and memory pressure for a duration.

use super::activate;
use crate::chaos::stress::{self, Engine, StressOptions};
use crate::plan::model::Limit;
use crate::plan::size::Size;
use crate::steps::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Busy CPU workers.
    #[serde(default)]
    pub cpu: crate::plan::count::Count<0, 1024>,
    /// Memory to allocate and keep resident, e.g. `512MiB`.
    #[serde(default)]
    pub memory: Option<Size>,
    /// How long the pressure lasts.
    pub duration: Limit,
    /// `builtin` (default: threads and memory inside lifeboat) or `stress-ng`.
    #[serde(default)]
    pub engine: Option<String>,
    /// Wait until the pressure ends before the step completes.
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let duration = options.duration.get();
    let engine = match options.engine.as_deref() {
        None | Some("builtin") => Engine::Builtin,
        Some("stress-ng") => Engine::StressNg,
        Some(other) => return Err(StepError::terminal(format!("engine: `{other}` is not `builtin` or `stress-ng`"))),
    };
    let memory_bytes = options.memory.map_or(0, |m| m.bytes());
    let stress = StressOptions {
        cpu_workers: options.cpu.get() as usize,
        memory_bytes,
        engine,
        duration,
    };
    activate(cx, stress::inject(stress, cx.spawner()), Some(duration), options.wait).await
}

//! `chaos.process_kill`: signal a process (by pid, pid file or command-line regex); the
//! fault counts from the moment the process was observed gone (or stopped). `STOP`
//! freezes it until `duration` ends (then `CONT`). The processes are journaled before the
//! signal goes out, so a run resumed after the engine died does not signal twice, nor fail
//! on a target its earlier attempt already killed.

use super::activate;
use crate::chaos::process::{self, How, KillOptions, Target};
use crate::evidence::fault::{Aimed, FaultHistory, FaultRecord};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The process id.
    #[serde(default)]
    pub pid: Option<Text>,
    /// A file whose first line is the pid, e.g. `<pgdata>/postmaster.pid`.
    #[serde(default)]
    pub pid_file: Option<Text>,
    /// A regular expression matched against command lines.
    #[serde(default)]
    pub name: Option<String>,
    /// With `name`: signal every match instead of requiring exactly one.
    #[serde(default)]
    pub all: bool,
    /// KILL (default), TERM, INT, or STOP (frozen until `duration` ends, then CONT).
    #[serde(default)]
    pub signal: Option<String>,
    /// Signal the process's descendants too, as losing the machine would.
    #[serde(default)]
    pub include_children: bool,
    /// How long a STOP lasts.
    #[serde(default)]
    pub duration: Option<Limit>,
    /// With STOP and `duration`: wait for the CONT before the step completes.
    #[serde(default)]
    pub wait: bool,
    /// How long to wait for the process to be seen gone (default 30s).
    #[serde(default)]
    pub observe_within: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let target = match (&options.pid, &options.pid_file, &options.name) {
        (Some(pid), None, None) => Target::Pid(
            pid.0
                .parse()
                .map_err(|_| StepError::terminal(format!("pid: `{}` is not a process id", pid.0)))?,
        ),
        (None, Some(file), None) => Target::PidFile(file.0.clone().into()),
        (None, None, Some(pattern)) => Target::Name {
            pattern: pattern.clone(),
            all: options.all,
        },
        _ => return Err(StepError::terminal("give exactly one of `pid`, `pid_file` or `name`")),
    };
    let how = How::parse(options.signal.as_deref().unwrap_or("KILL"))?;
    let duration = options.duration.map(|d| d.get());
    if how == How::Stop && duration.is_none() {
        return Err(StepError::terminal(
            "signal STOP needs a `duration`: how long the process stays frozen before CONT",
        ));
    }
    let kill = KillOptions {
        target,
        how,
        include_children: options.include_children,
        observe_within: options.observe_within.map_or(Duration::from_secs(30), |d| d.get()),
    };
    let history = FaultHistory::of(cx.records::<FaultRecord>().await?);
    if history.injected.is_none()
        && let Some(earlier) = history.aimed
    {
        // An attempt aimed, maybe signalled, and died before journaling what it saw.
        if let Some(injection) = process::took_effect(&earlier.processes, how, earlier.at.unwrap_or_else(chrono::Utc::now)) {
            tracing::warn!(run = %cx.run_id, step = %cx.step_id, "the interrupted attempt's signal took effect; not signalling again");
            return activate(cx, async { Ok(injection) }, duration, options.wait).await;
        }
    }
    let aimed = process::aim(&kill)?;
    cx.record(&FaultRecord::Aimed(Aimed {
        signal: format!("{how:?}"),
        processes: aimed.clone(),
        at: None,
    }))
    .await?;
    activate(cx, process::fire(&aimed, how, kill.observe_within), duration, options.wait).await
}

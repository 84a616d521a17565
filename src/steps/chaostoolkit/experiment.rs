//! `chaostoolkit.experiment`: run a Chaos Toolkit experiment file unchanged with the real
//! `chaos` CLI, in the experiment's folder, and turn its journal into evidence: the steady
//! state before and after, each activity's status and times, the rollbacks. A deviated or
//! failed experiment fails the step with the reason. The first action's end is the
//! `injected_at` output, so with `mark: disaster` the experiment starts the drill's clock.
//!
//! Re-run after a crash: the earlier attempt's `chaos` process group is stopped by the resume
//! (it was journaled before it ran); the experiment then runs again from its start, behind
//! its own steady-state hypothesis. Its journal is written under the step's scratch folder.

use super::ToolkitJournal;
use crate::evidence::outcome::{FaultApplied, Outcome};
use crate::steps::postgres::scratch_dir;
use crate::steps::processes::wait_or_stop;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The experiment file (JSON or YAML), run unchanged in its folder.
    pub experiment: Text,
    /// Values for the experiment's configuration (`chaos run --var name=value`).
    #[serde(default)]
    pub vars: BTreeMap<String, Text>,
    /// When to run the rollbacks: `default`, `always`, `never` or `deviated`.
    #[serde(default)]
    pub rollback_strategy: Option<RollbackStrategy>,
    /// The `chaos` command (default `chaos` on the PATH).
    #[serde(default)]
    pub chaos: Option<Text>,
    /// Fail the step when the steady state deviated (default true).
    #[serde(default = "yes")]
    pub fail_on_deviation: bool,
    /// Where its activities run (default: the experiment's folder, as `chaos run` from there).
    #[serde(default)]
    pub cwd: Option<Text>,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RollbackStrategy {
    Default,
    Always,
    Never,
    Deviated,
}

fn yes() -> bool {
    true
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let experiment = std::path::absolute(&options.experiment.0)
        .map_err(|e| StepError::terminal(format!("experiment `{}`: {e}", options.experiment.0)))?;
    if !experiment.is_file() {
        return Err(StepError::terminal(format!("experiment `{}` does not exist", experiment.display())));
    }
    let scratch = scratch_dir(cx);
    std::fs::create_dir_all(&scratch).map_err(|e| StepError::retryable(format!("{}: {e}", scratch.display())))?;
    let journal_path = scratch.join(format!("journal-{}.json", cx.attempt));
    let program = options.chaos.as_ref().map_or("chaos", |c| c.0.as_str());
    let mut command = tokio::process::Command::new(program);
    command
        .args(["--no-version-check", "run"])
        .arg(&experiment)
        .arg("--journal-path")
        .arg(&journal_path)
        .current_dir(match &options.cwd {
            Some(cwd) => PathBuf::from(&cwd.0),
            None => experiment.parent().unwrap_or(std::path::Path::new("/")).to_path_buf(),
        })
        .stdin(std::process::Stdio::null());
    for (name, value) in &options.vars {
        command.arg("--var").arg(format!("{name}={}", value.0));
    }
    if let Some(strategy) = options.rollback_strategy {
        let name = serde_json::to_value(strategy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        command.arg("--rollback-strategy").arg(name);
    }
    let (mut child, group) = cx.spawner().spawn_recorded(command).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StepError::terminal(format!(
            "`{program}` not found: install the Chaos Toolkit (pip install chaostoolkit) or set `chaos`"
        )),
        _ => StepError::retryable(format!("starting `{program}`: {e}")),
    })?;
    let status = wait_or_stop(&cx.cancel, &mut child, &group, std::time::Duration::from_secs(10), program).await?;
    let journal = read_journal(&journal_path)
        .map_err(|why| StepError::terminal(format!("`{program} run` exited with {status} and left no readable journal: {why}")))?;
    let outputs = evidence(&journal, &journal_path);
    match journal.verdict() {
        Some(why) if journal.status != "completed" || options.fail_on_deviation => Err(StepError::terminal(why)),
        _ => Ok(outputs),
    }
}

fn read_journal(path: &PathBuf) -> Result<ToolkitJournal, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn evidence(journal: &ToolkitJournal, path: &std::path::Path) -> Outputs {
    let list = |runs: &[super::ActivityRun]| -> Value {
        serde_json::to_value(runs.iter().map(super::ActivityEvidence::from).collect::<Vec<_>>()).unwrap_or(Value::Null)
    };
    let met = |s: &Option<super::SteadyState>| s.as_ref().and_then(|s| s.steady_state_met).map_or(Value::Null, Value::Bool);
    let mut evidence = Map::new();
    evidence.insert("status".into(), journal.status.clone().into());
    evidence.insert("deviated".into(), journal.deviated.into());
    evidence.insert("steady_state_before".into(), met(&journal.steady_states.before));
    evidence.insert("steady_state_after".into(), met(&journal.steady_states.after));
    evidence.insert("activities".into(), list(&journal.run));
    evidence.insert("rollbacks".into(), list(&journal.rollbacks));
    evidence.insert("journal".into(), path.display().to_string().into());
    if let (Some(start), Some(end)) = (journal.start, journal.end) {
        evidence.insert("duration_ms".into(), (end - start).num_milliseconds().into());
    }
    match journal.fault_applied_at() {
        Some(injected_at) => FaultApplied {
            injected_at,
            reverts_at: None,
            reverted_at: None,
            revert: None,
            evidence,
        }
        .to_outputs(),
        None => evidence,
    }
}

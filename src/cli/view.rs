//! The live terminal view of a run: spinners per running step on a TTY, plain
//! timestamped lines otherwise (CI logs, pipes).

use crate::engine::runner::{Notice, RunOptions};
use crate::journal::Event;
use crate::plan::compiled::{CompiledPlan, Role};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct ViewHandle {
    task: tokio::task::JoinHandle<()>,
}

impl ViewHandle {
    /// Waits until every notice has been drawn. The sender lives in the run options,
    /// which the caller has dropped by now.
    pub async fn finish(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

pub fn start() -> (RunOptions, ViewHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tty = std::io::stderr().is_terminal();
    let task = tokio::spawn(async move { if tty { fancy(rx).await } else { plain(rx).await } });
    (
        RunOptions {
            notices: Some(tx),
            ..RunOptions::default()
        },
        ViewHandle { task },
    )
}

fn describe(plan: &CompiledPlan, run_id: &str, event: &Event) -> Option<(String, String)> {
    let line = match event {
        Event::StepStarted { step, attempt, .. } => {
            let unit = plan.unit_index(step).map(|i| &plan.units[i]);
            if unit.is_some_and(|u| u.kind == "approval") {
                format!("⏸ {step} waiting for approval: lifeboat approve {run_id} {step}  (or reject)")
            } else if let Some(u) = unit.filter(|u| u.kind == "manual") {
                let what = u
                    .with
                    .get("instructions")
                    .or_else(|| u.with.get("runbook"))
                    .and_then(serde_json::Value::as_str)
                    .and_then(|t| t.lines().next())
                    .unwrap_or("");
                format!("✋ {step} waiting for a person ({what}): lifeboat done {run_id} {step}  (or reject)")
            } else if *attempt > 1 {
                format!("▶ {step} started (attempt {attempt})")
            } else {
                format!("▶ {step} started")
            }
        }
        Event::StepSucceeded { step, .. } => format!("✔ {step}"),
        Event::StepFailed {
            step,
            error,
            retry_in_ms: Some(ms),
            ..
        } => format!(
            "↻ {step} failed, retrying in {}: {error}",
            crate::plan::duration::format(Duration::from_millis(*ms))
        ),
        Event::StepFailed { step, error, .. } => format!("✘ {step} failed: {error}"),
        Event::StepSkipped { step, reason } => format!("↷ {step} skipped: {reason}"),
        Event::RollbackStarted { reason } => format!("⟲ rolling back: {reason}"),
        Event::CompensationStarted { step, .. } => format!("⟲ compensating {step}"),
        Event::CompensationSucceeded { step, .. } => format!("✔ compensated {step}"),
        Event::CompensationFailed { step, error, .. } => format!("✘ compensation of {step} failed: {error}"),
        Event::AbortRequested { by, .. } => format!("■ abort requested by {by}"),
        Event::GuardBreached { guard, error, failures } => format!("⚠ guard {guard} breached after {failures} failed checks: {error}"),
        Event::RunResumed { rerun, .. } if rerun.is_empty() => "resumed".to_owned(),
        Event::RunResumed { rerun, .. } => format!("resumed; running again: {}", rerun.join(", ")),
        Event::RunFinished { .. } | Event::RunCreated { .. } => return None,
    };
    Some((event.step().unwrap_or("").to_owned(), line))
}

async fn plain(mut rx: mpsc::UnboundedReceiver<Notice>) {
    let mut plan: Option<(Arc<CompiledPlan>, String)> = None;
    while let Some(notice) = rx.recv().await {
        match notice {
            Notice::Begin { run_id, plan: p, resumed } => {
                eprintln!("{} run {run_id} of plan {}", if resumed { "resuming" } else { "starting" }, p.name);
                plan = Some((p, run_id));
            }
            Notice::Event { at, event } => {
                if let Some((p, run_id)) = &plan
                    && let Some((_, line)) = describe(p, run_id, &event)
                {
                    eprintln!("{} {line}", at.format("%H:%M:%S%.3f"));
                }
            }
        }
    }
}

async fn fancy(mut rx: mpsc::UnboundedReceiver<Notice>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let spinner_style = ProgressStyle::with_template("  {spinner:.cyan} {msg} {elapsed:.dim}").expect("valid template");
    let mut overall: Option<ProgressBar> = None;
    let mut running: HashMap<String, ProgressBar> = HashMap::new();
    let mut plan: Option<(Arc<CompiledPlan>, String)> = None;
    while let Some(notice) = rx.recv().await {
        match notice {
            Notice::Begin { run_id, plan: p, resumed } => {
                let total = p
                    .units
                    .iter()
                    .filter(|u| u.role != Role::Compensation { of: 0 } && !matches!(u.role, Role::Compensation { .. }))
                    .count() as u64;
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} [{bar:30.green/dim}] {pos}/{len} steps {elapsed}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("{} {run_id}", if resumed { "resuming" } else { "run" }));
                overall = Some(bar);
                plan = Some((p, run_id));
            }
            Notice::Event { event, .. } => {
                let Some((p, run_id)) = &plan else { continue };
                let Some((step, line)) = describe(p, run_id, &event) else {
                    continue;
                };
                match &event {
                    Event::StepStarted { .. } | Event::CompensationStarted { .. } => {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(spinner_style.clone());
                        bar.set_message(line.trim_start_matches("▶ ").replacen(" started", "", 1));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        if let Some(old) = running.insert(step, bar) {
                            old.finish_and_clear();
                        }
                    }
                    _ => {
                        if let Some(bar) = running.remove(&step) {
                            bar.finish_and_clear();
                            multi.remove(&bar);
                        }
                        let _ = multi.println(format!("  {line}"));
                        let done = matches!(
                            event,
                            Event::StepSucceeded { .. } | Event::StepSkipped { .. } | Event::StepFailed { retry_in_ms: None, .. }
                        );
                        if done && let Some(o) = &overall {
                            o.inc(1);
                        }
                    }
                }
            }
        }
    }
    for bar in running.values() {
        bar.finish_and_clear();
    }
    if let Some(o) = overall {
        o.finish();
    }
}

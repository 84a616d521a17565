//! `lifeboat run|resume|abort|approve|reject|done`.

use super::plan_cmd::{load_and_compile, render_param_errors};
use super::{actor, exit, invalid, open_journal, view};
use crate::engine::runner::{self, NewRun, RunOptions, RunReport};
use crate::journal::{DecisionKind, RunStatus};
use crate::plan::{self, compiled::Role, expr::Evaluated, params, template};
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The plan file.
    plan: String,
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = params::parse_assignment)]
    params: Vec<(String, String)>,
    /// Print the waves of steps with resolved options; touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// If the plan's lock is held, wait for it instead of exiting with status 3.
    #[arg(long)]
    wait: bool,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run id (or a unique prefix of it).
    run: String,
    #[arg(long)]
    wait: bool,
    /// Steps that were running when the run was interrupted started processes on another
    /// host, and you made sure they are gone: resume anyway (this host cannot see them).
    #[arg(long)]
    remote_processes_stopped: bool,
}

#[derive(Args, Debug)]
pub struct AbortArgs {
    run: String,
    /// Also compensate completed steps, in reverse order.
    #[arg(long)]
    rollback: bool,
    #[arg(long)]
    reason: Option<String>,
    /// Who is aborting (default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// Return at once instead of waiting for the run to stop.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args, Debug)]
pub struct DecisionArgs {
    run: String,
    /// The approval step's id.
    step: String,
    #[arg(long)]
    comment: Option<String>,
    /// Who decides (default: $USER).
    #[arg(long)]
    by: Option<String>,
}

pub async fn run(state: &str, args: RunArgs) -> anyhow::Result<u8> {
    match start_run(state, args).await? {
        Some(run_id) => {
            let journal = open_journal(state).await?;
            let row = journal.run(&run_id).await?;
            Ok(if row.status == RunStatus::Succeeded {
                exit::SUCCESS
            } else {
                exit::RUN_FAILED
            })
        }
        None => Ok(exit::SUCCESS),
    }
}

/// Compiles and runs a plan with the live view; the run's id, or `None` for a dry run.
pub async fn start_run(state: &str, args: RunArgs) -> anyhow::Result<Option<String>> {
    let given: BTreeMap<String, String> = args.params.into_iter().collect();
    let compiled = load_and_compile(&args.plan, None).map_err(invalid)?;
    let resolved = params::resolve(&compiled, &given).map_err(|e| invalid(render_param_errors(&args.plan, &e).trim_end().to_owned()))?;
    if args.dry_run {
        out!("{}", dry_run(&compiled, &resolved));
        return Ok(None);
    }
    let source = std::fs::read_to_string(&args.plan)?;
    let journal = open_journal(state).await?;
    let (options, view) = view::start();
    let new = NewRun {
        plan_file: args.plan.clone(),
        plan_source: source,
        plan: Arc::new(compiled),
        params: resolved,
    };
    let result = runner::start(
        &journal,
        new,
        &RunOptions {
            wait_for_lock: args.wait,
            ..options
        },
    )
    .await;
    let report = report_end(result, view).await?;
    Ok(Some(report.run_id))
}

pub async fn resume(state: &str, args: ResumeArgs) -> anyhow::Result<u8> {
    let journal = open_journal(state).await?;
    let (options, view) = view::start();
    let result = runner::resume(
        &journal,
        &args.run,
        None,
        &RunOptions {
            wait_for_lock: args.wait,
            remote_processes_stopped: args.remote_processes_stopped,
            ..options
        },
    )
    .await;
    finish(result, view).await
}

pub(super) async fn finish(result: Result<RunReport, runner::EngineError>, view: view::ViewHandle) -> anyhow::Result<u8> {
    let report = report_end(result, view).await?;
    Ok(if report.status == RunStatus::Succeeded {
        exit::SUCCESS
    } else {
        exit::RUN_FAILED
    })
}

async fn report_end(result: Result<RunReport, runner::EngineError>, view: view::ViewHandle) -> anyhow::Result<RunReport> {
    view.finish().await;
    let report = result?;
    let reason = report.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
    outln!("run {} {}{reason}", report.run_id, report.status.as_str());
    Ok(report)
}

pub async fn abort(state: &str, args: AbortArgs) -> anyhow::Result<u8> {
    let journal = open_journal(state).await?;
    let row = journal.find_run(&args.run).await?;
    if row.status != RunStatus::Running {
        return Err(invalid(format!(
            "run {} already finished ({}); nothing to abort",
            row.id,
            row.status.as_str()
        )));
    }
    let by = actor(args.by);
    if row.is_interrupted() {
        // Nobody is driving the run: drive it to its end ourselves, so `finally` runs.
        eprintln!("run {} is interrupted; stopping it here and running its finally steps", row.id);
        let (options, view) = view::start();
        let result = runner::resume(&journal, &row.id, Some((by, args.reason, args.rollback)), &options).await;
        return finish(result, view).await;
    }
    let mode = args.rollback.then_some("rollback");
    journal.post_command(&row.id, "abort", mode, &by, args.reason.as_deref()).await?;
    outln!(
        "abort requested for run {} (owner pid {} on {})",
        row.id,
        row.owner.pid,
        row.owner.host
    );
    if args.no_wait {
        return Ok(exit::SUCCESS);
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = journal.run(&row.id).await?;
        if now.status != RunStatus::Running {
            outln!("run {} {}", now.id, now.status.as_str());
            return Ok(exit::SUCCESS);
        }
        if now.is_interrupted() {
            outln!(
                "run {} is interrupted (its process died); `lifeboat abort {}` again stops it here",
                now.id,
                now.id
            );
            return Ok(exit::RUN_FAILED);
        }
    }
}

/// `verb` is the command the person typed: `approve`, `reject` or `done`.
pub async fn decide(state: &str, args: DecisionArgs, kind: DecisionKind, verb: &str) -> anyhow::Result<u8> {
    let journal = open_journal(state).await?;
    let (run_state, _, row) = runner::load(&journal, &args.run).await?;
    let Some(i) = run_state.plan.unit_index(&args.step) else {
        return Err(invalid(format!("run {} has no step `{}`", row.id, args.step)));
    };
    let unit = &run_state.plan.units[i];
    // Approvals are approved or rejected; manual steps are done or rejected (not done).
    let allowed_field = match (unit.kind.as_str(), verb) {
        ("approval", "approve" | "reject") => "approvers",
        ("manual", "done" | "reject") => "by",
        ("approval", _) => {
            return Err(invalid(format!(
                "step `{}` is an approval: `lifeboat approve` or `reject` it",
                args.step
            )));
        }
        ("manual", _) => {
            return Err(invalid(format!(
                "step `{}` is a manual step: `lifeboat done` or `reject` it",
                args.step
            )));
        }
        (other, _) => {
            return Err(invalid(format!(
                "step `{}` is a `{other}` step: only `approval` and `manual` steps wait for a person",
                args.step
            )));
        }
    };
    if row.status != RunStatus::Running {
        return Err(invalid(format!("run {} already finished ({})", row.id, row.status.as_str())));
    }
    let status = &run_state.units[i].status;
    if !matches!(status, crate::engine::state::UnitStatus::Running { .. }) {
        return Err(invalid(format!(
            "step `{}` is not waiting for a person (it is {})",
            args.step,
            status.label()
        )));
    }
    let by = actor(args.by);
    let approvers: Vec<String> = unit
        .with
        .get(allowed_field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if !approvers.is_empty() && !approvers.contains(&by) {
        return Err(invalid(format!(
            "{by} may not decide step `{}`; approvers: {}",
            args.step,
            approvers.join(", ")
        )));
    }
    // Only a decision by someone allowed to decide counts (another writer may have
    // posted one by someone else; the step passes over it).
    let counted = journal
        .decisions_for(&row.id, &args.step)
        .await?
        .into_iter()
        .find(|d| approvers.is_empty() || approvers.contains(&d.by));
    if let Some(existing) = counted {
        return Err(invalid(format!(
            "step `{}` was already decided ({} by {})",
            args.step,
            existing.kind.as_str(),
            existing.by
        )));
    }
    journal
        .post_command(&row.id, kind.as_str(), Some(&args.step), &by, args.comment.as_deref())
        .await?;
    outln!(
        "{} step `{}` of run {} as {by}",
        match verb {
            "done" => "marked done",
            _ if kind == DecisionKind::Approve => "approved",
            _ => "rejected",
        },
        args.step,
        row.id
    );
    Ok(exit::SUCCESS)
}

/// A scope for `--dry-run`: params are real, step outputs and secrets are shown as names.
struct DryRunScope<'a> {
    params: &'a BTreeMap<String, Value>,
    plan: &'a str,
}

impl plan::expr::Scope for DryRunScope<'_> {
    fn lookup(&self, path: &[String]) -> Result<Evaluated, String> {
        let value = match path[0].as_str() {
            "params" => self.params.get(&path[1]).cloned().unwrap_or(Value::Null),
            "run" if path[1] == "plan" => Value::String(self.plan.to_owned()),
            "env" => Value::String(match std::env::var(&path[1]) {
                Ok(_) => format!("<env.{} (set, hidden)>", path[1]),
                Err(_) => format!("<env.{} NOT SET>", path[1]),
            }),
            _ => Value::String(format!("<{}>", path.join("."))),
        };
        Ok(Evaluated { value, secret: false })
    }
}

fn dry_run(compiled: &plan::CompiledPlan, params: &BTreeMap<String, Value>) -> String {
    let scope = DryRunScope {
        params,
        plan: &compiled.name,
    };
    let mut out = format!("plan {} (dry run: nothing is executed or recorded)\n", compiled.name);
    if !params.is_empty() {
        out.push_str("params:\n");
        for (k, v) in params {
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    for (role, title) in [(Role::Main, "steps"), (Role::Finally, "finally")] {
        for (n, wave) in plan::graph::waves(compiled, role).iter().enumerate() {
            out.push_str(&format!("{title} wave {}:\n", n + 1));
            for &i in wave {
                let unit = &compiled.units[i];
                let when = unit.when.as_ref().map(|(s, _)| format!(" when {s}")).unwrap_or_default();
                out.push_str(&format!("  - {} [{}]{when}\n", unit.id, unit.kind));
                match template::render_value(&Value::Object(unit.with.clone()), &scope) {
                    Ok(v) => {
                        let text = serde_json::to_string_pretty(&v.value).unwrap_or_default();
                        for line in text.lines() {
                            out.push_str(&format!("      {line}\n"));
                        }
                    }
                    Err(e) => out.push_str(&format!("      (cannot render options: {e})\n")),
                }
            }
        }
    }
    out
}

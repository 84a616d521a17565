//! `lifeboat runs` and `lifeboat runs show RUN`: status views derived from the journal.

use super::{exit, open_journal};
use crate::engine::runner;
use crate::engine::state::{RunState, UnitStatus};
use crate::journal::RunRow;
use crate::plan::compiled::Role;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    /// Only runs of this plan.
    #[arg(long)]
    plan: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// `text` (a table) or `json` (one object per run, newest first).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Subcommand, Debug)]
enum RunsCommand {
    /// Show one run, step by step.
    Show {
        run: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Measure a finished run as a drill and write reports (*.html, *.md, *.json, *.junit.xml).
    Report {
        run: String,
        #[arg(long = "report", value_name = "PATH")]
        reports: Vec<std::path::PathBuf>,
    },
    /// RTO/RPO history of a plan's finished runs, with p50/p95/max.
    Trend {
        /// The plan's name (metadata.name).
        plan: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

pub async fn run(state: &str, args: RunsArgs) -> anyhow::Result<u8> {
    let journal = open_journal(state).await?;
    match args.command {
        None => {
            let rows = journal.runs(args.plan.as_deref(), args.limit).await?;
            if let Output::Json = args.output {
                let runs: Vec<RunSummary> = rows.iter().map(RunSummary::new).collect();
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(exit::SUCCESS);
            }
            if rows.is_empty() {
                println!("no runs yet in {}", journal.url_for_display);
                return Ok(exit::SUCCESS);
            }
            println!("{:<22} {:<28} {:<12} {:<20} {:>10}", "RUN", "PLAN", "STATUS", "STARTED", "DURATION");
            for r in rows {
                println!(
                    "{:<22} {:<28} {:<12} {:<20} {:>10}",
                    r.id,
                    r.plan_name,
                    r.display_status(),
                    r.created_at.format("%Y-%m-%d %H:%M:%S"),
                    duration(&r)
                );
            }
            Ok(exit::SUCCESS)
        }
        Some(RunsCommand::Report { run, reports }) => {
            for path in &reports {
                crate::drill::report::Format::for_path(path).map_err(super::invalid)?;
            }
            let m = crate::drill::measure::measure(&journal, &run).await?;
            print!("{}", super::drill_cmd::summary(&m));
            for path in &reports {
                crate::drill::report::write(&m, path).map_err(anyhow::Error::msg)?;
                println!("report: {}", path.display());
            }
            Ok(if m.passed { exit::SUCCESS } else { exit::RUN_FAILED })
        }
        Some(RunsCommand::Trend { plan, output }) => {
            let rows = journal.runs(Some(&plan), args.limit.max(100)).await?;
            let mut measured = Vec::new();
            for row in rows.iter().rev().filter(|r| r.finished_at.is_some()) {
                match crate::drill::measure::measure(&journal, &row.id).await {
                    Ok(m) => measured.push(m),
                    Err(e) => tracing::warn!(run = %row.id, error = %e, "cannot measure run"),
                }
            }
            if measured.is_empty() {
                return Err(super::invalid(format!(
                    "no finished runs of plan `{plan}` in {}; run `lifeboat drill` first (the name is metadata.name)",
                    journal.url_for_display
                )));
            }
            let summary = crate::drill::trend::summarize(&measured);
            match output {
                Output::Json => {
                    let runs: Vec<serde_json::Value> = measured
                        .iter()
                        .map(|m| serde_json::json!({ "run_id": m.run_id, "started_at": m.started_at, "passed": m.passed, "rto_ms": m.rto_ms, "rpo_ms": m.rpo_ms, "rows_lost": m.rows_lost }))
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "plan": plan, "runs": runs, "summary": summary }))?
                    );
                }
                Output::Text => print!("{}", crate::drill::trend::render_text(&plan, &measured, &summary)),
            }
            Ok(exit::SUCCESS)
        }
        Some(RunsCommand::Show { run, output }) => {
            let (state, _, row) = runner::load(&journal, &run).await?;
            let view = RunView::new(&state, &row);
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&view)?),
                Output::Text => print!("{}", view.text()),
            }
            Ok(exit::SUCCESS)
        }
    }
}

fn duration(r: &RunRow) -> String {
    let end = r.finished_at.unwrap_or_else(chrono::Utc::now);
    let d = (end - r.created_at).to_std().unwrap_or_default();
    crate::plan::duration::format(std::time::Duration::from_millis(d.as_millis() as u64))
}

/// One run in `runs --output json` (version 1): an API, not the journal schema.
#[derive(Serialize)]
struct RunSummary {
    version: u32,
    id: String,
    plan: String,
    /// `running`, `interrupted` (its owner is gone: `lifeboat resume`), `succeeded`, …
    status: &'static str,
    created_at: String,
    finished_at: Option<String>,
    duration_ms: i64,
    owner: String,
    lock: Option<String>,
}

impl RunSummary {
    fn new(r: &RunRow) -> Self {
        let end = r.finished_at.unwrap_or_else(chrono::Utc::now);
        RunSummary {
            version: 1,
            id: r.id.clone(),
            plan: r.plan_name.clone(),
            status: r.display_status(),
            created_at: r.created_at.to_rfc3339(),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()),
            duration_ms: (end - r.created_at).num_milliseconds().max(0),
            owner: format!("pid {} on {}", r.owner.pid, r.owner.host),
            lock: r.lock_name.clone(),
        }
    }
}

/// The `runs show --output json` document (version 1): an API, not the journal schema.
#[derive(Serialize)]
pub struct RunView {
    version: u32,
    id: String,
    plan: String,
    status: String,
    pub reason: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    owner: String,
    params: Map<String, Value>,
    steps: Vec<StepView>,
}

#[derive(Serialize)]
struct StepView {
    id: String,
    kind: String,
    role: &'static str,
    status: &'static str,
    attempts: u32,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    detail: Option<String>,
    outputs: Option<Map<String, Value>>,
}

impl RunView {
    pub fn new(state: &RunState, row: &RunRow) -> Self {
        let steps = state
            .plan
            .units
            .iter()
            .enumerate()
            .filter(|(i, u)| !matches!(u.role, Role::Compensation { .. }) || state.units[*i].attempts > 0)
            .map(|(i, u)| {
                let s = &state.units[i];
                let (detail, outputs) = match &s.status {
                    UnitStatus::Succeeded { outputs, .. } => (None, Some(outputs.clone())),
                    UnitStatus::Failed { error, .. } => (Some(error.clone()), None),
                    UnitStatus::Backoff { error, until, .. } => {
                        (Some(format!("{error} (next attempt at {})", until.format("%H:%M:%S"))), None)
                    }
                    UnitStatus::Skipped { reason } => (Some(reason.clone()), None),
                    UnitStatus::Running { .. } if u.kind == "approval" => {
                        (Some(format!("waiting: lifeboat approve {} {}", state.run_id, u.id)), None)
                    }
                    UnitStatus::Running { .. } if u.kind == "manual" => {
                        (Some(format!("waiting for a person: lifeboat done {} {}", state.run_id, u.id)), None)
                    }
                    _ => (None, None),
                };
                StepView {
                    id: u.id.clone(),
                    kind: u.kind.clone(),
                    role: match u.role {
                        Role::Main => "step",
                        Role::Finally => "finally",
                        Role::Compensation { .. } => "compensation",
                    },
                    status: s.status.label(),
                    attempts: s.attempts,
                    started_at: s.started_at.map(|t| t.to_rfc3339()),
                    finished_at: s.finished_at.map(|t| t.to_rfc3339()),
                    duration_ms: s.started_at.zip(s.finished_at).map(|(a, b)| (b - a).num_milliseconds()),
                    detail,
                    outputs,
                }
            })
            .collect();
        RunView {
            version: 1,
            id: row.id.clone(),
            plan: row.plan_name.clone(),
            status: row.display_status().to_owned(),
            reason: state.finished.as_ref().and_then(|(_, r)| r.clone()),
            created_at: row.created_at.to_rfc3339(),
            finished_at: row.finished_at.map(|t| t.to_rfc3339()),
            owner: format!("pid {} on {}", row.owner.pid, row.owner.host),
            params: state.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            steps,
        }
    }

    fn text(&self) -> String {
        let mut out = format!("run {}  plan {}  status {}\n", self.id, self.plan, self.status);
        if let Some(r) = &self.reason {
            out.push_str(&format!("reason: {r}\n"));
        }
        out.push_str(&format!(
            "started {}  finished {}  owner {}\n\n",
            self.created_at,
            self.finished_at.as_deref().unwrap_or("-"),
            self.owner
        ));
        out.push_str(&format!(
            "{:<24} {:<10} {:<20} {:>8} {:>10}  {}\n",
            "STEP", "KIND", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"
        ));
        for s in &self.steps {
            let id = if s.role == "step" {
                s.id.clone()
            } else {
                format!("{} ({})", s.id, s.role)
            };
            let d = s
                .duration_ms
                .map(|ms| crate::plan::duration::format(std::time::Duration::from_millis(ms.max(0) as u64)))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "{:<24} {:<10} {:<20} {:>8} {:>10}  {}\n",
                id,
                s.kind,
                s.status,
                s.attempts,
                d,
                s.detail.as_deref().unwrap_or("")
            ));
        }
        out
    }
}

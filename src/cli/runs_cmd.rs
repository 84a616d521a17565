//! `lifeboat runs` and `lifeboat runs show RUN`: status views derived from the journal.

use super::{exit, open_journal};
use crate::engine::runner;
use crate::engine::view::RunView;
use crate::journal::RunRow;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

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
                outln!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(exit::SUCCESS);
            }
            if rows.is_empty() {
                outln!("no runs yet in {}", journal.url_for_display);
                return Ok(exit::SUCCESS);
            }
            outln!("{:<22} {:<28} {:<12} {:<20} {:>10}", "RUN", "PLAN", "STATUS", "STARTED", "DURATION");
            for r in rows {
                outln!(
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
            out!("{}", super::drill_cmd::summary(&m));
            for path in &reports {
                crate::drill::report::write(&m, path).map_err(anyhow::Error::msg)?;
                outln!("report: {}", path.display());
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
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "plan": plan, "runs": runs, "summary": summary }))?
                    );
                }
                Output::Text => out!("{}", crate::drill::trend::render_text(&plan, &measured, &summary)),
            }
            Ok(exit::SUCCESS)
        }
        Some(RunsCommand::Show { run, output }) => {
            let (state, _, row) = runner::load(&journal, &run).await?;
            let view = RunView::new(&state, &row);
            match output {
                Output::Json => outln!("{}", serde_json::to_string_pretty(&view)?),
                Output::Text => out!("{}", view.text()),
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

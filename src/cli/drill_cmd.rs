//! `lifeboat drill PLAN`: run a plan as a drill, measure it, write reports, and exit 0
//! only when every objective is met.

use super::run_cmd::{RunArgs, start_run};
use super::{exit, invalid, open_journal};
use crate::drill::measure::{Measurement, format_ms, measure};
use crate::drill::report::{self, Format};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DrillArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Write a report; the format follows the name: *.html, *.md, *.json, *.junit.xml.
    /// Repeat for several. Default: .lifeboat/reports/<run id>.html.
    #[arg(long = "report", value_name = "PATH")]
    reports: Vec<PathBuf>,
}

pub async fn run(state: &str, args: DrillArgs) -> anyhow::Result<u8> {
    // Bad report names fail before anything runs.
    for path in &args.reports {
        Format::for_path(path).map_err(invalid)?;
    }
    let Some(run_id) = start_run(state, args.run).await? else {
        return Ok(exit::SUCCESS);
    };
    let journal = open_journal(state).await?;
    let measurement = measure(&journal, &run_id).await?;
    out!("{}", summary(&measurement));
    let reports = if args.reports.is_empty() {
        vec![PathBuf::from(".lifeboat/reports").join(format!("{run_id}.html"))]
    } else {
        args.reports
    };
    let mut failed_reports = Vec::new();
    for path in &reports {
        match report::write(&measurement, path) {
            Ok(()) => outln!("report: {}", path.display()),
            Err(e) => failed_reports.push(e),
        }
    }
    if !failed_reports.is_empty() {
        anyhow::bail!("{}", failed_reports.join("\n"));
    }
    Ok(if measurement.passed { exit::SUCCESS } else { exit::RUN_FAILED })
}

/// The verdict block printed after a drill and by `lifeboat runs report`.
pub fn summary(m: &Measurement) -> String {
    let mut out = format!("\ndrill {} {}\n", m.plan, if m.passed { "PASSED" } else { "FAILED" });
    for o in &m.objectives {
        out += &format!(
            "  {} {:<14} {:>12}  (target {}){}\n",
            if o.met { "✔" } else { "✘" },
            o.name,
            o.measured,
            o.target,
            o.note.as_ref().map(|n| format!(" — {n}")).unwrap_or_default()
        );
    }
    if m.objectives.len() == 1 {
        // Only "run completed": say what was measured anyway.
        if let Some(rto) = m.rto_ms {
            out += &format!("  RTO {}\n", format_ms(rto));
        }
        if let Some(rpo) = m.rpo_ms {
            out += &format!("  RPO {}\n", format_ms(rpo));
        }
    }
    if let Some(n) = m.rows_lost.filter(|n| *n > 0) {
        out += &format!("  rows lost: {n}, canary seqs {:?}\n", m.lost_seqs);
    }
    for g in &m.guard_breaches {
        out += &format!("  guard {} fired: {}\n", g.guard, g.error);
    }
    out
}

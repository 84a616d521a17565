//! `lifeboat runbook check` (the runbooks' commands parsed against this CLI, the plans and
//! names they mention checked) and `lifeboat runbook render` (a runbook from a plan). See
//! `crate::runbook`.

use super::{Cli, exit, invalid};
use crate::runbook::{self, Runbook};
use clap::{CommandFactory, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum RunbookCommand {
    /// Check runbooks: every `lifeboat` command parses, every plan, param, step and plan name
    /// it mentions exists, every plan that asks for a runbook has one. Exit 2 on problems.
    Check {
        /// Runbook files or folders of them (default `runbooks`).
        paths: Vec<PathBuf>,
        /// Where plans that must have a runbook (annotation `lifeboat.dev/runbook: required`)
        /// are looked for.
        #[arg(long, default_value = "plans")]
        plans: PathBuf,
    },
    /// Write a runbook generated from a plan: purpose, objectives, how to run it, every step in
    /// order with what it does, approvals, what a failure does, resume and abort. `check`
    /// reports it once it no longer matches the plan.
    Render {
        /// The plan file, as commands name it (from where lifeboat runs).
        plan: String,
        /// Write it here (default: print it, linking to the plan as from `runbooks/`).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Run the commands of one runbook section in order, journaled like a plan: each
    /// command's output recorded, stopping at the first that fails; `resume` continues it.
    Run {
        /// `runbooks/x.md#section-anchor`.
        section: String,
        /// Print the commands and the plan they become; run nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(state: &str, cmd: RunbookCommand) -> anyhow::Result<u8> {
    match cmd {
        RunbookCommand::Check { paths, plans } => check(paths, plans),
        RunbookCommand::Render { plan, to } => render(&plan, to.as_deref()),
        RunbookCommand::Run { section, dry_run } => run_section(state, &section, dry_run).await,
    }
}

async fn run_section(state: &str, reference: &str, dry_run: bool) -> anyhow::Result<u8> {
    let Some((file, anchor)) = reference.split_once('#') else {
        return Err(invalid(format!(
            "`{reference}`: name a section, e.g. runbooks/failover.md#promote-the-standby"
        )));
    };
    let source = std::fs::read_to_string(file).map_err(|e| invalid(format!("{file}: {e}")))?;
    let exe = std::env::current_exe()?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    // The commands' own lifeboat calls use this run's journal: they inherit LIFEBOAT_STATE,
    // or are given the path or URL; a URL with credentials is not written into the plan.
    let state_for_commands = if std::env::var_os("LIFEBOAT_STATE").is_some() {
        None
    } else if state.contains('@') {
        return Err(invalid(
            "the journal URL holds credentials: give it in LIFEBOAT_STATE, which the runbook's commands inherit",
        ));
    } else if state.contains("://") || state.starts_with("sqlite:") {
        Some(state.to_owned())
    } else {
        Some(std::path::absolute(state)?.display().to_string())
    };
    let procedure = runbook::procedure(file, &source, anchor, exe_dir, state_for_commands.as_deref()).map_err(invalid)?;
    if dry_run {
        outln!(
            "{reference}: {} commands, run in order as plan steps (dry run: nothing is executed)",
            procedure.commands.len()
        );
        for (n, command) in procedure.commands.iter().enumerate() {
            outln!("  cmd-{}: {command}", n + 1);
        }
        return Ok(exit::SUCCESS);
    }
    let plan = crate::plan::compile(reference, &procedure.plan_source, crate::steps::catalog())
        .map_err(|d| invalid(crate::plan::diagnostic::render_all(&d, &procedure.plan_source)))?;
    let journal = super::open_journal(state).await?;
    let (options, view) = super::view::start();
    let new = crate::engine::runner::NewRun {
        plan_file: reference.to_owned(),
        plan_source: procedure.plan_source,
        plan: std::sync::Arc::new(plan),
        params: Default::default(),
    };
    let result = crate::engine::runner::start(&journal, new, &options).await;
    super::run_cmd::finish(result, view).await
}

fn render(plan: &str, to: Option<&Path>) -> anyhow::Result<u8> {
    let compiled = super::plan_cmd::load_and_compile(plan, None).map_err(invalid)?;
    let folder = to
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("runbooks"));
    let link = relative(Path::new(plan), folder);
    let text = runbook::render(&compiled, plan, &link, crate::steps::catalog());
    match to {
        Some(path) => {
            std::fs::write(path, text)?;
            outln!("{}: rendered from {plan}", path.display());
        }
        None => out!("{text}"),
    }
    Ok(exit::SUCCESS)
}

/// `target` as seen from the folder `from` (both relative to here, or absolute).
fn relative(target: &Path, from: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (target, from) = (absolute(target), absolute(from));
    let common = target.components().zip(from.components()).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in from.components().skip(common) {
        out.push("..");
    }
    for c in target.components().skip(common) {
        out.push(c);
    }
    out.display().to_string()
}

fn check(paths: Vec<PathBuf>, plans: PathBuf) -> anyhow::Result<u8> {
    let paths = if paths.is_empty() { vec![PathBuf::from("runbooks")] } else { paths };
    let mut files = Vec::new();
    for path in &paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(invalid(format!("{}: no such runbook file or folder", path.display())));
        }
    }
    let mut output = String::new();
    let mut runbooks = Vec::new();
    let mut problems = 0;
    for file in &files {
        let shown = file.display().to_string();
        let source = std::fs::read_to_string(file)?;
        match Runbook::parse(&shown, &source) {
            Ok(r) => runbooks.push(r),
            Err(diagnostics) => {
                problems += diagnostics.len();
                for d in &diagnostics {
                    output.push_str(&d.render(&source));
                    output.push('\n');
                }
            }
        }
    }
    let diagnostics = runbook::check(&runbooks, &Cli::command(), Some(Path::new(&plans)), crate::steps::catalog());
    problems += diagnostics.len();
    for d in &diagnostics {
        let source = std::fs::read_to_string(&d.file).unwrap_or_default();
        output.push_str(&d.render(&source));
        output.push('\n');
    }
    for r in &runbooks {
        if !diagnostics.iter().any(|d| d.file == r.file) {
            outln!("{}: ok ({} commands, {} plans)", r.file, r.commands().count(), r.plans.len());
        }
    }
    if problems > 0 {
        eprint!("{output}");
        eprintln!("{problems} problem{} found", if problems == 1 { "" } else { "s" });
        return Ok(exit::INVALID_INPUT);
    }
    Ok(exit::SUCCESS)
}

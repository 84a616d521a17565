//! Runbooks: Markdown files whose front matter names the plans they cover and whose fenced
//! shell blocks hold real `lifeboat` commands.
//!
//! ```markdown
//! ---
//! plans: [../plans/quickstart.yaml]
//! ---
//! # Runbook: …
//! ```
//!
//! [`check`] keeps them true: every `lifeboat` command parses against the CLI's own
//! definition (handed in as a `clap::Command`, so this module does not depend on the CLI),
//! every plan file it names exists and compiles, every `--param` is declared by that plan,
//! every step id and plan name it mentions exists, and every plan that asks for a runbook
//! (`metadata.annotations["lifeboat.dev/runbook"]: required`) is covered by one. Problems are
//! diagnostics with `file:line`, like the plan compiler's.

mod commands;
mod procedure;
mod render;

pub use procedure::{Procedure, procedure};
pub use render::{RENDERED_FROM, render};

use crate::plan::catalog::KindCatalog;
use crate::plan::diagnostic::{Diagnostic, did_you_mean};
use crate::plan::yaml::{self, Pos};
use crate::plan::{CompiledPlan, compile};
use commands::{Invocation, ShellLine};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The annotation by which a plan asks to be covered by a runbook.
pub const RUNBOOK_ANNOTATION: &str = "lifeboat.dev/runbook";

/// A runbook as read from its file.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub file: String,
    pub source: String,
    /// The plans its front matter names, resolved against the runbook's folder, with the line.
    pub plans: Vec<(PathBuf, usize)>,
    /// The plan it was rendered from (as commands name it) with the front matter's link to
    /// it: a rendered runbook must stay what rendering that plan gives.
    pub rendered_from: Option<(String, String)>,
    /// The shell lines of its fenced blocks.
    lines: Vec<ShellLine>,
}

impl Runbook {
    /// Reads a runbook; a missing or malformed front matter is a diagnostic.
    pub fn parse(file: &str, source: &str) -> Result<Runbook, Vec<Diagnostic>> {
        let problem = |line: usize, message: String, help: &str| Diagnostic {
            file: file.to_owned(),
            pos: Pos { line, col: 1 },
            step: None,
            message,
            help: Some(help.to_owned()),
        };
        let front_help = "start the runbook with `---`, `plans: [../plans/<plan>.yaml]`, `---`";
        let mut lines = source.lines();
        if lines.next().map(str::trim_end) != Some("---") {
            return Err(vec![problem(
                1,
                "a runbook starts with front matter naming the plans it covers".into(),
                front_help,
            )]);
        }
        let Some(end) = source.lines().skip(1).position(|l| l.trim_end() == "---") else {
            return Err(vec![problem(1, "the front matter is not closed with `---`".into(), front_help)]);
        };
        let front: Vec<&str> = source.lines().skip(1).take(end).collect();
        let node = yaml::parse(&front.join("\n")).map_err(|e| vec![problem(e.pos.line + 1, e.message, front_help)])?;
        let Some(plans_node) = node.get("plans") else {
            return Err(vec![problem(1, "the front matter has no `plans:`".into(), front_help)]);
        };
        let folder = Path::new(file).parent().unwrap_or(Path::new("."));
        let rendered_from = node.get(RENDERED_FROM).and_then(|n| n.as_str()).map(str::to_owned);
        let first_link = plans_node.items().first().and_then(|n| n.as_str()).map(str::to_owned);
        let mut plans = Vec::new();
        for item in plans_node.items() {
            match item.as_str() {
                Some(path) => plans.push((folder.join(path), item.pos.line + 1)),
                None => return Err(vec![problem(item.pos.line + 1, "`plans` lists plan files".into(), front_help)]),
            }
        }
        Ok(Runbook {
            file: file.to_owned(),
            source: source.to_owned(),
            plans,
            rendered_from: rendered_from.zip(first_link),
            lines: commands::shell_lines(source),
        })
    }

    /// The `lifeboat` commands of the runbook, with their lines.
    pub fn commands(&self) -> impl Iterator<Item = (usize, &[String])> {
        self.lines.iter().filter_map(|l| l.lifeboat.as_deref().map(|argv| (l.line, argv)))
    }
}

/// Plans as `check` needs them: compiled once, by path.
struct Plans<'c> {
    catalog: &'c KindCatalog,
    compiled: BTreeMap<PathBuf, Result<CompiledPlan, usize>>,
}

impl Plans<'_> {
    /// The compiled plan at `path`, or the number of its errors (`None`: no such file).
    fn get(&mut self, path: &Path) -> Option<&Result<CompiledPlan, usize>> {
        let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if !self.compiled.contains_key(&key) {
            let source = std::fs::read_to_string(path).ok()?;
            let compiled = compile(&path.display().to_string(), &source, self.catalog).map_err(|d| d.len());
            self.compiled.insert(key.clone(), compiled);
        }
        self.compiled.get(&key)
    }
}

/// Checks `runbooks` against the CLI definition `cli` and the plans they name. `plans_dir`,
/// when given, is searched for plans that ask for a runbook.
pub fn check(runbooks: &[Runbook], cli: &clap::Command, plans_dir: Option<&Path>, catalog: &KindCatalog) -> Vec<Diagnostic> {
    let mut plans = Plans {
        catalog,
        compiled: BTreeMap::new(),
    };
    let mut out = Vec::new();
    let mut covered = BTreeSet::new();
    for runbook in runbooks {
        let problem = |line: usize, message: String, help: Option<String>| Diagnostic {
            file: runbook.file.clone(),
            pos: Pos { line, col: 1 },
            step: None,
            message,
            help,
        };
        // The plans it covers: their steps and names are what its commands may mention.
        let mut steps = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (path, line) in &runbook.plans {
            covered.insert(std::path::absolute(path).unwrap_or_else(|_| path.clone()));
            match plans.get(path) {
                None => out.push(problem(*line, format!("covered plan `{}` does not exist", path.display()), None)),
                Some(Err(errors)) => out.push(problem(
                    *line,
                    format!("covered plan `{}` does not compile ({errors} errors)", path.display()),
                    Some(format!("run `lifeboat plan validate {}`", path.display())),
                )),
                Some(Ok(plan)) => {
                    steps.extend(plan.units.iter().map(|u| u.id.clone()));
                    names.insert(plan.name.clone());
                    out.extend(
                        manual_sections(plan)
                            .into_iter()
                            .map(|(message, help)| problem(*line, message, help)),
                    );
                }
            }
        }
        if let Some((plan_path, link)) = &runbook.rendered_from {
            match plans.get(Path::new(plan_path)) {
                Some(Ok(plan)) => {
                    let fresh = render(plan, plan_path, link, catalog);
                    if fresh != runbook.source {
                        let line = fresh
                            .lines()
                            .zip(runbook.source.lines())
                            .position(|(a, b)| a != b)
                            .map_or_else(|| fresh.lines().count().min(runbook.source.lines().count()) + 1, |i| i + 1);
                        out.push(problem(
                            line,
                            format!("the runbook was rendered from `{plan_path}` and has drifted from it (first difference here)"),
                            Some(format!(
                                "render it again: `lifeboat runbook render {plan_path} --to {}`",
                                runbook.file
                            )),
                        ));
                    }
                }
                Some(Err(_)) => {} // reported with the covered plans
                None => out.push(problem(
                    1,
                    format!("it was rendered from `{plan_path}`, which does not exist"),
                    None,
                )),
            }
        }
        // Outputs the prose or the commands point at must belong to a covered plan's step.
        for (n, text) in runbook.source.lines().enumerate() {
            for step in step_references(text) {
                if !steps.contains(step) {
                    out.push(problem(
                        n + 1,
                        format!("`steps.{step}` names no step of a covered plan"),
                        did_you_mean(step, steps.iter().map(String::as_str)),
                    ));
                }
            }
        }
        let exported = commands::exported(&runbook.lines);
        let cli = commands::with_exported_env(cli.clone(), &exported);
        for (line, argv) in runbook.commands() {
            match commands::invocation(&cli, argv) {
                Err((message, help)) => out.push(problem(line, message, help)),
                Ok(invocation) => out.extend(
                    check_invocation(&invocation, &mut plans, &steps, &names)
                        .into_iter()
                        .map(|(message, help)| problem(line, message, help)),
                ),
            }
        }
    }
    if let Some(dir) = plans_dir {
        out.extend(uncovered(dir, &covered));
    }
    out
}

/// What a parsed command names that does not exist, as (message, help).
fn check_invocation(
    invocation: &Invocation,
    plans: &mut Plans,
    steps: &BTreeSet<String>,
    names: &BTreeSet<String>,
) -> Vec<(String, Option<String>)> {
    let mut problems = Vec::new();
    for file in &invocation.plan_files {
        if file.contains(['*', '?', '<', '$']) {
            continue; // a pattern or a placeholder, not one file
        }
        match plans.get(Path::new(file)) {
            None => problems.push((format!("plan file `{file}` does not exist"), None)),
            Some(Err(errors)) => problems.push((
                format!("plan `{file}` does not compile ({errors} errors)"),
                Some(format!("run `lifeboat plan validate {file}`")),
            )),
            Some(Ok(plan)) => {
                for param in &invocation.params {
                    if !plan.params.contains_key(param) {
                        let help = did_you_mean(param, plan.params.keys().map(String::as_str)).or_else(|| {
                            Some(format!(
                                "plan `{}` declares: {}",
                                plan.name,
                                plan.params.keys().cloned().collect::<Vec<_>>().join(", ")
                            ))
                        });
                        problems.push((format!("`--param {param}=…`: plan `{}` has no param `{param}`", plan.name), help));
                    }
                }
            }
        }
    }
    if let Some(step) = &invocation.step
        && !steps.contains(step)
    {
        problems.push((
            format!("no covered plan has a step `{step}`"),
            did_you_mean(step, steps.iter().map(String::as_str)).or(Some("steps are named by their `id`".into())),
        ));
    }
    if let Some(reference) = invocation.section.as_deref().filter(|r| !r.contains(['<', '$']))
        && let Some(problem) = missing_section(reference)
    {
        problems.push(problem);
    }
    if let Some(name) = &invocation.plan_name
        && !names.contains(name)
    {
        problems.push((
            format!("no covered plan is named `{name}`"),
            did_you_mean(name, names.iter().map(String::as_str)).or(Some("plans are named by `metadata.name`".into())),
        ));
    }
    problems
}

/// The step ids of `steps.<id>.outputs…` / `steps.<id>.outcome` references in a line.
fn step_references(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("steps.") {
        let after = &rest[at + "steps.".len()..];
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        let id_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        let id = &after[..id_len];
        let tail = &after[id_len..];
        if !preceded_by_word && !id.is_empty() && (tail.starts_with(".outputs") || tail.starts_with(".outcome")) {
            found.push(id);
        }
        rest = &after[id_len..];
    }
    found
}

/// The text of `file.md#anchor` (the whole file without an anchor), read from where lifeboat
/// runs; or why it cannot be had, with a hint.
pub fn read_section(reference: &str) -> Result<String, (String, Option<String>)> {
    let (file, wanted) = reference.split_once('#').unwrap_or((reference, ""));
    let source = std::fs::read_to_string(file).map_err(|e| (format!("`{reference}` cannot be read: {e}"), None))?;
    if wanted.is_empty() {
        return Ok(source);
    }
    section(&source, wanted).ok_or_else(|| {
        (
            format!("`{reference}` names no section of {file}"),
            did_you_mean(wanted, anchors(&source).iter().map(String::as_str)),
        )
    })
}

fn missing_section(reference: &str) -> Option<(String, Option<String>)> {
    read_section(reference).err()
}

/// `manual` steps of a covered plan whose runbook section does not exist (paths as the run
/// will read them: from where lifeboat runs).
fn manual_sections(plan: &CompiledPlan) -> Vec<(String, Option<String>)> {
    let mut problems = Vec::new();
    for unit in plan.units.iter().filter(|u| u.kind == "manual") {
        let Some(reference) = unit.with.get("runbook").and_then(serde_json::Value::as_str) else {
            continue;
        };
        if reference.contains("${{") {
            continue;
        }
        if let Some((why, help)) = missing_section(reference) {
            problems.push((
                format!("step `{}` of plan `{}` shows a runbook section: {why}", unit.id, plan.name),
                help,
            ));
        }
    }
    problems
}

/// Plans in `dir` that ask for a runbook and have none.
fn uncovered(dir: &Path, covered: &BTreeSet<PathBuf>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let Ok(source) = std::fs::read_to_string(&path) else { continue };
        let Ok(node) = yaml::parse(&source) else { continue };
        let wanted = node
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(RUNBOOK_ANNOTATION));
        if let Some(wanted) = wanted.filter(|w| w.as_str() == Some("required"))
            && !covered.contains(&std::path::absolute(&path).unwrap_or_else(|_| path.clone()))
        {
            out.push(Diagnostic {
                file: path.display().to_string(),
                pos: wanted.pos,
                step: None,
                message: "this plan asks for a runbook, and no runbook covers it".into(),
                help: Some("name it in a runbook's front matter `plans:`".into()),
            });
        }
    }
    out
}

/// The anchor of a heading as Markdown renderers make it: lower case, spaces to `-`,
/// punctuation dropped (`## 2. Restore a copy` → `2-restore-a-copy`).
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Headings of a Markdown source: (level, text, line index).
fn headings(source: &str) -> Vec<(usize, String, usize)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        let level = t.chars().take_while(|&c| c == '#').count();
        if !fenced && (1..=6).contains(&level) && t[level..].starts_with(' ') {
            out.push((level, t[level..].trim().to_owned(), i));
        }
    }
    out
}

/// Every section anchor of a Markdown source.
pub fn anchors(source: &str) -> Vec<String> {
    headings(source).into_iter().map(|(_, text, _)| anchor(&text)).collect()
}

/// The section under the heading whose anchor is `wanted`, heading included, up to the next
/// heading of the same or a higher level.
pub fn section(source: &str, wanted: &str) -> Option<String> {
    let all = headings(source);
    let at = all.iter().position(|(_, text, _)| anchor(text) == wanted)?;
    let (level, _, start) = all[at];
    let end = all[at + 1..].iter().find(|(l, _, _)| *l <= level).map(|(_, _, i)| *i);
    let lines: Vec<&str> = source.lines().collect();
    Some(lines[start..end.unwrap_or(lines.len())].join("\n").trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_runs_to_the_next_heading_of_its_level() {
        let source = "# Failover\nintro\n## 1. Call the DNS provider\nring them\n```sh\n# not a heading\n```\n### details\nmore\n## 2. Tell customers\npost\n";
        assert_eq!(
            anchors(source),
            ["failover", "1-call-the-dns-provider", "details", "2-tell-customers"]
        );
        let s = section(source, "1-call-the-dns-provider").unwrap();
        assert!(
            s.starts_with("## 1. Call the DNS provider\nring them") && s.ends_with("more"),
            "{s}"
        );
        assert_eq!(section(source, "2-tell-customers").unwrap(), "## 2. Tell customers\npost");
        assert!(section(source, "nope").is_none());
    }
}

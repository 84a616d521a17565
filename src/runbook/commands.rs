//! The shell lines of a runbook's fenced blocks, the `lifeboat` commands among them, and
//! what such a command names once the CLI's own definition has parsed it.

use std::collections::BTreeSet;

/// One logical line of a fenced shell block (continuations joined).
#[derive(Debug, Clone)]
pub(super) struct ShellLine {
    pub line: usize,
    /// The command as written (continuations joined, a `$ ` prompt removed).
    pub text: String,
    pub words: Vec<String>,
    /// The arguments after `lifeboat` when the line runs lifeboat.
    pub lifeboat: Option<Vec<String>>,
}

/// Info strings of the fenced blocks that hold commands.
const SHELL_BLOCKS: &[&str] = &["", "sh", "bash", "shell", "console", "lifeboat"];

pub(super) fn shell_lines(source: &str) -> Vec<ShellLine> {
    let mut out = Vec::new();
    let mut in_shell: Option<bool> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in source.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_shell = match in_shell {
                Some(_) => None,
                None => Some(SHELL_BLOCKS.contains(&trimmed[3..].split_whitespace().next().unwrap_or(""))),
            };
            continue;
        }
        if in_shell != Some(true) {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        match raw.trim_end().strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                text.push(' ');
                pending = Some((start, text));
            }
            None => {
                text.push_str(raw);
                out.extend(shell_line(start, &text));
            }
        }
    }
    out
}

fn shell_line(line: usize, text: &str) -> Option<ShellLine> {
    let text = text.trim();
    let text = text.strip_prefix("$ ").unwrap_or(text);
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut words = shlex::split(text).unwrap_or_else(|| text.split_whitespace().map(str::to_owned).collect());
    if let Some(comment) = words.iter().position(|w| w.starts_with('#')) {
        words.truncate(comment);
    }
    let lifeboat = lifeboat_arguments(&words);
    Some(ShellLine {
        line,
        text: text.to_owned(),
        words,
        lifeboat,
    })
}

/// `lifeboat …`, `sudo target/release/lifeboat …`, `VAR=x lifeboat …`,
/// `cargo run --release -- …`: the arguments lifeboat gets.
fn lifeboat_arguments(words: &[String]) -> Option<Vec<String>> {
    let is_assignment = |w: &String| {
        w.split_once('=')
            .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    let rest: Vec<&String> = words
        .iter()
        .skip_while(|w| is_assignment(w) || *w == "sudo" || *w == "env")
        .collect();
    let program = rest.first()?;
    if *program == "lifeboat" || program.ends_with("/lifeboat") {
        return Some(rest[1..].iter().map(|w| (*w).clone()).collect());
    }
    if *program == "cargo" && rest.get(1).is_some_and(|w| *w == "run") {
        let dashes = rest.iter().position(|w| *w == "--")?;
        // `cargo run -p kubesim -- …` runs another of the workspace's programs.
        let other_package = rest[..dashes]
            .windows(2)
            .any(|w| (w[0] == "-p" || w[0] == "--package") && w[1] != "lifeboat")
            || rest[..dashes]
                .iter()
                .any(|w| w.starts_with("--package=") && *w != "--package=lifeboat")
            || rest[..dashes]
                .iter()
                .any(|w| *w == "--bin" || w.starts_with("--bin=") || *w == "--example");
        if other_package {
            return None;
        }
        return Some(rest[dashes + 1..].iter().map(|w| (*w).clone()).collect());
    }
    None
}

/// Environment variables the runbook exports (`export NAME=…`): flags that read them are
/// given by them.
pub(super) fn exported(lines: &[ShellLine]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l.words.first().is_some_and(|w| w == "export"))
        .flat_map(|l| l.words[1..].iter().filter_map(|w| w.split_once('=').map(|(k, _)| k.to_owned())))
        .collect()
}

/// The CLI definition where flags that read an exported variable are not required.
pub(super) fn with_exported_env(mut cli: clap::Command, exported: &BTreeSet<String>) -> clap::Command {
    let relaxed: Vec<clap::Id> = cli
        .get_arguments()
        .filter(|a| a.get_env().and_then(|e| e.to_str()).is_some_and(|e| exported.contains(e)))
        .map(|a| a.get_id().clone())
        .collect();
    for id in relaxed {
        cli = cli.mut_arg(id, |a| a.required(false));
    }
    let subcommands: Vec<String> = cli.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    for name in subcommands {
        cli = cli.mut_subcommand(name, |s| with_exported_env(s, exported));
    }
    cli
}

/// What a parsed `lifeboat` command names.
#[derive(Debug, Clone, Default)]
pub(super) struct Invocation {
    pub plan_files: Vec<String>,
    pub params: Vec<String>,
    pub step: Option<String>,
    pub plan_name: Option<String>,
    /// A runbook section it runs (`runbook run file.md#anchor`).
    pub section: Option<String>,
}

/// Parses `argv` as the CLI would; the error is clap's own message, with its tip if it has one.
pub(super) fn invocation(cli: &clap::Command, argv: &[String]) -> Result<Invocation, (String, Option<String>)> {
    use clap::error::ErrorKind;
    let matches = match cli
        .clone()
        .try_get_matches_from(std::iter::once("lifeboat".to_owned()).chain(argv.iter().cloned()))
    {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => return Ok(Invocation::default()),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
            let tip = text.lines().find_map(|l| l.trim().strip_prefix("tip: ")).map(str::to_owned);
            let command: Vec<&str> = argv
                .iter()
                .map(String::as_str)
                .take_while(|w| !w.starts_with('-'))
                .take(2)
                .collect();
            let help = tip.unwrap_or_else(|| format!("see `lifeboat {} --help`", command.join(" ")));
            return Err((first, Some(help)));
        }
    };
    let mut found = Invocation::default();
    let one = |m: &clap::ArgMatches, id: &str| m.try_get_one::<String>(id).ok().flatten().cloned();
    let params = |m: &clap::ArgMatches| -> Vec<String> {
        m.try_get_many::<(String, String)>("params")
            .ok()
            .flatten()
            .map(|ps| ps.map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    };
    match matches.subcommand() {
        Some(("run" | "drill", m)) => {
            found.plan_files.extend(one(m, "plan"));
            found.params = params(m);
        }
        Some(("plan", m)) => match m.subcommand() {
            Some(("validate", v)) => {
                found.plan_files = v
                    .try_get_many::<String>("files")
                    .ok()
                    .flatten()
                    .map(|f| f.cloned().collect())
                    .unwrap_or_default();
                found.params = params(v);
            }
            Some(("graph", g)) => found.plan_files.extend(one(g, "file")),
            _ => {}
        },
        Some(("approve" | "reject" | "done", m)) => found.step = one(m, "step"),
        Some(("runbook", m)) => {
            if let Some(("run", r)) = m.subcommand() {
                found.section = one(r, "section");
            }
        }
        Some(("runs", m)) => {
            found.plan_name = one(m, "plan");
            if let Some(("trend", t)) = m.subcommand() {
                found.plan_name = one(t, "plan");
            }
        }
        _ => {}
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_in_shell_blocks_only_with_continuations_and_comments() {
        let source = "text `lifeboat run x`\n```sh\nexport LIFEBOAT_REPO=file:///r\nlifeboat pg restore --pgdata /srv \\\n  --start   # a comment\n$ sudo target/release/lifeboat drill plans/p.yaml\ncargo run --release -- drill plans/q.yaml\ncargo run -p kubesim -- --kubeconfig k\npg_ctl stop\n```\n```yaml\nlifeboat: no\n```\n";
        let lines = shell_lines(source);
        let commands: Vec<(usize, Vec<String>)> = lines.iter().filter_map(|l| l.lifeboat.clone().map(|a| (l.line, a))).collect();
        assert_eq!(
            commands,
            vec![
                (
                    4,
                    vec!["pg".into(), "restore".into(), "--pgdata".into(), "/srv".into(), "--start".into()]
                ),
                (6, vec!["drill".into(), "plans/p.yaml".into()]),
                (7, vec!["drill".into(), "plans/q.yaml".into()]),
            ]
        );
        assert_eq!(exported(&lines), BTreeSet::from(["LIFEBOAT_REPO".to_owned()]));
    }
}

//! The layering rules of docs/ARCHITECTURE.md, checked on the sources so that they cannot
//! drift: a broken rule fails the build with the file and line that broke it.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether `code` holds `needle` as a whole token: `Journal` is found in `x: Journal`, not in
/// `ToolkitJournal`.
fn contains_token(code: &str, needle: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + needle.len()..].chars().next();
        let starts_word = needle.starts_with(ident);
        let ends_word = needle.ends_with(ident);
        (!starts_word || !before.is_some_and(ident)) && (!ends_word || !after.is_some_and(ident))
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Lines of the files under `dir` (code only, not comments) that contain any of `needles`,
/// except in `allowed` files.
fn offending(dir: &str, needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(&root().join(dir)) {
        let shown = file.strip_prefix(root()).unwrap().display().to_string();
        if allowed.contains(&shown.as_str()) {
            continue;
        }
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if needles.iter().any(|needle| contains_token(code, needle)) {
                found.push(format!("{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn step_adapters_reach_the_journal_only_through_their_run_handle() {
    let found = offending(
        "src/steps",
        &["Journal", "put_records", "SideRecord", "crate::journal::{"],
        &["src/steps/context.rs"],
    );
    assert!(
        found.is_empty(),
        "adapters must write through the RunHandle (masked), not the journal:\n{}",
        found.join("\n")
    );
}

#[test]
fn steps_do_not_depend_on_the_engine_and_the_plan_language_on_neither() {
    let steps = offending("src/steps", &["crate::engine"], &[]);
    assert!(
        steps.is_empty(),
        "the engine drives the steps, not the other way round:\n{}",
        steps.join("\n")
    );
    let plan = offending("src/plan", &["crate::steps", "crate::engine", "crate::journal"], &[]);
    assert!(
        plan.is_empty(),
        "the plan language knows nothing of steps, engine or journal:\n{}",
        plan.join("\n")
    );
    let runbook = offending("src/runbook", &["crate::cli", "crate::engine", "crate::journal"], &[]);
    assert!(
        runbook.is_empty(),
        "runbook checks get the CLI definition handed in:\n{}",
        runbook.join("\n")
    );
}

#[test]
fn domain_crates_know_nothing_of_the_engine_and_return_typed_errors() {
    for krate in ["backup", "failover", "validation"] {
        let found = offending(
            &format!("{krate}/src"),
            &["lifeboat::", "anyhow", "CompiledPlan", "StepContext"],
            &[],
        );
        assert!(
            found.is_empty(),
            "{krate}/ must not know the engine or use anyhow:\n{}",
            found.join("\n")
        );
        let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        assert!(
            !manifest.contains("anyhow") && !manifest.contains("path = \"..\""),
            "{krate}/Cargo.toml depends on anyhow or the engine"
        );
    }
}

#[test]
fn the_service_does_not_depend_on_the_cli() {
    let found = offending("src/serve", &["crate::cli"], &[]);
    assert!(
        found.is_empty(),
        "src/serve must not use the CLI (shared views live in src/engine/view.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn anyhow_stays_in_the_cli() {
    let found = offending("src", &["anyhow"], &[]);
    let outside: Vec<&String> = found.iter().filter(|l| !l.starts_with("src/cli/")).collect();
    assert!(
        outside.is_empty(),
        "anyhow belongs to the CLI:\n{}",
        outside.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

/// How a `tokio::process::Command` is started without a spawner.
const STARTS: &[&str] = &["command.spawn()", "cmd.spawn()", ".output().await", ".status().await"];

#[test]
fn programs_are_started_through_a_spawner() {
    // A child started any other way is not journaled, so a resume could not stop it.
    let found: Vec<String> = ["src/steps", "failover/src", "backup/src/restore.rs"]
        .iter()
        .flat_map(|dir| {
            let path = root().join(dir);
            if path.is_file() {
                let text = std::fs::read_to_string(&path).unwrap();
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| STARTS.iter().any(|s| l.contains(s)))
                    .map(|(n, l)| format!("{dir}:{}: {}", n + 1, l.trim()))
                    .collect::<Vec<_>>()
            } else {
                offending(dir, STARTS, &[])
            }
        })
        .collect();
    assert!(
        found.is_empty(),
        "start programs with a Spawner (lifeboat_backup::process):\n{}",
        found.join("\n")
    );
}

//! A runbook section as a plan: its shell commands in order, each an `exec` step that needs
//! the one before, so that `lifeboat runbook run runbooks/x.md#section` is journaled like any
//! run — every command's output recorded, the first failure stops the rest, an interrupted
//! run resumes — and is the on-call's "do what the runbook says" in one command.

use super::commands::shell_lines;
use super::{anchors, section};
use std::path::Path;

/// A section's commands and the plan that runs them.
#[derive(Debug, Clone)]
pub struct Procedure {
    /// The plan's source (YAML), kept in the journal like any plan's.
    pub plan_source: String,
    /// The commands as written, with their line in the section.
    pub commands: Vec<String>,
}

/// The procedure of `file#anchor` (`source` is the runbook's text). `lifeboat` in a command
/// runs the binary in `lifeboat_dir`; `state` is the journal the commands' own lifeboat
/// calls should use (None: they find it as the engine did, e.g. in `LIFEBOAT_STATE`).
pub fn procedure(file: &str, source: &str, anchor: &str, lifeboat_dir: &Path, state: Option<&str>) -> Result<Procedure, String> {
    let text = section(source, anchor)
        .ok_or_else(|| format!("{file} has no section `#{anchor}`; its sections: {}", anchors(source).join(", ")))?;
    // Exports carry on to the commands after them, as in the shell the runbook assumes.
    let mut prelude = format!("PATH={}:\"$PATH\"; export PATH; ", shell_quote(&lifeboat_dir.display().to_string()));
    if let Some(state) = state {
        prelude.push_str(&format!("LIFEBOAT_STATE={}; export LIFEBOAT_STATE; ", shell_quote(state)));
    }
    let mut commands = Vec::new();
    let mut steps = String::new();
    for line in shell_lines(&text) {
        if line.words.first().is_some_and(|w| w == "export") {
            prelude.push_str(&line.text);
            prelude.push_str("; ");
            continue;
        }
        let n = commands.len() + 1;
        let needs = if n > 1 {
            format!("\n      needs: [cmd-{}]", n - 1)
        } else {
            String::new()
        };
        let script = serde_json::to_string(&format!("{prelude}{}", line.text)).map_err(|e| e.to_string())?;
        steps.push_str(&format!(
            "    - id: cmd-{n}\n      kind: exec{needs}\n      with:\n        command: [sh, -c, {script}]\n"
        ));
        commands.push(line.text.clone());
    }
    if commands.is_empty() {
        return Err(format!("section `#{anchor}` of {file} has no commands in its shell blocks"));
    }
    let stem = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("runbook");
    let name: String = format!("runbook-{stem}-{anchor}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    let description = serde_json::to_string(&format!("The commands of {file}#{anchor}, in order.")).map_err(|e| e.to_string())?;
    let plan_source = format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: {name}\nspec:\n  description: {description}\n  concurrency: 1\n  steps:\n{steps}"
    );
    Ok(Procedure { plan_source, commands })
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

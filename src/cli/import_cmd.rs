//! `lifeboat import chaostoolkit EXPERIMENT`: a Chaos Toolkit experiment as a drill plan (see
//! `crate::import::chaostoolkit`).

use super::{exit, invalid};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Convert a Chaos Toolkit experiment (JSON or YAML) into a drill plan: steady-state probes
    /// before and after the method, its first action the disaster, rollbacks as `finally`.
    /// What cannot be converted is listed; such an experiment runs unchanged with the
    /// `chaostoolkit.experiment` step kind.
    Chaostoolkit {
        experiment: PathBuf,
        /// Write the plan here (default: print it).
        #[arg(long)]
        to: Option<PathBuf>,
        /// The drill's recovery time objective.
        #[arg(long, default_value = "5m")]
        rto: String,
        /// The `chaos` command the plan's Python activities run with (default `chaos`).
        #[arg(long)]
        chaos: Option<String>,
    },
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<u8> {
    let ImportCommand::Chaostoolkit {
        experiment,
        to,
        rto,
        chaos,
    } = cmd;
    let source = std::fs::read_to_string(&experiment).map_err(|e| invalid(format!("{}: {e}", experiment.display())))?;
    // One-activity experiments (Python providers) go beside the plan: `<plan>.activities/`.
    let activities = to
        .as_ref()
        .map(|p| std::path::absolute(lifeboat_backup::instance::sibling(p, ".activities")))
        .transpose()?;
    let target = crate::import::chaostoolkit::Target { activities, chaos };
    let imported = crate::import::chaostoolkit::import(&experiment, &source, &rto, &target).map_err(|problems| {
        invalid(format!(
            "{} cannot be converted:\n  - {}\nrun it unchanged with a `chaostoolkit.experiment` step instead",
            experiment.display(),
            problems.join("\n  - ")
        ))
    })?;
    let text = crate::import::to_yaml(&imported.plan);
    // The plan must compile as written; a conversion that does not is lifeboat's bug.
    if let Err(d) = crate::plan::compile("imported.yaml", &text, crate::steps::catalog()) {
        return Err(invalid(format!(
            "the converted plan does not compile:\n{}",
            crate::plan::diagnostic::render_all(&d, &text)
        )));
    }
    if let (Some(dir), false) = (&target.activities, imported.activities.is_empty()) {
        std::fs::create_dir_all(dir)?;
        for (file, one) in &imported.activities {
            std::fs::write(dir.join(file), serde_json::to_vec_pretty(one)?)?;
        }
    }
    match to {
        Some(path) => {
            std::fs::write(&path, &text)?;
            outln!("{}: converted from {}", path.display(), experiment.display());
        }
        None => out!("{text}"),
    }
    Ok(exit::SUCCESS)
}

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
    },
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<u8> {
    let ImportCommand::Chaostoolkit { experiment, to, rto } = cmd;
    let source = std::fs::read_to_string(&experiment).map_err(|e| invalid(format!("{}: {e}", experiment.display())))?;
    let plan = crate::import::chaostoolkit::import(&experiment, &source, &rto).map_err(|problems| {
        invalid(format!(
            "{} cannot be converted:\n  - {}\nrun it unchanged with a `chaostoolkit.experiment` step instead",
            experiment.display(),
            problems.join("\n  - ")
        ))
    })?;
    let text = crate::import::to_yaml(&plan);
    // The plan must compile as written; a conversion that does not is lifeboat's bug.
    if let Err(d) = crate::plan::compile("imported.yaml", &text, crate::steps::catalog()) {
        return Err(invalid(format!(
            "the converted plan does not compile:\n{}",
            crate::plan::diagnostic::render_all(&d, &text)
        )));
    }
    match to {
        Some(path) => {
            std::fs::write(&path, &text)?;
            println!("{}: converted from {}", path.display(), experiment.display());
        }
        None => print!("{text}"),
    }
    Ok(exit::SUCCESS)
}

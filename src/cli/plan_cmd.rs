//! `lifeboat plan validate|graph|schema`.

use super::{exit, invalid};
use crate::plan::{self, diagnostic, graph::GraphFormat, params};
use clap::Subcommand;
use std::collections::BTreeMap;

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Compile plans and report every error (file:line:column, step, fix). Exit 2 on errors.
    Validate {
        #[arg(required = true)]
        files: Vec<String>,
        /// Also check params as a run would get them.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = params::parse_assignment)]
        params: Vec<(String, String)>,
    },
    /// Draw a plan's DAG.
    Graph {
        file: String,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Print the JSON Schema of the plan language (for editors).
    Schema,
}

pub fn run(cmd: PlanCommand) -> anyhow::Result<u8> {
    match cmd {
        PlanCommand::Validate { files, params } => {
            let given: Option<BTreeMap<String, String>> = (!params.is_empty()).then(|| params.into_iter().collect());
            let mut failed = 0;
            for file in &files {
                match load_and_compile(file, given.as_ref()) {
                    Ok(compiled) => {
                        let steps = compiled.units.iter().filter(|u| u.role == plan::Role::Main).count();
                        outln!("{file}: ok (plan `{}`, {steps} steps)", compiled.name);
                    }
                    Err(report) => {
                        failed += 1;
                        eprint!("{report}");
                    }
                }
            }
            Ok(if failed > 0 { exit::INVALID_INPUT } else { exit::SUCCESS })
        }
        PlanCommand::Graph { file, format } => {
            let compiled = load_and_compile(&file, None).map_err(invalid)?;
            out!("{}", plan::graph::render(&compiled, format));
            Ok(exit::SUCCESS)
        }
        PlanCommand::Schema => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&plan::compiler::plan_schema_for_editors(crate::steps::catalog()))?
            );
            Ok(exit::SUCCESS)
        }
    }
}

/// Reads and compiles a plan; the error is the full rendered report.
pub fn load_and_compile(file: &str, params: Option<&BTreeMap<String, String>>) -> Result<plan::CompiledPlan, String> {
    let source = std::fs::read_to_string(file).map_err(|e| format!("error: {file}: cannot read the plan: {e}\n"))?;
    let compiled = plan::compile(file, &source, crate::steps::catalog()).map_err(|d| diagnostic::render_all(&d, &source))?;
    if let Some(given) = params {
        params::resolve(&compiled, given).map_err(|errors| render_param_errors(file, &errors))?;
    }
    Ok(compiled)
}

pub fn render_param_errors(file: &str, errors: &[params::ParamError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&format!("error: {file}: {}\n", e.message));
    }
    out
}

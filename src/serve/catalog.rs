//! The plans a service may run, by name: compiled once at start, each with the source
//! text that a request snapshots (what was approved is what runs).

use crate::engine::runner::NewRun;
use crate::journal::requests::{NewRequest, Origin, RequestState};
use crate::plan::{self, CompiledPlan, diagnostic, params};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One plan the service knows.
#[derive(Debug, Clone)]
pub struct PlanEntry {
    pub file: String,
    pub source: String,
    pub plan: Arc<CompiledPlan>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub plans: BTreeMap<String, PlanEntry>,
}

impl Catalog {
    /// Compiles every plan file named or found (`*.yaml`, `*.yml`) in the folders named;
    /// the error lists every problem of every file.
    pub fn load(paths: &[PathBuf]) -> Result<Catalog, String> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            if path.is_dir() {
                match std::fs::read_dir(path) {
                    Ok(entries) => {
                        let mut found: Vec<PathBuf> = entries
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                            .collect();
                        found.sort();
                        files.extend(found);
                    }
                    Err(e) => errors.push(format!("error: {}: cannot list the plans folder: {e}", path.display())),
                }
            } else {
                files.push(path.clone());
            }
        }
        let mut catalog = Catalog::default();
        for file in files {
            match compile(&file) {
                Ok(entry) => {
                    if let Some(earlier) = catalog.plans.get(&entry.plan.name) {
                        errors.push(format!(
                            "error: {}: plan name `{}` is also the name of {}; plan names must be unique",
                            entry.file, entry.plan.name, earlier.file
                        ));
                    } else {
                        catalog.plans.insert(entry.plan.name.clone(), entry);
                    }
                }
                Err(e) => errors.push(e.trim_end().to_owned()),
            }
        }
        if errors.is_empty() { Ok(catalog) } else { Err(errors.join("\n")) }
    }

    pub fn get(&self, name: &str) -> Result<&PlanEntry, String> {
        self.plans.get(name).ok_or_else(|| {
            let known = self.plans.keys().cloned().collect::<Vec<_>>().join(", ");
            let hint = diagnostic::did_you_mean(name, self.plans.keys().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            format!("no plan named `{name}` among the service's plans{hint} (known: {known})")
        })
    }

    /// Resolves params for a run of `name` (JSON values are given as the command line
    /// would give them), with every problem in the error.
    pub fn new_run(&self, name: &str, given: &BTreeMap<String, Value>) -> Result<NewRun, String> {
        let entry = self.get(name)?;
        let given: BTreeMap<String, String> = given.iter().map(|(k, v)| (k.clone(), plan::template::value_as_text(v))).collect();
        let params = params::resolve(&entry.plan, &given).map_err(|errors| {
            errors
                .iter()
                .map(|e| e.message.replace("--param ", "param "))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Ok(NewRun {
            plan_file: entry.file.clone(),
            plan_source: entry.source.clone(),
            plan: entry.plan.clone(),
            params,
        })
    }
}

/// A request for `new` (its plan snapshot and resolved params), due now and tied to no
/// schedule or trigger; callers set those that apply.
pub fn request(new: NewRun, id: String, origin: Origin, state: RequestState, requested_by: String) -> NewRequest {
    NewRequest {
        id,
        origin,
        plan_file: new.plan_file,
        plan_name: new.plan.name.clone(),
        plan_source: new.plan_source,
        params: new.params,
        state,
        requested_by,
        schedule: None,
        scheduled_at: None,
        trigger_id: None,
        not_before: chrono::Utc::now(),
    }
}

fn compile(file: &Path) -> Result<PlanEntry, String> {
    let name = file.display().to_string();
    let source = std::fs::read_to_string(file).map_err(|e| format!("error: {name}: cannot read the plan: {e}"))?;
    let compiled = plan::compile(&name, &source, crate::steps::catalog()).map_err(|d| diagnostic::render_all(&d, &source))?;
    Ok(PlanEntry {
        file: name,
        source,
        plan: Arc::new(compiled),
    })
}

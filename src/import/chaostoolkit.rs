//! A Chaos Toolkit experiment converted into a lifeboat drill plan (`lifeboat import
//! chaostoolkit`):
//!
//! - the steady-state hypothesis is checked before the method (`before-<probe>` steps) and
//!   again after it (`after-<probe>`, retried until the state is back; the last one is the
//!   drill's `recovered` mark);
//! - the method's activities run in order, the first action is the drill's `disaster`;
//! - the rollbacks become `finally` steps;
//! - `process` providers become `exec` steps (run in the experiment's folder, as `chaos run`
//!   does), `http` providers `http` steps (probes: `validation.http_probe`);
//! - tolerances: an exit status or HTTP status, a list of them, or for HTTP a `regex` on the
//!   body;
//! - `configuration` values become params (`${name}` → `${{ params.name }}`), `env`
//!   configuration reads the environment (`${{ env.NAME }}`);
//! - a `python` provider in the method or the rollbacks runs through the `chaos` CLI: it is
//!   written as a one-activity experiment beside the plan, run by a `chaostoolkit.experiment`
//!   step in the experiment's folder.
//!
//! What cannot be converted (Python steady-state probes, other tolerances, secrets, controls)
//! is refused with the reason: such experiments run unchanged with `chaostoolkit.experiment`.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// A converted experiment: the plan, and the one-activity experiments its Python activities
/// run (to be written where `Target::activities` said, by file name).
#[derive(Debug, Clone)]
pub struct Imported {
    pub plan: Value,
    pub activities: Vec<(String, Value)>,
}

/// Where the plan's side files go and how they run.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The folder for one-activity experiments (`None`: Python activities are refused).
    pub activities: Option<std::path::PathBuf>,
    /// The `chaos` command for them (default: `chaos` on the PATH).
    pub chaos: Option<String>,
}

/// The plan for the experiment in `source`, read from `file`; every reason it cannot be
/// converted otherwise.
pub fn import(file: &Path, source: &str, rto: &str, target: &Target) -> Result<Imported, Vec<String>> {
    let experiment: Value = serde_json::from_str(source)
        .or_else(|_| crate::plan::yaml::parse(source).map(|n| n.to_json()).map_err(|e| e.message))
        .map_err(|e| vec![format!("{}: not a JSON or YAML experiment: {e}", file.display())])?;
    let folder = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut cx = Conversion {
        folder: folder.display().to_string(),
        target: target.clone(),
        experiment: experiment.clone(),
        activities: Vec::new(),
        problems: Vec::new(),
        ids: BTreeSet::new(),
        params: Map::new(),
        env: Map::new(),
    };
    cx.configuration(&experiment["configuration"]);
    for unsupported in ["secrets", "controls"] {
        if experiment.get(unsupported).is_some_and(|v| !v.is_null()) {
            cx.problems.push(format!("`{unsupported}` are not converted"));
        }
    }
    let probes: Vec<Value> = experiment["steady-state-hypothesis"]["probes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let method: Vec<Value> = experiment["method"].as_array().cloned().unwrap_or_default();
    if method.is_empty() {
        cx.problems.push("the experiment has no `method`".into());
    }
    let mut steps = Vec::new();
    let mut previous: Option<String> = None;
    for probe in &probes {
        if let Some(step) = cx.step(probe, "before-", &previous, false) {
            previous = step["id"].as_str().map(str::to_owned);
            steps.push(step);
        }
    }
    let mut disaster_marked = false;
    for activity in &method {
        if let Some(mut step) = cx.step(activity, "", &previous, false) {
            if !disaster_marked && activity["type"] == "action" {
                step["mark"] = json!("disaster");
                disaster_marked = true;
            }
            previous = step["id"].as_str().map(str::to_owned);
            steps.push(step);
        }
    }
    if !disaster_marked {
        cx.problems
            .push("the method has no action: nothing to start the drill's clock".into());
    }
    let after_count = probes.len();
    for (n, probe) in probes.iter().enumerate() {
        if let Some(mut step) = cx.step(probe, "after-", &previous, true) {
            if n + 1 == after_count {
                step["mark"] = json!("recovered");
            }
            previous = step["id"].as_str().map(str::to_owned);
            steps.push(step);
        }
    }
    if probes.is_empty() {
        cx.problems
            .push("the experiment has no steady-state probes: nothing tells when it recovered".into());
    }
    let mut finally = Vec::new();
    let mut previous_rollback: Option<String> = None;
    for rollback in experiment["rollbacks"].as_array().cloned().unwrap_or_default() {
        if let Some(step) = cx.step(&rollback, "rollback-", &previous_rollback, false) {
            previous_rollback = step["id"].as_str().map(str::to_owned);
            finally.push(step);
        }
    }
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    let title = experiment["title"].as_str().unwrap_or("experiment");
    let mut spec = json!({
        "description": format!("Imported from the Chaos Toolkit experiment {}: {title}", file.display()),
        "objectives": { "rto": rto },
        "steps": steps,
    });
    if !cx.params.is_empty() {
        spec["params"] = Value::Object(cx.params);
    }
    if !finally.is_empty() {
        spec["finally"] = Value::Array(finally);
    }
    let plan = json!({
        "apiVersion": "lifeboat.dev/v1alpha1",
        "kind": "RecoveryPlan",
        "metadata": { "name": slug(title, 63), "annotations": { "lifeboat.dev/imported-from": file.display().to_string() } },
        "spec": spec,
    });
    Ok(Imported {
        plan,
        activities: cx.activities,
    })
}

struct Conversion {
    folder: String,
    target: Target,
    /// The whole experiment: its configuration goes with every one-activity experiment.
    experiment: Value,
    activities: Vec<(String, Value)>,
    problems: Vec<String>,
    ids: BTreeSet<String>,
    params: Map<String, Value>,
    /// Configuration keys read from the environment, by the variable's name.
    env: Map<String, Value>,
}

impl Conversion {
    fn configuration(&mut self, configuration: &Value) {
        let Some(entries) = configuration.as_object() else { return };
        for (key, value) in entries {
            match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    let kind = match value {
                        Value::Number(n) if n.is_i64() => "integer",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "boolean",
                        _ => "string",
                    };
                    self.params.insert(key.clone(), json!({ "type": kind, "default": value }));
                }
                Value::Object(o) if o.get("type") == Some(&json!("env")) => match o.get("key").and_then(Value::as_str) {
                    Some(var) => {
                        self.env.insert(key.clone(), json!(var));
                    }
                    None => self.problems.push(format!("configuration `{key}`: an `env` entry needs a `key`")),
                },
                _ => self
                    .problems
                    .push(format!("configuration `{key}`: only values and `env` entries are converted")),
            }
        }
    }

    /// `${key}` of the experiment's configuration as a lifeboat expression.
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for key in self.params.keys() {
            out = out.replace(&format!("${{{key}}}"), &format!("${{{{ params.{key} }}}}"));
        }
        for (key, var) in &self.env {
            let var = var.as_str().unwrap_or_default();
            out = out.replace(&format!("${{{key}}}"), &format!("${{{{ env.{var} }}}}"));
        }
        out
    }

    fn unique_id(&mut self, prefix: &str, name: &str) -> String {
        let base = format!("{prefix}{}", slug(name, 50));
        let mut id = base.clone();
        let mut n = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }

    /// The step for one activity; `None` (with the reason recorded) when it cannot be converted.
    fn step(&mut self, activity: &Value, prefix: &str, after: &Option<String>, until_back: bool) -> Option<Value> {
        let name = activity["name"].as_str().unwrap_or("activity").to_owned();
        if let Some(reference) = activity["ref"].as_str() {
            self.problems
                .push(format!("activity reference `{reference}` is not converted; inline the activity"));
            return None;
        }
        let provider = &activity["provider"];
        let is_probe = activity["type"] == "probe";
        let tolerance = &activity["tolerance"];
        let id = self.unique_id(prefix, &name);
        let mut step = match provider["type"].as_str() {
            Some("process") => self.process(&name, provider, is_probe, tolerance)?,
            Some("http") => self.http(&name, provider, is_probe, tolerance)?,
            Some("python") if prefix == "before-" || prefix == "after-" => {
                self.problems.push(format!(
                    "steady-state probe `{name}`: `python` probes are not converted; run the experiment unchanged with the `chaostoolkit.experiment` step"
                ));
                return None;
            }
            Some("python") => self.python(&id, activity)?,
            Some(other) => {
                self.problems.push(format!(
                    "activity `{name}`: `{other}` providers are not converted; run the experiment unchanged with the `chaostoolkit.experiment` step"
                ));
                return None;
            }
            None => {
                self.problems.push(format!("activity `{name}` has no provider"));
                return None;
            }
        };
        step["id"] = json!(id);
        if let Some(after) = after {
            step["needs"] = json!([after]);
        }
        if until_back && step["kind"] == "exec" {
            // The steady state is checked until it is back, as a recovery probe polls.
            step["retry"] = json!({ "attempts": 60, "backoff": "1s", "max_backoff": "1s" });
        }
        if let Some(seconds) = activity["pauses"]["after"].as_f64().filter(|s| *s > 0.0) {
            self.problems
                .push(format!("activity `{name}`: `pauses` are not converted (after {seconds}s)"));
        }
        Some(step)
    }

    /// A Python activity as a one-activity experiment run by the `chaos` CLI.
    fn python(&mut self, id: &str, activity: &Value) -> Option<Value> {
        let name = activity["name"].as_str().unwrap_or("activity");
        let Some(dir) = self.target.activities.clone() else {
            self.problems.push(format!(
                "activity `{name}`: a `python` provider runs through the `chaos` CLI from a file written beside the plan; give `--to`"
            ));
            return None;
        };
        let file = format!("{id}.json");
        let mut one = json!({
            "version": "1.0.0",
            "title": format!("{name} (one activity of an imported experiment)"),
            "description": format!("Activity `{name}` of: {}", self.experiment["title"].as_str().unwrap_or("")),
            "method": [activity],
        });
        if let Some(configuration) = self.experiment.get("configuration").filter(|c| !c.is_null()) {
            one["configuration"] = configuration.clone();
        }
        self.activities.push((file.clone(), one));
        let mut with = json!({ "experiment": dir.join(&file).display().to_string(), "cwd": self.folder });
        if let Some(chaos) = &self.target.chaos {
            with["chaos"] = json!(chaos);
        }
        Some(json!({ "kind": "chaostoolkit.experiment", "with": with }))
    }

    fn process(&mut self, name: &str, provider: &Value, is_probe: bool, tolerance: &Value) -> Option<Value> {
        let Some(path) = provider["path"].as_str() else {
            self.problems.push(format!("activity `{name}`: a process provider needs `path`"));
            return None;
        };
        let mut command = vec![json!(self.substitute(path))];
        match &provider["arguments"] {
            Value::String(args) => match shlex::split(args) {
                Some(words) => command.extend(words.iter().map(|w| json!(self.substitute(w)))),
                None => {
                    self.problems
                        .push(format!("activity `{name}`: its arguments have unbalanced quotes"));
                    return None;
                }
            },
            Value::Array(args) => command.extend(args.iter().map(|a| json!(self.substitute(&text_of(a))))),
            Value::Null => {}
            _ => {
                self.problems
                    .push(format!("activity `{name}`: process arguments must be a string or a list"));
                return None;
            }
        }
        let mut with = json!({ "command": command, "cwd": self.folder });
        if is_probe && !tolerance.is_null() {
            with["success_codes"] = json!(self.statuses(name, tolerance, "exit status")?);
        }
        Some(json!({ "kind": "exec", "with": with }))
    }

    fn http(&mut self, name: &str, provider: &Value, is_probe: bool, tolerance: &Value) -> Option<Value> {
        let Some(url) = provider["url"].as_str() else {
            self.problems.push(format!("activity `{name}`: an http provider needs `url`"));
            return None;
        };
        let method = provider["method"].as_str().unwrap_or("GET");
        let url = self.substitute(url);
        if is_probe {
            let mut with = json!({ "url": url, "method": method, "timeout": "60s", "interval": "1s" });
            match tolerance {
                Value::Object(t) if t.get("type") == Some(&json!("regex")) => {
                    with["body_regex"] = json!(t.get("pattern").and_then(Value::as_str).unwrap_or_default());
                }
                Value::Null => {}
                other => with["expect_status"] = json!(self.statuses(name, other, "HTTP status")?),
            }
            return Some(json!({ "kind": "validation.http_probe", "with": with }));
        }
        let mut with = json!({ "url": url, "method": method });
        if let Some(body) = provider.get("arguments").filter(|a| !a.is_null()) {
            with["json"] = body.clone();
        }
        if let Some(status) = provider["expected_status"].as_u64() {
            with["expect"] = json!({ "status": status });
        }
        Some(json!({ "kind": "http", "with": with }))
    }

    /// An integer tolerance, or a list of them, as the statuses a step accepts.
    fn statuses(&mut self, name: &str, tolerance: &Value, what: &str) -> Option<Vec<u64>> {
        let statuses: Option<Vec<u64>> = match tolerance {
            Value::Number(n) => n.as_u64().map(|n| vec![n]),
            Value::Array(items) => items.iter().map(Value::as_u64).collect(),
            _ => None,
        };
        if statuses.is_none() {
            self.problems.push(format!(
                "activity `{name}`: tolerance {tolerance} is not converted (an {what} or a list of them is)"
            ));
        }
        statuses
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Lower-case letters, digits and `-`, as ids and plan names are written.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(max).collect();
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "experiment".into() } else { out }
}

//! Resolving a run's params: defaults, `--param name=value` overrides, types, required.

use super::compiled::CompiledPlan;
use super::diagnostic::did_you_mean;
use super::model::ParamType;
use serde_json::Value;
use std::collections::BTreeMap;

/// Converts a value to the declared type. Strings from the command line are parsed.
pub fn coerce(kind: ParamType, value: &Value) -> Result<Value, String> {
    let text = super::template::value_as_text(value);
    match (kind, value) {
        (ParamType::String, Value::String(_)) => Ok(value.clone()),
        (ParamType::String, Value::Number(_) | Value::Bool(_)) => Ok(Value::String(text)),
        (ParamType::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (ParamType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{s}` is not an integer")),
        (ParamType::Number, Value::Number(_)) => Ok(value.clone()),
        (ParamType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{s}` is not a number")),
        (ParamType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (ParamType::Boolean, Value::String(s)) => match s.trim() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{s}` is not a boolean (use true or false)")),
        },
        (ParamType::Duration, Value::String(s)) => super::duration::parse(s).map(|_| value.clone()),
        (kind, other) => Err(format!("expected a {kind:?} value, found `{other}`").to_lowercase()),
    }
}

/// One problem with the params given to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

/// Merges defaults and given values; reports *every* problem.
pub fn resolve(plan: &CompiledPlan, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, Value>, Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    for name in given.keys() {
        if !plan.params.contains_key(name) {
            let hint = did_you_mean(name, plan.params.keys().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            let declared = plan.params.keys().cloned().collect::<Vec<_>>().join(", ");
            errors.push(ParamError {
                param: name.clone(),
                message: format!(
                    "--param {name}: the plan declares no such param{hint} (declared: {})",
                    if declared.is_empty() { "none" } else { &declared }
                ),
            });
        }
    }
    for (name, decl) in &plan.params {
        let value = match (given.get(name), &decl.default) {
            (Some(v), _) => coerce(decl.kind, &Value::String(v.clone())).map_err(|e| format!("--param {name}: {e}")),
            (None, Some(default)) => coerce(decl.kind, default).map_err(|e| format!("default of {name}: {e}")),
            (None, None) if decl.required => Err(format!(
                "param `{name}` is required{}; pass --param {name}=VALUE",
                decl.description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            (None, None) => Ok(Value::Null),
        };
        match value {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(message) => errors.push(ParamError {
                param: name.clone(),
                message,
            }),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Parses `name=value` from the command line.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

//! Validating an object against a CRD's structural openAPIV3Schema the way the API server
//! does: unknown fields pruned (or refused under `fieldValidation=Strict`), `null` dropped
//! where not nullable, defaults filled in, and type, enum, required, pattern and bound
//! violations reported as the causes of a 422.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub causes: Vec<Cause>,
    /// Fields the schema does not know (pruned unless the request is strict).
    pub unknown: Vec<String>,
}

/// Validates and normalises `object` (without `apiVersion`, `kind`, `metadata`, which the
/// server checks itself) against `schema`.
pub fn validate(object: &mut Value, schema: &Value) -> Outcome {
    let mut out = Outcome::default();
    if let (Value::Object(map), Some(properties)) = (object, schema["properties"].as_object()) {
        for (key, value) in map.iter_mut() {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match properties.get(key) {
                Some(s) => walk(value, s, key, &mut out),
                None if preserves(schema) => {}
                None => out.unknown.push(key.clone()),
            }
        }
        let unknown: Vec<String> = out.unknown.iter().filter(|f| !f.contains('.')).cloned().collect();
        for key in unknown {
            map.remove(&key);
        }
        apply_defaults(map, schema);
        required(map, schema, "", &mut out);
    }
    out
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
}

fn walk(value: &mut Value, schema: &Value, path: &str, out: &mut Outcome) {
    if value.is_null() {
        // Not nullable: the API server drops the field; the parent then defaults it.
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            out.causes.push(type_cause(path, value, "integer or string"));
        }
        return;
    }
    let wanted = schema["type"].as_str();
    let ok = match wanted {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        out.causes.push(type_cause(path, value, wanted.unwrap_or("?")));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: path.into(),
            message: format!("{path}: Unsupported value: {value}: supported values: {}", supported.join(", ")),
        });
    }
    let shown = value.clone();
    match value {
        Value::String(s) => {
            if let Some(pattern) = schema["pattern"].as_str()
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                out.causes
                    .push(invalid(path, &shown, &format!("{path} in body should match '{pattern}'")));
            }
            if schema["format"] == "date-time" && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                out.causes
                    .push(invalid(path, &shown, &format!("{path} in body must be of type date-time")));
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if schema["minimum"].as_f64().is_some_and(|m| n < m) || schema["maximum"].as_f64().is_some_and(|m| n > m) {
                out.causes.push(invalid(path, &shown, &format!("{path} in body is out of range")));
            }
        }
        Value::Array(items) => {
            if schema["minItems"].as_u64().is_some_and(|m| (items.len() as u64) < m) {
                out.causes.push(invalid(
                    path,
                    &shown,
                    &format!("{path} in body should have at least {} items", schema["minItems"]),
                ));
            }
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &schema["items"], &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => object(map, schema, path, out),
        _ => {}
    }
}

fn object(map: &mut Map<String, Value>, schema: &Value, path: &str, out: &mut Outcome) {
    let properties = schema["properties"].as_object();
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let mut pruned = Vec::new();
    for (key, value) in map.iter_mut() {
        let child = format!("{path}.{key}");
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(s), _) | (None, Some(s)) => walk(value, s, &child, out),
            (None, None) if preserves(schema) || properties.is_none() => {}
            (None, None) => {
                out.unknown.push(child);
                pruned.push(key.clone());
            }
        }
    }
    for key in pruned {
        map.remove(&key);
    }
    // Nulls the schema does not allow are dropped, as the API server prunes them.
    let nullable: Vec<String> = map
        .iter()
        .filter(|(k, v)| v.is_null() && properties.and_then(|p| p.get(*k)).is_some_and(|s| s["nullable"] != true))
        .map(|(k, _)| k.clone())
        .collect();
    for key in nullable {
        map.remove(&key);
    }
    apply_defaults(map, schema);
    required(map, schema, path, out);
}

fn apply_defaults(map: &mut Map<String, Value>, schema: &Value) {
    if let Some(properties) = schema["properties"].as_object() {
        for (key, s) in properties {
            if !map.contains_key(key)
                && let Some(default) = s.get("default")
            {
                map.insert(key.clone(), default.clone());
            }
        }
    }
}

fn required(map: &Map<String, Value>, schema: &Value, path: &str, out: &mut Outcome) {
    for field in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(field) {
            let at = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            out.causes.push(Cause {
                reason: "FieldValueRequired",
                message: format!("{at}: Required value"),
                field: at,
            });
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_cause(path: &str, value: &Value, wanted: &str) -> Cause {
    let found = json_type(value);
    Cause {
        reason: "FieldValueTypeInvalid",
        field: path.into(),
        message: format!("{path}: Invalid value: \"{found}\": {path} in body must be of type {wanted}: \"{found}\""),
    }
}

fn invalid(path: &str, value: &Value, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: path.into(),
        message: format!("{path}: Invalid value: {value}: {why}"),
    }
}

//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), as
//! `kubectl get` asks for it: a custom resource's rows carry its CRD's
//! `additionalPrinterColumns`, evaluated on each object (a JSONPath subset: fields, indexes
//! and `[?(@.field=="value")]` filters), with `date` columns shown as ages.

use crate::resources::Resource;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Whether a client asked for a table and the resource has columns to print.
pub fn wanted(accept: &str, resource: &Resource) -> bool {
    !resource.printer_columns.is_empty() && accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

/// The table of `objects`.
pub fn of(resource: &Resource, objects: &[Value], resource_version: &str) -> Value {
    let mut columns = vec![json!({"name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace."})];
    columns.extend(resource.printer_columns.iter().map(|c| {
        json!({"name": c["name"], "type": c["type"], "format": c["format"].as_str().unwrap_or(""),
               "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0)})
    }));
    let now = Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![object["metadata"]["name"].clone()];
            cells.extend(resource.printer_columns.iter().map(|c| cell(c, object, now)));
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                             "metadata": object["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
           "columnDefinitions": columns, "rows": rows})
}

fn cell(column: &Value, object: &Value, now: DateTime<Utc>) -> Value {
    let found = column["jsonPath"].as_str().map(|path| select(object, path)).unwrap_or(Value::Null);
    match (column["type"].as_str(), &found) {
        (Some("date"), Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| Value::String(age(now - t.with_timezone(&Utc))))
            .unwrap_or(found),
        _ => found,
    }
}

/// The first value `path` selects in `object`, or null.
pub fn select(object: &Value, path: &str) -> Value {
    let mut current = vec![object];
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { return Value::Null };
            let selector = &inner[..end];
            rest = inner[end + 1..].trim_start_matches('.');
            current = current
                .into_iter()
                .flat_map(|v| {
                    v.as_array()
                        .map(|a| a.iter().collect::<Vec<_>>())
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                })
                .filter(|(i, item)| matches_selector(selector, *i, item))
                .map(|(_, item)| item)
                .collect();
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let field = &rest[..end];
            rest = rest[end..].trim_start_matches('.');
            current = current.into_iter().filter_map(|v| v.get(field)).collect();
        }
    }
    current.first().map_or(Value::Null, |v| (*v).clone())
}

fn matches_selector(selector: &str, index: usize, item: &Value) -> bool {
    if let Ok(wanted) = selector.parse::<usize>() {
        return index == wanted;
    }
    let Some(filter) = selector.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) else {
        return selector == "*";
    };
    let Some((field, value)) = filter.split_once("==") else {
        return false;
    };
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    item.get(field.trim()).and_then(Value::as_str) == Some(value)
}

/// An age as `kubectl` shows one (`45s`, `3m12s`, `2h5m`, `4d`).
fn age(elapsed: chrono::TimeDelta) -> String {
    let s = elapsed.num_seconds().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ => format!("{d}d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_fields_indexes_and_filters() {
        let object = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Accepted", "status": "True"}, {"type": "Compiled", "status": "False"}]}});
        assert_eq!(select(&object, ".status.phase"), "Running");
        assert_eq!(select(&object, ".status.conditions[?(@.type==\"Compiled\")].status"), "False");
        assert_eq!(select(&object, ".status.conditions[0].type"), "Accepted");
        assert_eq!(select(&object, ".status.missing"), Value::Null);
        assert_eq!(select(&object, ".status.conditions[?(@.type==\"Nope\")].status"), Value::Null);
    }

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let secs = chrono::TimeDelta::seconds;
        assert_eq!(age(secs(5)), "5s");
        assert_eq!(age(secs(192)), "3m12s");
        assert_eq!(age(secs(3 * 3600 + 300)), "3h5m");
        assert_eq!(age(secs(5 * 86400)), "5d");
    }
}

//! Other tools' experiment formats converted into lifeboat plans: `lifeboat import`.

pub mod chaostoolkit;

use serde_json::Value;

/// A JSON value written as block YAML (strings double-quoted, which YAML reads as JSON does).
pub fn to_yaml(value: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
            Value::Array(a) if a.is_empty() => "[]".into(),
            Value::Object(o) if o.is_empty() => "{}".into(),
            other => other.to_string(),
        }
    }
    fn write(out: &mut String, v: &Value, indent: usize) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, v) in o {
                    match v {
                        Value::Object(c) if !c.is_empty() => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            write(out, v, indent + 2);
                        }
                        Value::Array(c) if !c.is_empty() => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            write(out, v, indent + 2);
                        }
                        _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                    }
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    match item {
                        Value::Object(o) if !o.is_empty() => {
                            let mut inner = String::new();
                            write(&mut inner, item, indent + 2);
                            out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    let mut out = String::new();
    write(&mut out, value, 0);
    out
}

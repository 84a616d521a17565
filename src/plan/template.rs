//! `${{ … }}` templates inside plan strings.
//!
//! A string that is exactly one template takes the expression's value with its JSON
//! type (so `${{ params.port }}` stays a number); any other string interpolates the
//! values as text.

use super::expr::{self, Evaluated, Expr, Scope};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// An expression, with its source text and byte offset of that text in the string.
    Expr {
        expr: Expr,
        source: String,
        offset: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// Byte offset in the string where the problem is.
    pub offset: usize,
    pub message: String,
}

pub fn contains_template(s: &str) -> bool {
    s.contains("${{")
}

pub fn parse(s: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = s;
    let mut base = 0;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let body_start = start + 3;
        let Some(len) = rest[body_start..].find("}}") else {
            return Err(TemplateError {
                offset: base + start,
                message: "`${{` is never closed; end the expression with `}}`".into(),
            });
        };
        let source = &rest[body_start..body_start + len];
        let expr = expr::parse(source).map_err(|e| TemplateError {
            offset: base + body_start + e.offset,
            message: format!("invalid expression `{}`: {}", source.trim(), e.message),
        })?;
        pieces.push(Piece::Expr {
            expr,
            source: source.trim().to_owned(),
            offset: base + body_start,
        });
        rest = &rest[body_start + len + 2..];
        base += body_start + len + 2;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// Renders a string template.
pub fn render_str(s: &str, scope: &dyn Scope) -> Result<Evaluated, String> {
    let pieces = parse(s).map_err(|e| e.message)?;
    if let [Piece::Expr { expr, .. }] = pieces.as_slice() {
        return expr.eval(scope);
    }
    let mut out = String::new();
    let mut secret = false;
    for piece in &pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr { expr, .. } => {
                let v = expr.eval(scope)?;
                secret |= v.secret;
                out.push_str(&value_as_text(&v.value));
            }
        }
    }
    Ok(Evaluated {
        value: Value::String(out),
        secret,
    })
}

/// Renders every string inside a JSON value.
pub fn render_value(value: &Value, scope: &dyn Scope) -> Result<Evaluated, String> {
    let mut secret = false;
    let rendered = render_inner(value, scope, &mut secret)?;
    Ok(Evaluated { value: rendered, secret })
}

fn render_inner(value: &Value, scope: &dyn Scope, secret: &mut bool) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if contains_template(s) => {
            let v = render_str(s, scope)?;
            *secret |= v.secret;
            v.value
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render_inner(v, scope, secret)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_inner(v, scope, secret)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

pub fn value_as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A templated string found inside a value: its JSON path and its parsed pieces.
pub type FoundTemplate = (Vec<String>, Result<Vec<Piece>, TemplateError>);

/// Every expression in every string of a JSON value, with the JSON path of the string.
pub fn expressions_in(value: &Value) -> Vec<FoundTemplate> {
    let mut out = Vec::new();
    collect(value, &mut Vec::new(), &mut out);
    out
}

fn collect(value: &Value, path: &mut Vec<String>, out: &mut Vec<FoundTemplate>) {
    match value {
        Value::String(s) if contains_template(s) => out.push((path.clone(), parse(s))),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                collect(v, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                collect(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl Scope for Fixed {
        fn lookup(&self, path: &[String]) -> Result<Evaluated, String> {
            match path.join(".").as_str() {
                "params.port" => Ok(Evaluated {
                    value: json!(5432),
                    secret: false,
                }),
                "env.PW" => Ok(Evaluated {
                    value: json!("hunter2"),
                    secret: true,
                }),
                other => Err(format!("unknown {other}")),
            }
        }
    }

    #[test]
    fn whole_template_keeps_type() {
        assert_eq!(render_str("${{ params.port }}", &Fixed).unwrap().value, json!(5432));
        assert_eq!(render_str("port=${{ params.port }}!", &Fixed).unwrap().value, json!("port=5432!"));
    }

    #[test]
    fn tracks_secrets_through_values() {
        let v = render_value(&json!({"a": ["x", "${{ env.PW }}"]}), &Fixed).unwrap();
        assert!(v.secret);
        assert_eq!(v.value, json!({"a": ["x", "hunter2"]}));
    }

    #[test]
    fn reports_unclosed_and_invalid() {
        assert!(parse("a ${{ b").unwrap_err().message.contains("never closed"));
        let err = parse("xx${{ a == }}").unwrap_err();
        assert!(err.message.contains("invalid expression"), "{err:?}");
    }
}

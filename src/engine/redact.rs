//! Keeps secrets out of the journal, logs and outputs.
//!
//! Every value a plan reads from `env.*` is a secret. The runner registers those values
//! here before any step runs; every string bound for the journal, a log line or an
//! output is passed through [`Redactor::redact`] (like CI systems mask secrets).

use serde_json::Value;

pub const MASK: &str = "***";

/// Values shorter than this are not masked: masking "1" or "on" everywhere would make
/// output unreadable, and such values are not secrets worth the name.
const MIN_SECRET_LEN: usize = 4;

#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values.into_iter().filter(|v| v.len() >= MIN_SECRET_LEN).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.redact_value(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (self.redact(k), self.redact_value(v))).collect()),
            other => other.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secrets_everywhere_in_a_value() {
        let r = Redactor::new(["hunter22".to_owned(), "s3cr3t-token".to_owned(), "x".to_owned()]);
        let v = r.redact_value(&json!({"out": "pw=hunter22;", "list": ["s3cr3t-token"], "x": "x"}));
        assert_eq!(v, json!({"out": "pw=***;", "list": ["***"], "x": "x"}));
    }
}

//! Keeps secrets out of the journal, logs, reports and outputs.
//!
//! Every value a plan reads from `env.*` is a secret. A run's [`Redactor`] knows the values
//! its plan reads; everything a step writes goes through it (the step's handle on its run
//! masks every record, output and error it journals), and the values are also registered
//! process-wide with [`register`], so that [`MaskingWriter`] masks them in every log line
//! whatever code wrote it — like CI systems mask secrets in job logs.

use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, LazyLock, RwLock};

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

    /// Masks every string of an object, keeping it an object.
    pub fn redact_map(&self, map: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
        map.iter().map(|(k, v)| (self.redact(k), self.redact_value(v))).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn merged(&self, other: &Redactor) -> Redactor {
        Redactor::new(self.secrets.iter().chain(&other.secrets).cloned())
    }
}

/// The secrets of every run this process has loaded: log lines are masked with them.
static PROCESS_SECRETS: LazyLock<RwLock<Arc<Redactor>>> = LazyLock::new(Default::default);

/// Adds a run's secrets to those masked in this process's logs. Never removed: a line
/// logged after the run ended must stay masked too.
pub fn register(redactor: &Redactor) {
    if redactor.is_empty() {
        return;
    }
    let mut all = PROCESS_SECRETS.write().unwrap_or_else(|p| p.into_inner());
    *all = Arc::new(all.merged(redactor));
}

fn process_redactor() -> Arc<Redactor> {
    PROCESS_SECRETS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A writer for log output that masks registered secrets. The log formatter writes each
/// event in one call, so a secret is never split across two writes.
pub struct MaskingWriter<W: Write>(pub W);

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let redactor = process_redactor();
        if redactor.is_empty() {
            return self.0.write(buf);
        }
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
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

    #[test]
    fn log_lines_are_masked_once_a_run_registers_its_secrets() {
        register(&Redactor::new(["log-secret-0451".to_owned()]));
        let mut out = MaskingWriter(Vec::new());
        out.write_all(b"connecting with password log-secret-0451\n").unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), "connecting with password ***\n");
    }
}

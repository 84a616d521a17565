//! Step kinds: one adapter per kind turns a plan step into a call of real work, one folder
//! per family (`chaos/`, `postgres/`, `traffic/`, `validation/`) with what the family shares
//! in its `mod.rs`.
//!
//! An adapter receives its options already rendered (expressions resolved) and a
//! [`StepContext`]; it returns outputs or a [`StepError`] that says whether a retry could
//! help. Adapters never retry, time out or journal by themselves: the engine owns that, and
//! everything an adapter keeps beyond its call goes through the context's [`RunHandle`].

pub mod alertmanager;
pub mod approval;
pub mod argocd;
pub mod background;
pub mod chaos;
pub mod chaos_mesh;
pub mod chaostoolkit;
pub mod context;
pub mod dsn;
mod error;
pub mod exec;
pub mod http;
pub mod k8s;
pub mod litmus;
pub mod manual;
pub mod monitoring;
pub mod postgres;
pub mod processes;
mod registry;
pub mod sleep;
pub mod traffic;
pub mod validation;
pub mod velero;

pub use context::{RunHandle, StepContext};
pub use error::StepError;
pub use registry::{BACKGROUND_KINDS, KINDS, KindSpec, catalog, is_kubernetes, kind};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub type Outputs = Map<String, Value>;

/// Options are checked by the compiler, but expressions only get their types at run
/// time, so a mismatch here is the plan's fault and retrying cannot fix it.
fn options<T: DeserializeOwned>(with: Value) -> Result<T, StepError> {
    serde_path_to_error::deserialize(with).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." { String::new() } else { format!("`{at}`: ") };
        StepError::terminal(format!("invalid options after evaluating expressions: {at}{}", e.inner()))
    })
}

/// A serializable value as step outputs.
pub fn outputs_of(value: &impl serde::Serialize) -> Outputs {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Outputs::new(),
    }
}

/// An instant as an output value (RFC 3339, UTC, microseconds).
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Value {
    crate::evidence::time::value(t)
}

/// An option holding an instant (RFC 3339), usually another step's time output; `hint` says
/// which output to use.
pub fn parse_time(option: &str, text: &Text, hint: &str) -> Result<chrono::DateTime<chrono::Utc>, StepError> {
    chrono::DateTime::parse_from_rfc3339(&text.0)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| StepError::terminal(format!("{option}: `{}` is not an RFC 3339 time ({e}); {hint}", text.0)))
}

/// A scalar option read as text, so that `${{ params.port }}` (a number) can fill a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            v @ (Value::Number(_) | Value::Bool(_)) => Ok(Text(v.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {other}"
            ))),
        }
    }
}

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// Keeps the last `limit` bytes written to it: stdout/stderr tails, response bodies.
#[derive(Debug, Default)]
pub struct Tail {
    buf: std::collections::VecDeque<u8>,
    limit: usize,
    pub total: u64,
}

impl Tail {
    pub fn new(limit: usize) -> Self {
        Tail {
            buf: Default::default(),
            limit,
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(self.limit);
        self.buf.drain(..excess);
    }

    pub fn text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

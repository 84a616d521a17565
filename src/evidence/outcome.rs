//! Step outputs that the drill measurement reads back: adapters write them through these
//! types and the measurement reads them through the same types.

use super::fault::Reverted;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Outputs as a typed value: written whole, read back whole (unknown fields ignored).
pub trait Outcome: Serialize + DeserializeOwned {
    fn to_outputs(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// `None` when the outputs are not of this shape (e.g. a step of another kind).
    fn from_outputs(outputs: &Map<String, Value>) -> Option<Self> {
        serde_json::from_value(Value::Object(outputs.clone())).ok()
    }
}

/// A probe's outputs: its first passing check is the `recovered` evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePassed {
    #[serde(with = "super::time")]
    pub passed_at: DateTime<Utc>,
    #[serde(with = "super::time")]
    pub first_check_at: DateTime<Utc>,
    pub checks: u32,
    /// What the passing check observed.
    pub observed: String,
    /// Its structured evidence, where the probe has some (the samples a PromQL probe judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// The last failure before it passed.
    pub last_failure: Option<String>,
    pub waited_ms: i64,
}

impl Outcome for ProbePassed {}

/// A fault step's outputs: the `disaster` evidence. The injector's evidence fields are
/// outputs too, beside these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultApplied {
    #[serde(with = "super::time")]
    pub injected_at: DateTime<Utc>,
    #[serde(default, with = "super::time::optional", skip_serializing_if = "Option::is_none")]
    pub reverts_at: Option<DateTime<Utc>>,
    /// Set when the step waited for the revert.
    #[serde(default, with = "super::time::optional", skip_serializing_if = "Option::is_none")]
    pub reverted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<Reverted>,
    #[serde(flatten)]
    pub evidence: Map<String, Value>,
}

impl Outcome for FaultApplied {
    fn to_outputs(&self) -> Map<String, Value> {
        // The typed fields keep their meaning: an evidence field cannot shadow them.
        let typed = FaultApplied {
            evidence: Map::new(),
            ..self.clone()
        };
        let mut out = match serde_json::to_value(&typed) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        for (k, v) in &self.evidence {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        out
    }
}

/// `validation.rpo`'s outputs.
pub type RpoMeasured = lifeboat_validation::rpo::RpoReport;

impl Outcome for RpoMeasured {}

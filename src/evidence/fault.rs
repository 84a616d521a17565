//! Fault records (channel `fault/<step>`): the injection, its revert, for faults whose
//! revert is known before they are applied the intent journaled first and what a resume
//! undid on the strength of it, and for signals the processes aimed at before sending.

use super::{Evidence, from_payload, to_payload};
use crate::chaos::DurableRevert;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum FaultRecord {
    Injected(Injected),
    Reverted(Reverted),
    /// Written before a fault whose revert is known in advance (a link, a route, a fill
    /// file) is applied, so that an engine dying between applying it and journaling it
    /// still leaves `lifeboat resume` something to undo.
    Intent(Intent),
    /// What a resume undid on the strength of an unsettled intent (kept apart from the
    /// intent, which the step's next attempt writes anew).
    UndoneAfterCrash(UndoneAfterCrash),
    /// The processes a signal is about to go to, journaled before it is sent: a step run
    /// again after the engine died reads whether that signal already took effect.
    Aimed(Aimed),
}

/// A fault observed in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    /// When the fault was observed in effect: the drill clock starts here.
    #[serde(with = "super::time")]
    pub injected_at: DateTime<Utc>,
    /// What the injector did and observed.
    #[serde(default)]
    pub evidence: Map<String, Value>,
    /// The fault lasts until it is reverted (not a one-off like a kill).
    #[serde(default)]
    pub persistent: bool,
    #[serde(default, with = "super::time::optional")]
    pub reverts_at: Option<DateTime<Utc>>,
    /// How another process can undo it after a crash.
    #[serde(default)]
    pub durable_revert: Option<DurableRevert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reverted {
    #[serde(with = "super::time")]
    pub reverted_at: DateTime<Utc>,
    pub reason: String,
    /// What was observed while reverting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Map<String, Value>>,
    /// Why the revert failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub durable_revert: DurableRevert,
    /// Set once the intent needs no undoing (the fault was not applied, or was undone).
    #[serde(default)]
    pub settled: Option<String>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoneAfterCrash {
    pub durable_revert: DurableRevert,
    pub note: String,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

const INJECTED: i64 = 0;
const REVERTED: i64 = 1;
const INTENT: i64 = 2;
const UNDONE_AFTER_CRASH: i64 = 3;
const AIMED: i64 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aimed {
    pub signal: String,
    pub processes: Vec<crate::chaos::process::Aimed>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

impl Evidence for FaultRecord {
    const PREFIX: &'static str = "fault/";

    fn key(&self) -> i64 {
        match self {
            FaultRecord::Injected(_) => INJECTED,
            FaultRecord::Reverted(_) => REVERTED,
            FaultRecord::Intent(_) => INTENT,
            FaultRecord::UndoneAfterCrash(_) => UNDONE_AFTER_CRASH,
            FaultRecord::Aimed(_) => AIMED,
        }
    }

    fn at(&self) -> DateTime<Utc> {
        match self {
            FaultRecord::Injected(r) => r.injected_at,
            FaultRecord::Reverted(r) => r.reverted_at,
            FaultRecord::Intent(r) => r.at.unwrap_or_else(Utc::now),
            FaultRecord::UndoneAfterCrash(r) => r.at.unwrap_or_else(Utc::now),
            FaultRecord::Aimed(r) => r.at.unwrap_or_else(Utc::now),
        }
    }

    fn encode(&self) -> Value {
        match self {
            FaultRecord::Injected(r) => to_payload(r),
            FaultRecord::Reverted(r) => to_payload(r),
            FaultRecord::Intent(r) => to_payload(r),
            FaultRecord::UndoneAfterCrash(r) => to_payload(r),
            FaultRecord::Aimed(r) => to_payload(r),
        }
    }

    fn decode(key: i64, at: DateTime<Utc>, payload: Value) -> Result<Self, String> {
        Ok(match key {
            INJECTED => FaultRecord::Injected(from_payload(payload)?),
            REVERTED => FaultRecord::Reverted(from_payload(payload)?),
            INTENT => FaultRecord::Intent(Intent {
                at: Some(at),
                ..from_payload(payload)?
            }),
            UNDONE_AFTER_CRASH => FaultRecord::UndoneAfterCrash(UndoneAfterCrash {
                at: Some(at),
                ..from_payload(payload)?
            }),
            AIMED => FaultRecord::Aimed(Aimed {
                at: Some(at),
                ..from_payload(payload)?
            }),
            other => return Err(format!("unknown fault record key {other}")),
        })
    }
}

/// A fault step's records, gathered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultHistory {
    pub injected: Option<Injected>,
    pub reverted: Option<Reverted>,
    pub intent: Option<Intent>,
    pub undone_after_crash: Option<UndoneAfterCrash>,
    pub aimed: Option<Aimed>,
}

impl FaultHistory {
    pub fn of(records: impl IntoIterator<Item = FaultRecord>) -> FaultHistory {
        let mut history = FaultHistory::default();
        for record in records {
            match record {
                FaultRecord::Injected(r) => history.injected = Some(r),
                FaultRecord::Reverted(r) => history.reverted = Some(r),
                FaultRecord::Intent(r) => history.intent = Some(r),
                FaultRecord::UndoneAfterCrash(r) => history.undone_after_crash = Some(r),
                FaultRecord::Aimed(r) => history.aimed = Some(r),
            }
        }
        history
    }

    /// Every step's history, from `(step, record)` pairs in any order.
    pub fn by_step(records: Vec<(String, FaultRecord)>) -> std::collections::BTreeMap<String, FaultHistory> {
        let mut grouped: std::collections::BTreeMap<String, Vec<FaultRecord>> = Default::default();
        for (step, record) in records {
            grouped.entry(step).or_default().push(record);
        }
        grouped
            .into_iter()
            .map(|(step, records)| (step, FaultHistory::of(records)))
            .collect()
    }

    /// A persistent fault without a recorded revert.
    pub fn left_active(&self) -> bool {
        self.injected.as_ref().is_some_and(|i| i.persistent) && self.reverted.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_written_before_typed_evidence_still_decode() {
        let injected = json!({
            "injected_at": "2026-11-22T04:24:22.813001Z",
            "evidence": { "pid": 42 },
            "persistent": true,
            "reverts_at": null,
            "durable_revert": { "action": "remove_file", "path": "/tmp/fill" },
        });
        let FaultRecord::Injected(i) = FaultRecord::decode(0, Utc::now(), injected).unwrap() else {
            panic!("key 0 is the injection")
        };
        assert!(i.persistent);
        assert_eq!(i.evidence["pid"], 42);
        let reverted = json!({ "reverted_at": "2026-11-22T04:24:23.000000Z", "reason": "the run ended", "observed": {} });
        assert!(matches!(FaultRecord::decode(1, Utc::now(), reverted), Ok(FaultRecord::Reverted(_))));
        assert!(FaultRecord::decode(9, Utc::now(), json!({})).is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let record = FaultRecord::Injected(Injected {
            injected_at: super::super::time::parse("2026-11-22T04:24:22.813001Z").unwrap(),
            evidence: Map::new(),
            persistent: false,
            reverts_at: None,
            durable_revert: None,
        });
        assert_eq!(FaultRecord::decode(record.key(), record.at(), record.encode()).unwrap(), record);
    }
}

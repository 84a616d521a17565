//! The processes a step's attempts started (channel `process/<step>`, one record per child,
//! keyed in start order), so that whoever resumes a crashed run can stop what is left of an
//! attempt before it runs the step again: no step ever runs twice at once.

use super::{Evidence, from_payload, to_payload};
use chrono::{DateTime, Utc};
use lifeboat_backup::process::{Recorded, Stopped};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStarted {
    /// Its number among the run's children: the record's key.
    pub number: i64,
    pub attempt: u32,
    /// The host it runs on: only there can it be found and stopped.
    pub host: String,
    #[serde(flatten)]
    pub process: Recorded,
    #[serde(with = "super::time")]
    pub started_at: DateTime<Utc>,
    /// Set when a resume found it (or what was left of its group) and stopped it.
    #[serde(default)]
    pub stopped: Option<ProcessStopped>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStopped {
    #[serde(with = "super::time")]
    pub at: DateTime<Utc>,
    pub outcome: Stopped,
    /// Who stopped it, e.g. `resume by pid 4242`.
    pub by: String,
}

impl Evidence for ProcessStarted {
    const PREFIX: &'static str = "process/";

    fn key(&self) -> i64 {
        self.number
    }

    fn at(&self) -> DateTime<Utc> {
        self.started_at
    }

    fn encode(&self) -> Value {
        to_payload(self)
    }

    fn decode(_: i64, _: DateTime<Utc>, payload: Value) -> Result<Self, String> {
        from_payload(payload)
    }
}

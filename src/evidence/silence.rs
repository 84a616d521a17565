//! Silence records (channel `silence/<step>`, one record replaced as it moves on): the
//! intent, written before the silence is created so that a dead engine's silence can be
//! found again by its marker; its id once Alertmanager answered; and its expiry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    /// The Alertmanager holding it.
    pub alertmanager: String,
    /// Text in the silence's comment naming this run and step: how an unrecorded id is found.
    pub marker: String,
    pub matchers: Vec<String>,
    #[serde(with = "super::time")]
    pub ends_at: DateTime<Utc>,
    /// Set once Alertmanager created it.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub expired: Option<Expired>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expired {
    #[serde(with = "super::time")]
    pub at: DateTime<Utc>,
    pub reason: String,
    /// Why expiring failed (Alertmanager still ends it at `ends_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

super::single_record!(SilenceRecord, "silence/");

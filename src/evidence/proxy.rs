//! The traffic state of a run's TCP proxy (channel `proxy/<name>`, one record overwritten at
//! each change), from which a resumed run starts the proxy again where clients expect it.

use super::{Evidence, from_payload, to_payload};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What clients see of a proxy: where it listens, where it sends, whether it is open.
/// Faults (toxics, `down`) are not part of it: they end with the process that held them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyState {
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// The step that last changed it.
    pub step: String,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

impl Evidence for ProxyState {
    const PREFIX: &'static str = "proxy/";

    fn key(&self) -> i64 {
        0
    }

    fn at(&self) -> DateTime<Utc> {
        self.at.unwrap_or_else(Utc::now)
    }

    fn encode(&self) -> Value {
        to_payload(self)
    }

    fn decode(_: i64, at: DateTime<Utc>, payload: Value) -> Result<Self, String> {
        Ok(ProxyState {
            at: Some(at),
            ..from_payload(payload)?
        })
    }
}

//! Canary records: every acknowledged write (channel `canary/<step>`, keyed by sequence
//! number, at its `written_at`), and the counts once the canary stopped (channel
//! `canary-stats/<step>`). `validation.rpo` judges the first against the recovered database.

use super::{Evidence, from_payload, to_payload};
use chrono::{DateTime, Utc};
use lifeboat_validation::canary::CanaryStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One acknowledged canary write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryAck {
    pub seq: i64,
    /// Taken just before the insert was sent: the instant the row stands for.
    pub written_at: DateTime<Utc>,
    pub acked_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct AckPayload {
    #[serde(with = "super::time")]
    acked_at: DateTime<Utc>,
}

impl From<lifeboat_validation::canary::Ack> for CanaryAck {
    fn from(a: lifeboat_validation::canary::Ack) -> Self {
        CanaryAck {
            seq: a.seq,
            written_at: a.written_at,
            acked_at: a.acked_at,
        }
    }
}

impl Evidence for CanaryAck {
    const PREFIX: &'static str = "canary/";

    fn key(&self) -> i64 {
        self.seq
    }

    fn at(&self) -> DateTime<Utc> {
        self.written_at
    }

    fn encode(&self) -> Value {
        to_payload(&AckPayload { acked_at: self.acked_at })
    }

    fn decode(key: i64, at: DateTime<Utc>, payload: Value) -> Result<Self, String> {
        let p: AckPayload = from_payload(payload)?;
        Ok(CanaryAck {
            seq: key,
            written_at: at,
            acked_at: p.acked_at,
        })
    }
}

/// A stopped canary's counts; its presence also tells a resume not to start it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryStopped {
    #[serde(flatten)]
    pub stats: CanaryStats,
    pub stopped_because: String,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

super::single_record!(CanaryStopped, "canary-stats/");

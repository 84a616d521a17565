//! Typed evidence: the records that steps and background work write beside a run's events
//! (injected faults and their reverts, canary acknowledgements, proxy state, the processes
//! an attempt started, Alertmanager silences), and the outputs the drill measurement reads.
//!
//! Each record type is written and read through the same struct and the same codec
//! ([`Evidence`]), so the writer (`src/steps/`) and the readers (`src/drill/`, the resume
//! path) cannot disagree about a field or a key. Records live in the journal's `records`
//! table under the channel `<prefix><subject>` (a step id, or a proxy name) and a key.

pub mod canary;
pub mod fault;
pub mod outcome;
pub mod process;
pub mod proxy;
pub mod silence;
pub mod time;

use crate::journal::{Journal, JournalError, SideRecord};
use crate::secrets::Redactor;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A record type of a run's side channels.
pub trait Evidence: Sized {
    /// Records about subject `s` live in the channel `{PREFIX}{s}`.
    const PREFIX: &'static str;
    /// Its key within the channel; writing a key again replaces the record.
    fn key(&self) -> i64;
    fn at(&self) -> DateTime<Utc>;
    fn encode(&self) -> Value;
    fn decode(key: i64, at: DateTime<Utc>, payload: Value) -> Result<Self, String>;
}

/// Writes records about `subject`, every string masked by `redactor`, in one transaction.
pub(crate) async fn write<E: Evidence>(
    journal: &Journal,
    redactor: &Redactor,
    run_id: &str,
    subject: &str,
    records: &[E],
) -> Result<(), JournalError> {
    let rows: Vec<SideRecord> = records
        .iter()
        .map(|r| SideRecord {
            key: r.key(),
            at: r.at(),
            payload: redactor.redact_value(&r.encode()),
        })
        .collect();
    journal.put_records(run_id, &format!("{}{subject}", E::PREFIX), &rows).await
}

/// The records about `subject`, by key.
pub async fn read<E: Evidence>(journal: &Journal, run_id: &str, subject: &str) -> Result<Vec<E>, JournalError> {
    let channel = format!("{}{subject}", E::PREFIX);
    journal
        .channel(run_id, &channel)
        .await?
        .into_iter()
        .map(|r| decode(run_id, &channel, r))
        .collect()
}

/// Every record of this type in the run, with its subject, by subject then key.
pub async fn read_all<E: Evidence>(journal: &Journal, run_id: &str) -> Result<Vec<(String, E)>, JournalError> {
    journal
        .records(run_id, E::PREFIX)
        .await?
        .into_iter()
        .map(|(channel, r)| {
            let subject = channel.strip_prefix(E::PREFIX).unwrap_or(&channel).to_owned();
            decode(run_id, &channel, r).map(|e| (subject, e))
        })
        .collect()
}

fn decode<E: Evidence>(run_id: &str, channel: &str, r: SideRecord) -> Result<E, JournalError> {
    E::decode(r.key, r.at, r.payload).map_err(|message| JournalError::CorruptRecord {
        run: run_id.to_owned(),
        channel: channel.to_owned(),
        key: r.key,
        message,
    })
}

/// A payload of a serde type, or why it is not one.
pub(crate) fn from_payload<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T, String> {
    serde_json::from_value(payload).map_err(|e| e.to_string())
}

pub(crate) fn to_payload<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// [`Evidence`] for a record that is the one record of its channel (key 0), a serde struct
/// whose `at: Option<DateTime<Utc>>` field is not stored in the payload (it is the row's time).
macro_rules! single_record {
    ($type:ty, $prefix:literal) => {
        impl $crate::evidence::Evidence for $type {
            const PREFIX: &'static str = $prefix;

            fn key(&self) -> i64 {
                0
            }

            fn at(&self) -> chrono::DateTime<chrono::Utc> {
                self.at.unwrap_or_else(chrono::Utc::now)
            }

            fn encode(&self) -> serde_json::Value {
                $crate::evidence::to_payload(self)
            }

            fn decode(_: i64, at: chrono::DateTime<chrono::Utc>, payload: serde_json::Value) -> Result<Self, String> {
                Ok(Self {
                    at: Some(at),
                    ..$crate::evidence::from_payload(payload)?
                })
            }
        }
    };
}
pub(crate) use single_record;

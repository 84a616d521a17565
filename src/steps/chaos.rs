//! What the `chaos.*` step kinds share: injecting once per idempotency key, journaling
//! the evidence (side channel `fault/<step>`: key 0 the injection, key 1 the revert, key 2
//! the intent of a fault whose revert is known before it is applied, key 3 what a resume
//! undid on the strength of such an intent),
//! and handing persistent faults to the run's background work so they are reverted
//! after their `duration`, on abort or rollback, by `chaos.revert`, or at the run's end.

use super::validation::timestamp;
use super::{Outputs, StepContext, StepError};
use crate::chaos::{ChaosError, DurableRevert, Injection};
use crate::engine::background::{self, Class};
use crate::journal::{Journal, SideRecord};
use chrono::Utc;
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

impl From<ChaosError> for StepError {
    fn from(error: ChaosError) -> Self {
        StepError {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

pub const FAULT_CHANNEL: &str = "fault/";
const INJECTED: i64 = 0;
const REVERTED: i64 = 1;
/// Journaled before a fault whose revert is known in advance (a link, a route, a fill
/// file), so that an engine dying between applying the fault and journaling it still
/// leaves `lifeboat resume` something to undo. `settled` once it needs no undoing.
const INTENT: i64 = 2;
/// What a resume undid on the strength of an unsettled intent (kept apart from the intent,
/// which the step's next attempt writes anew).
const UNDONE_AFTER_CRASH: i64 = 3;

pub fn fault_channel(step: &str) -> String {
    format!("{FAULT_CHANNEL}{step}")
}

/// Injects the fault unless this step already did (a resumed or retried step must not
/// kill a second process or fill a disk twice), journals it, and arranges its revert.
pub async fn activate<F>(cx: &StepContext, inject: F, duration: Option<Duration>, wait: bool) -> Result<Outputs, StepError>
where
    F: Future<Output = Result<Injection, ChaosError>>,
{
    activate_with_intent(cx, None, inject, duration, wait).await
}

/// [`activate`] for a fault whose durable revert is known before it is applied: that revert
/// is journaled first.
pub async fn activate_with_intent<F>(
    cx: &StepContext,
    intent: Option<DurableRevert>,
    inject: F,
    duration: Option<Duration>,
    wait: bool,
) -> Result<Outputs, StepError>
where
    F: Future<Output = Result<Injection, ChaosError>>,
{
    let channel = fault_channel(&cx.step_id);
    let earlier = cx.journal.channel(&cx.run_id, &channel).await.map_err(journal_error)?;
    if let Some(record) = earlier.iter().find(|r| r.key == INJECTED) {
        tracing::info!(run = %cx.run_id, step = %cx.step_id, "fault already injected by an earlier attempt; not injecting again");
        return Ok(outputs_of_record(&record.payload));
    }
    if let Some(intent) = &intent {
        put_intent(&cx.journal, &cx.run_id, &cx.step_id, intent, None)
            .await
            .map_err(journal_error)?;
    }
    let injected = if intent.is_some() {
        // Not raced against cancellation: a fault half applied when its future is dropped
        // (work on a blocking thread goes on) would escape both the intent and the revert.
        // A cancelled run reverts it once it is journaled.
        inject.await
    } else {
        tokio::select! {
            r = inject => r,
            _ = cx.cancel.cancelled() => Err(ChaosError::NotApplied("cancelled".into())),
        }
    };
    let injection = match (injected, &intent) {
        (Ok(injection), _) => injection,
        (Err(e), None) => return Err(e.into()),
        (Err(e), Some(intent)) => {
            // Not applied: nothing for a resume to undo (it might be someone else's state).
            let _ = put_intent(&cx.journal, &cx.run_id, &cx.step_id, intent, Some(&format!("not applied: {e}"))).await;
            return Err(e.into());
        }
    };
    let Injection {
        injected_at,
        evidence,
        revert,
    } = injection;
    let reverts_at = duration.filter(|_| revert.is_some()).map(|d| injected_at + d);
    let payload = json!({
        "injected_at": timestamp(injected_at),
        "evidence": evidence,
        "persistent": revert.is_some(),
        "reverts_at": reverts_at.map(timestamp),
        "durable_revert": revert.as_ref().and_then(|r| r.durable.clone()),
    });
    let record = SideRecord {
        key: INJECTED,
        at: injected_at,
        payload: payload.clone(),
    };
    if let Err(e) = cx.journal.put_records(&cx.run_id, &channel, &[record]).await {
        // The fault is in effect but unrecorded: undo it rather than leave it unowned.
        if let Some(r) = revert {
            let _ = r.undo.await;
        }
        return Err(journal_error(e));
    }
    tracing::warn!(run = %cx.run_id, step = %cx.step_id, injected_at = %injected_at, "fault injected");
    if let Some(revert) = revert {
        let (journal, run_id, step) = (cx.journal.clone(), cx.run_id.clone(), cx.step_id.clone());
        background::register(
            &cx.run_id,
            &cx.step_id,
            Class::Fault,
            Box::new(move |reason| {
                Box::pin(async move {
                    let outcome = revert.undo.await;
                    record_revert(&journal, &run_id, &step, &reason, outcome).await;
                })
            }),
        );
        if let Some(d) = duration {
            let (run_id, step) = (cx.run_id.clone(), cx.step_id.clone());
            let timer = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                background::release_step(&run_id, &step, Class::Fault, "its duration elapsed").await;
            });
            if wait {
                tokio::select! {
                    _ = timer => {}
                    _ = cx.cancel.cancelled() => {
                        background::release_step(&cx.run_id, &cx.step_id, Class::Fault, "the step was cancelled").await;
                        return Err(StepError::retryable("cancelled"));
                    }
                }
            }
        }
    }
    let mut out = outputs_of_record(&payload);
    if wait {
        let records = cx.journal.channel(&cx.run_id, &channel).await.map_err(journal_error)?;
        if let Some(r) = records.iter().find(|r| r.key == REVERTED) {
            out.insert("reverted_at".into(), r.payload["reverted_at"].clone());
            out.insert("revert".into(), r.payload.clone());
        }
    }
    Ok(out)
}

async fn put_intent(
    journal: &Journal,
    run_id: &str,
    step: &str,
    revert: &DurableRevert,
    settled: Option<&str>,
) -> Result<(), crate::journal::JournalError> {
    let record = SideRecord {
        key: INTENT,
        at: Utc::now(),
        payload: json!({ "durable_revert": revert, "settled": settled }),
    };
    journal.put_records(run_id, &fault_channel(step), &[record]).await
}

async fn record_revert(journal: &Journal, run_id: &str, step: &str, reason: &str, outcome: Result<serde_json::Map<String, Value>, String>) {
    let reverted_at = Utc::now();
    let payload = match &outcome {
        Ok(observed) => json!({ "reverted_at": timestamp(reverted_at), "reason": reason, "observed": observed }),
        Err(e) => json!({ "reverted_at": timestamp(reverted_at), "reason": reason, "error": e }),
    };
    match &outcome {
        Ok(_) => tracing::info!(run = %run_id, step = %step, reason = %reason, "fault reverted"),
        Err(e) => tracing::error!(run = %run_id, step = %step, reason = %reason, error = %e, "fault revert failed"),
    }
    let record = SideRecord {
        key: REVERTED,
        at: reverted_at,
        payload,
    };
    if let Err(e) = journal.put_records(run_id, &fault_channel(step), &[record]).await {
        tracing::error!(run = %run_id, step = %step, error = %e, "could not journal a fault's revert");
    }
}

/// After a crash: undoes the injections of `run_id` that were never reverted and can be
/// undone from here (a stopped process, a fill file). In-process faults died with the
/// process that held them; they are recorded as such.
pub async fn revert_leftovers(journal: &Journal, run_id: &str) -> Result<usize, crate::journal::JournalError> {
    let records = journal.records(run_id, FAULT_CHANNEL).await?;
    let mut undone = 0;
    for (channel, record) in records.iter().filter(|(_, r)| r.key == INJECTED) {
        if records.iter().any(|(c, r)| c == channel && r.key == REVERTED) {
            continue;
        }
        let step = channel.trim_start_matches(FAULT_CHANNEL);
        let durable: Option<DurableRevert> = serde_json::from_value(record.payload["durable_revert"].clone()).ok().flatten();
        let outcome = match durable {
            Some(d) => d.apply().map(|note| crate::chaos::evidence([("note", note.into())])),
            None if record.payload["persistent"] == Value::Bool(true) => Ok(crate::chaos::evidence([(
                "note",
                "ended with the engine process that held it".into(),
            )])),
            None => continue,
        };
        record_revert(journal, run_id, step, "reverted when the run was resumed after a crash", outcome).await;
        undone += 1;
    }
    // Faults that may have been applied but were never journaled as injected.
    for (channel, record) in records.iter().filter(|(_, r)| r.key == INTENT && r.payload["settled"].is_null()) {
        if records.iter().any(|(c, r)| c == channel && r.key == INJECTED) {
            continue;
        }
        let step = channel.trim_start_matches(FAULT_CHANNEL);
        let Ok(revert) = serde_json::from_value::<DurableRevert>(record.payload["durable_revert"].clone()) else {
            continue;
        };
        let note = match revert.apply() {
            Ok(note) => note,
            Err(e) => format!("undoing failed: {e}"),
        };
        tracing::warn!(run = %run_id, step = %step, note = %note, "undid a fault the interrupted owner may have applied without journaling it");
        put_intent(journal, run_id, step, &revert, Some("undone when the run was resumed")).await?;
        let record = SideRecord {
            key: UNDONE_AFTER_CRASH,
            at: Utc::now(),
            payload: json!({ "durable_revert": revert, "note": note }),
        };
        journal.put_records(run_id, channel, &[record]).await?;
        undone += 1;
    }
    Ok(undone)
}

fn outputs_of_record(payload: &Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("injected_at".into(), payload["injected_at"].clone());
    if !payload["reverts_at"].is_null() {
        out.insert("reverts_at".into(), payload["reverts_at"].clone());
    }
    if let Value::Object(evidence) = &payload["evidence"] {
        for (k, v) in evidence {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out
}

fn journal_error(e: crate::journal::JournalError) -> StepError {
    StepError::retryable(format!("journal: {e}"))
}

/// Where a step's fault proxy listens and forwards to.
pub struct ProxySpec<'a> {
    pub name: &'a str,
    pub listen: &'a Option<super::Text>,
    pub upstream: &'a Option<super::Text>,
    /// What `upstream` looks like, for the error when it is missing.
    pub upstream_hint: &'a str,
}

/// The run's fault proxy called `spec.name`: the first step naming it starts it (`listen`,
/// by default a free loopback port, → `upstream`), and it lives until the run ends.
pub async fn named_proxy<T, Fut>(
    proxies: &'static crate::engine::background::RunServices<T>,
    cx: &StepContext,
    spec: ProxySpec<'_>,
    start: impl FnOnce(String, String) -> Fut,
    stop: fn(&T),
) -> Result<T, StepError>
where
    T: Clone + Send + 'static,
    Fut: Future<Output = Result<T, StepError>>,
{
    let ProxySpec {
        name,
        listen,
        upstream,
        upstream_hint,
    } = spec;
    if let Some(p) = proxies.get(&cx.run_id, name) {
        return Ok(p);
    }
    let upstream = upstream.as_ref().ok_or_else(|| {
        StepError::terminal(format!(
            "proxy `{name}` is not running in this run; give `upstream` ({upstream_hint}) to start it"
        ))
    })?;
    let listen = listen.as_ref().map_or("127.0.0.1:0", |l| l.0.as_str());
    let proxy = start(listen.to_owned(), upstream.0.clone()).await?;
    proxies.insert(&cx.run_id, &cx.step_id, name, proxy.clone(), stop);
    Ok(proxy)
}

/// An optional `duration` option.
pub fn optional_duration(value: &Option<crate::plan::model::HumanDuration>) -> Result<Option<Duration>, StepError> {
    value
        .as_ref()
        .map(|d| crate::plan::duration::parse(&d.0).map_err(|e| StepError::terminal(format!("duration: {e}"))))
        .transpose()
}

/// Sizes such as `512MiB`, `2GB`, `4096` (bytes).
pub fn parse_size(text: &str, option: &str) -> Result<u64, StepError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" | "K" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" | "M" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        _ => {
            return Err(StepError::terminal(format!(
                "{option}: `{text}` is not a size; use e.g. 512MiB, 2GiB or a number of bytes"
            )));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| StepError::terminal(format!("{option}: `{text}` is not a size; use e.g. 512MiB")))?;
    Ok((n * factor as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("512MiB", "m").unwrap(), 512 << 20);
        assert_eq!(super::parse_size("1.5GB", "m").unwrap(), 1_500_000_000);
        assert_eq!(super::parse_size("4096", "m").unwrap(), 4096);
        assert!(super::parse_size("lots", "m").is_err());
    }
}

//! `validation.canary`: start the RPO canary, a background writer that outlives this
//! step. Every acknowledged write goes to the journal's side channel
//! `canary/<step>` (key = seq, at = written_at), which `validation.rpo` judges against
//! the recovered database. Stopped by `validation.canary_stop` or the end of the run.
//!
//! After an engine crash, `lifeboat resume` runs this adapter again for a canary that was
//! writing ([`super::BACKGROUND_KINDS`]): it continues after the last acknowledgement in the
//! journal, skipping numbers that rows written but not journaled before the crash hold.

use super::validation::{duration_or, timestamp};
use super::{Outputs, StepContext, StepError, Text};
use crate::engine::background::{self, Class};
use crate::journal::{Journal, SideRecord};
use crate::plan::model::HumanDuration;
use lifeboat_validation::canary::{self, Ack, CanaryOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The protected database, `postgres://user@host:port/db`.
    pub dsn: Text,
    /// Table of canary rows, created if missing (default `lifeboat_canary`).
    #[serde(default = "default_table")]
    pub table: String,
    /// Time between writes (default 50ms).
    #[serde(default)]
    pub interval: Option<HumanDuration>,
}

pub fn default_table() -> String {
    "lifeboat_canary".into()
}

/// Acknowledgements are journaled in batches at this pace.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

pub fn acks_channel(step: &str) -> String {
    format!("canary/{step}")
}

pub fn stats_channel(step: &str) -> String {
    format!("canary-stats/{step}")
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let interval = duration_or(&options.interval, "interval", Duration::from_millis(50))?;
    if interval < Duration::from_millis(5) {
        return Err(StepError::terminal("interval: at least 5ms"));
    }
    let canary_options = CanaryOptions {
        dsn: options.dsn.0.clone(),
        table: options.table.clone(),
        run_id: cx.run_id.clone(),
        interval,
    };
    let mut out = Outputs::new();
    out.insert("table".into(), options.table.clone().into());
    out.insert("canary_id".into(), cx.run_id.clone().into());
    out.insert("interval_ms".into(), (interval.as_millis() as u64).into());
    if background::is_active(&cx.run_id, &cx.step_id, Class::Canary) {
        return Ok(out);
    }
    let stopped = cx
        .journal
        .channel(&cx.run_id, &stats_channel(&cx.step_id))
        .await
        .map_err(|e| StepError::retryable(format!("reading whether the canary was stopped: {e}")))?;
    if !stopped.is_empty() {
        // Restarted after a crash, but the canary had been stopped before it.
        return Ok(out);
    }
    let acked = cx
        .journal
        .channel(&cx.run_id, &acks_channel(&cx.step_id))
        .await
        .map_err(|e| StepError::retryable(format!("reading the canary's acknowledgements: {e}")))?;
    let first_seq = match acked.iter().map(|r| r.key).max() {
        // A restart after a crash: the table exists, and the database may be down right
        // now (the disaster), which must not keep the writer from starting. Rows written
        // but not journaled before the crash hold the next numbers; the writer skips them.
        Some(last) => last + 1,
        None => canary::prepare(&canary_options).await?,
    };
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let writer = canary::start(canary_options, first_seq, acks_tx)?;
    let flusher = tokio::spawn(flush_acks(
        cx.journal.clone(),
        cx.run_id.clone(),
        acks_channel(&cx.step_id),
        acks_rx,
    ));
    let (journal, run_id, step) = (cx.journal.clone(), cx.run_id.clone(), cx.step_id.clone());
    background::register(
        &cx.run_id,
        &cx.step_id,
        Class::Canary,
        Box::new(move |reason| {
            Box::pin(async move {
                let stats = writer.stop().await;
                // The writer dropped its sender: the flusher drains what is left and ends.
                let _ = flusher.await;
                tracing::info!(run = %run_id, step = %step, acknowledged = stats.acknowledged, failed = stats.failed, reason = %reason, "canary stopped");
                let mut payload = serde_json::to_value(&stats).unwrap_or_default();
                payload["stopped_because"] = reason.into();
                let record = SideRecord {
                    key: 0,
                    at: chrono::Utc::now(),
                    payload,
                };
                if let Err(e) = journal.put_records(&run_id, &stats_channel(&step), &[record]).await {
                    tracing::error!(run = %run_id, step = %step, error = %e, "could not journal the canary's counts");
                }
            })
        }),
    );
    out.insert("first_seq".into(), first_seq.into());
    out.insert("started_at".into(), timestamp(chrono::Utc::now()));
    Ok(out)
}

async fn flush_acks(journal: Journal, run_id: String, channel: String, mut acks: mpsc::UnboundedReceiver<Ack>) {
    let mut batch: Vec<SideRecord> = Vec::new();
    let mut open = true;
    while open {
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        loop {
            match tokio::time::timeout_at(deadline, acks.recv()).await {
                Ok(Some(ack)) => batch.push(SideRecord {
                    key: ack.seq,
                    at: ack.written_at,
                    payload: serde_json::json!({ "acked_at": timestamp(ack.acked_at) }),
                }),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        // A failed write keeps the batch for the next flush: acknowledgements must not
        // vanish, or lost rows would go uncounted.
        match journal.put_records(&run_id, &channel, &batch).await {
            Ok(()) => batch.clear(),
            Err(e) => {
                tracing::warn!(run = %run_id, error = %e, pending = batch.len(), "could not journal canary acknowledgements; will retry")
            }
        }
    }
}

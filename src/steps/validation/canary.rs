//! `validation.canary`: start the RPO canary, a background writer that outlives this
//! step. Every acknowledged write goes to the run's evidence
//! ([`CanaryAck`], channel `canary/<step>`), which `validation.rpo` judges against
//! the recovered database. Stopped by `validation.canary_stop` or the end of the run.
//!
//! After an engine crash, `lifeboat resume` runs this adapter again for a canary that was
//! writing ([`crate::steps::BACKGROUND_KINDS`]): it continues after the last acknowledgement in the
//! journal, skipping numbers that rows written but not journaled before the crash hold.

use crate::evidence::canary::{CanaryAck, CanaryStopped};
use crate::plan::duration::{HOUR_MS, HumanDuration};
use crate::steps::background::Class;
use crate::steps::{Outputs, RunHandle, StepContext, StepError, timestamp};
use lifeboat_validation::canary::{self, Ack, CanaryOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The protected database, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// Table of canary rows, created if missing (default `lifeboat_canary`).
    #[serde(default = "default_table")]
    pub table: String,
    /// Time between writes (default 50ms, at least 5ms).
    #[serde(default)]
    pub interval: Option<HumanDuration<5, HOUR_MS>>,
}

pub fn default_table() -> String {
    "lifeboat_canary".into()
}

/// Acknowledgements are journaled in batches at this pace.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let interval = options.interval.map_or(Duration::from_millis(50), |d| d.get());
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
    if cx.run.holds(&cx.step_id, Class::Canary) {
        return Ok(out);
    }
    if !cx.records::<CanaryStopped>().await?.is_empty() {
        // Restarted after a crash, but the canary had been stopped before it.
        return Ok(out);
    }
    let acked = cx.records::<CanaryAck>().await?;
    let first_seq = match acked.iter().map(|a| a.seq).max() {
        // A restart after a crash: the table exists, and the database may be down right
        // now (the disaster), which must not keep the writer from starting. Rows written
        // but not journaled before the crash hold the next numbers; the writer skips them.
        Some(last) => last + 1,
        None => canary::prepare(&canary_options).await?,
    };
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let mut writer = canary::start(canary_options, first_seq, acks_tx)?;
    let crashed = writer.crashed();
    let watcher = cx.run.clone();
    cx.run.supervise(format!("the canary of step {}", cx.step_id), async move {
        if let Some(reason) = crashed.await {
            watcher.report_failure(reason);
        }
    });
    let flusher = tokio::spawn(flush_acks(cx.run.clone(), cx.step_id.clone(), acks_rx));
    let (run, step) = (cx.run.clone(), cx.step_id.clone());
    cx.run.hold(
        &cx.step_id,
        Class::Canary,
        Box::new(move |reason| {
            Box::pin(async move {
                let stats = writer.stop().await;
                // The writer dropped its sender: the flusher drains what is left and ends.
                let flushed = flusher.await;
                let stats = match (stats, flushed) {
                    (Ok(stats), Ok(())) => stats,
                    (Err(e), _) => return run.report_failure(e.to_string()),
                    (_, Err(e)) => {
                        return run.report_failure(format!(
                            "the canary's journal writer crashed: {}",
                            crate::steps::context::panic_message(e)
                        ));
                    }
                };
                tracing::info!(run = %run.run_id(), step = %step, acknowledged = stats.acknowledged, failed = stats.failed, reason = %reason, "canary stopped");
                let record = CanaryStopped {
                    stats,
                    stopped_because: reason,
                    at: Some(chrono::Utc::now()),
                };
                if let Err(e) = run.record(&step, &record).await {
                    tracing::error!(run = %run.run_id(), step = %step, error = %e, "could not journal the canary's counts");
                }
            })
        }),
    );
    out.insert("first_seq".into(), first_seq.into());
    out.insert("started_at".into(), timestamp(chrono::Utc::now()));
    Ok(out)
}

async fn flush_acks(run: RunHandle, step: String, mut acks: mpsc::UnboundedReceiver<Ack>) {
    let mut batch: Vec<CanaryAck> = Vec::new();
    let mut open = true;
    while open {
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        loop {
            match tokio::time::timeout_at(deadline, acks.recv()).await {
                Ok(Some(ack)) => batch.push(ack.into()),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        // A failed write keeps the batch for the next flush: acknowledgements must not
        // vanish, or lost rows would go uncounted.
        match run.record_all(&step, &batch).await {
            Ok(()) => batch.clear(),
            Err(e) => {
                tracing::warn!(run = %run.run_id(), error = %e, pending = batch.len(), "could not journal canary acknowledgements; will retry")
            }
        }
    }
}

//! `alertmanager.silence`: silence the alerts a drill is expected to cause, for exactly the
//! run. The intent is journaled before the silence is created; the silence is expired when
//! the run ends, whichever way (completed, failed, aborted, rolled back), after everything
//! else the run holds. A resumed run adopts the silence its dead owner created (found by id,
//! or by the marker in its comment), so its own end expires it; nothing creates a second
//! one. Alertmanager itself ends it at `duration` whatever happens to lifeboat.

use crate::evidence::silence::{Expired, SilenceRecord};
use crate::plan::model::Limit;
use crate::steps::background::Class;
use crate::steps::monitoring::{AuthOption, LabelMatcher};
use crate::steps::{Outputs, RunHandle, StepContext, StepError, Text, timestamp};
use chrono::Utc;
use lifeboat_validation::monitoring::alertmanager::{Alertmanager, NewSilence};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Alertmanager's root, e.g. `http://alertmanager:9093`.
    pub url: Text,
    /// The alerts to silence, e.g. `["job=\"orders-db\"", "severity=~\"page|critical\""]`.
    pub matchers: Vec<LabelMatcher>,
    /// Why (the run and step are added). Default: "DR drill".
    #[serde(default)]
    pub comment: Option<String>,
    /// Who (default `lifeboat`).
    #[serde(default)]
    pub created_by: Option<Text>,
    /// The longest the silence may last, even if lifeboat never comes back (default 1h).
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub auth: Option<AuthOption>,
    #[serde(default)]
    pub request_timeout: Option<Limit>,
}

const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let alertmanager = super::client(&o.url.0, &o.auth, o.request_timeout)?;
    let matchers = super::matchers(&o.matchers, "a silence")?;
    let marker = format!("(lifeboat run {}, step {})", cx.run_id, cx.step_id);
    let earlier = cx.records::<SilenceRecord>().await?.pop().filter(|r| r.expired.is_none());
    let (record, adopted) = match adopt(&alertmanager, earlier).await? {
        Some(record) => (record, true),
        None => {
            let duration = o.duration.map_or(DEFAULT_DURATION, |d| d.get());
            let mut record = SilenceRecord {
                alertmanager: alertmanager.url().to_owned(),
                marker: marker.clone(),
                matchers: matchers.iter().map(ToString::to_string).collect(),
                ends_at: Utc::now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(1)),
                id: None,
                expired: None,
                at: None,
            };
            // Journaled first: a silence created by an engine that dies before recording its
            // id is still found (by the marker) and expired.
            cx.record(&record).await?;
            let new = NewSilence {
                matchers,
                ends_at: record.ends_at,
                created_by: o.created_by.as_ref().map_or("lifeboat".to_owned(), |c| c.0.clone()),
                comment: format!("{} {marker}", o.comment.as_deref().unwrap_or("DR drill")),
            };
            let id = alertmanager.create_silence(&new).await?;
            record.id = Some(id.clone());
            if let Err(e) = cx.record(&record).await {
                let _ = alertmanager.expire(&id).await;
                return Err(e);
            }
            tracing::info!(run = %cx.run_id, step = %cx.step_id, silence = %id, ends_at = %record.ends_at, "alerts silenced");
            (record, false)
        }
    };
    let id = record.id.clone().unwrap_or_default();
    hold(&cx.run, &cx.step_id, alertmanager.clone(), record.clone());
    let mut out = Outputs::new();
    out.insert("silence_id".into(), id.into());
    out.insert("alertmanager".into(), record.alertmanager.into());
    out.insert("matchers".into(), record.matchers.into());
    out.insert("ends_at".into(), timestamp(record.ends_at));
    out.insert("adopted".into(), adopted.into());
    Ok(out)
}

/// The silence an earlier attempt or a dead owner created and that is still in force, with
/// its id recorded.
async fn adopt(alertmanager: &Alertmanager, earlier: Option<SilenceRecord>) -> Result<Option<SilenceRecord>, StepError> {
    let Some(mut record) = earlier else {
        return Ok(None);
    };
    let found = match &record.id {
        Some(id) => alertmanager.silence(id).await?,
        None => find_by_marker(alertmanager, &record.marker).await?,
    };
    match found {
        Some(silence) if !silence.is_expired() => {
            record.id = Some(silence.id);
            Ok(Some(record))
        }
        _ => Ok(None),
    }
}

async fn find_by_marker(
    alertmanager: &Alertmanager,
    marker: &str,
) -> Result<Option<lifeboat_validation::monitoring::alertmanager::Silence>, StepError> {
    Ok(alertmanager
        .silences()
        .await?
        .into_iter()
        .find(|s| s.comment.contains(marker) && !s.is_expired()))
}

/// Keeps the silence until the run releases it (at its end), then expires it.
fn hold(run: &RunHandle, step: &str, alertmanager: Alertmanager, record: SilenceRecord) {
    if run.holds(step, Class::Silence) {
        return;
    }
    let (handle, subject) = (run.clone(), step.to_owned());
    run.hold(
        step,
        Class::Silence,
        Box::new(move |reason| Box::pin(async move { expire(&handle, &subject, &alertmanager, record, &reason).await })),
    );
}

async fn expire(run: &RunHandle, step: &str, alertmanager: &Alertmanager, mut record: SilenceRecord, reason: &str) {
    let id = match &record.id {
        Some(id) => Some(id.clone()),
        None => find_by_marker(alertmanager, &record.marker).await.ok().flatten().map(|s| s.id),
    };
    let error = match &id {
        Some(id) => alertmanager.expire(id).await.err().map(|e| e.to_string()),
        None => None,
    };
    match &error {
        None => tracing::info!(run = %run.run_id(), step = %step, silence = ?id, reason = %reason, "silence expired"),
        Some(e) => {
            tracing::error!(run = %run.run_id(), step = %step, silence = ?id, error = %e, "could not expire a silence; Alertmanager ends it at its end time")
        }
    }
    record.id = id;
    record.expired = Some(Expired {
        at: Utc::now(),
        reason: reason.to_owned(),
        error,
    });
    record.at = None;
    if let Err(e) = run.record(step, &record).await {
        tracing::error!(run = %run.run_id(), step = %step, error = %e, "could not journal a silence's expiry");
    }
}

/// After a crash: takes over the silence a dead owner created for this step, if it is
/// still in force, so that this run's end expires it (whether the run goes on or was
/// resumed only to stop). Returns whether there was one.
/// `with` renders the step's options (only called when there is a silence to take over).
pub async fn readopt(with: impl FnOnce() -> Result<serde_json::Value, String>, cx: &StepContext) -> Result<bool, StepError> {
    let Some(earlier) = cx.records::<SilenceRecord>().await?.pop().filter(|r| r.expired.is_none()) else {
        return Ok(false);
    };
    let o: Options = crate::steps::options(with().map_err(|e| StepError::terminal(format!("evaluating options: {e}")))?)?;
    let alertmanager = super::client(&o.url.0, &o.auth, o.request_timeout)?;
    match adopt(&alertmanager, Some(earlier)).await? {
        Some(record) => {
            hold(&cx.run, &cx.step_id, alertmanager, record);
            Ok(true)
        }
        None => Ok(false),
    }
}

//! `alertmanager.expect_alert`: the drill asserts that monitoring saw the disaster: an alert
//! matching the matchers started firing after `since` (the disaster) and reached
//! Alertmanager within `within`; optionally that a silence suppressed it (seen, but it paged
//! no one) or that none did (it paged).

use crate::plan::model::{Interval, Limit};
use crate::steps::monitoring::{AuthOption, LabelMatcher};
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of, parse_time};
use chrono::{DateTime, Utc};
use lifeboat_validation::monitoring::alertmanager::Alert;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Alertmanager's root, e.g. `http://alertmanager:9093`.
    pub url: Text,
    /// The alert expected, e.g. `["alertname=\"InstanceDown\"", "job=\"orders\""]`.
    pub matchers: Vec<LabelMatcher>,
    /// The disaster, usually `${{ steps.<fault>.outputs.injected_at }}`: the alert must have
    /// started after it (default: when this step started).
    #[serde(default)]
    pub since: Option<Text>,
    /// How long after `since` the alert may take to reach Alertmanager (default 5m).
    #[serde(default)]
    pub within: Option<Limit>,
    /// `true`: a silence must suppress it (seen, paged no one); `false`: none may (it paged).
    /// Unset: either.
    #[serde(default)]
    pub silenced: Option<bool>,
    /// Time between looks (default 1s).
    #[serde(default)]
    pub interval: Option<Interval>,
    #[serde(default)]
    pub auth: Option<AuthOption>,
    #[serde(default)]
    pub request_timeout: Option<Limit>,
}

/// The alert that satisfied the expectation.
#[derive(Debug, Serialize)]
struct Seen {
    fingerprint: String,
    labels: BTreeMap<String, String>,
    #[serde(with = "crate::evidence::time")]
    starts_at: DateTime<Utc>,
    state: String,
    silenced_by: Vec<String>,
    #[serde(with = "crate::evidence::time")]
    since: DateTime<Utc>,
    #[serde(with = "crate::evidence::time")]
    seen_at: DateTime<Utc>,
    /// From `since` to the alert's start: how long monitoring took to notice.
    fired_after_ms: i64,
    /// From `since` to lifeboat seeing it in Alertmanager.
    seen_after_ms: i64,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let alertmanager = super::client(&o.url.0, &o.auth, o.request_timeout)?;
    let matchers = super::matchers(&o.matchers, "an expected alert")?;
    let since = match &o.since {
        Some(t) => parse_time("since", t, "use the disaster step's `injected_at` output")?,
        None => Utc::now(),
    };
    let within = o.within.map_or(Duration::from_secs(300), |d| d.get());
    let deadline = since + chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
    let interval = o.interval.map_or(Duration::from_secs(1), |d| d.get());
    let wanted: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    loop {
        let last;
        match alertmanager.alerts(&matchers).await {
            Ok(alerts) => match pick(&alerts, since, o.silenced) {
                Ok(alert) => return Ok(outputs_of(&seen(alert, since))),
                Err(why) => last = why,
            },
            Err(e) if !e.is_retryable() => return Err(e.into()),
            Err(e) => last = e.to_string(),
        }
        if Utc::now() >= deadline {
            return Err(StepError::terminal(format!(
                "no alert matching {{{}}} {} within {within:?} of {since}: {last}",
                wanted.join(", "),
                match o.silenced {
                    Some(true) => "fired and was silenced",
                    Some(false) => "fired unsilenced",
                    None => "fired",
                }
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
        }
    }
}

/// The first alert that started after `since` in the wanted state, or why there is none.
fn pick(alerts: &[Alert], since: DateTime<Utc>, silenced: Option<bool>) -> Result<&Alert, String> {
    let started_after: Vec<&Alert> = alerts.iter().filter(|a| a.starts_at.is_some_and(|t| t >= since)).collect();
    if started_after.is_empty() {
        return Err(match alerts.iter().filter_map(|a| a.starts_at).min() {
            Some(t) => format!("the only matching alerts started at {t}, before {since}"),
            None => "Alertmanager holds no matching alert".into(),
        });
    }
    let is_silenced = |a: &&Alert| a.state == "suppressed" && !a.silenced_by.is_empty();
    let found = match silenced {
        None => started_after.first().copied(),
        Some(true) => started_after.iter().copied().find(|a| is_silenced(a)),
        Some(false) => started_after.iter().copied().find(|a| a.state == "active"),
    };
    found.ok_or_else(|| {
        let states: Vec<String> = started_after
            .iter()
            .map(|a| format!("{} ({}, silenced by {:?})", a.fingerprint, a.state, a.silenced_by))
            .collect();
        format!("matching alerts are in the wrong state: {}", states.join("; "))
    })
}

fn seen(alert: &Alert, since: DateTime<Utc>) -> Seen {
    let starts_at = alert.starts_at.unwrap_or(since);
    let seen_at = Utc::now();
    Seen {
        fingerprint: alert.fingerprint.clone(),
        labels: alert.labels.clone(),
        starts_at,
        state: alert.state.clone(),
        silenced_by: alert.silenced_by.clone(),
        since,
        seen_at,
        fired_after_ms: (starts_at - since).num_milliseconds(),
        seen_after_ms: (seen_at - since).num_milliseconds(),
    }
}

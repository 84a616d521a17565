//! `validation.prometheus_range`: a condition that held at every point of a window, e.g. "no
//! 5xx burst above 5% in the 5 minutes after recovery". A window that ends in the future is
//! waited for; the violations found are listed with their series and times.

use crate::plan::model::{Interval, Limit};
use crate::steps::monitoring::{AuthOption, Condition, OnEmptyOption, REQUEST_TIMEOUT, auth};
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of, parse_time};
use chrono::Utc;
use lifeboat_validation::ValidationError;
use lifeboat_validation::monitoring::prometheus::{OnEmpty, Prometheus, check_range};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Prometheus-compatible API's root, e.g. `http://prometheus:9090`.
    pub url: Text,
    /// A query evaluated at every point of the window.
    pub query: String,
    /// What every point must be: `< 0.05`, `== 1`, `within [a, b]`.
    pub condition: Condition,
    /// How long the window is.
    pub window: Limit,
    /// Where the window starts, e.g. `${{ steps.recovered.outputs.passed_at }}` (the window
    /// after recovery). Without it the window ends now.
    #[serde(default)]
    pub start: Option<Text>,
    /// Time between points (default: a sixtieth of the window, at least 1s).
    #[serde(default)]
    pub resolution: Option<Interval>,
    /// A window without data: `fail` (default) or `pass`.
    #[serde(default)]
    pub on_empty: OnEmptyOption,
    #[serde(default)]
    pub auth: Option<AuthOption>,
    /// Time limit of the query (default 10s).
    #[serde(default)]
    pub request_timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let on_empty = match OnEmpty::from(o.on_empty) {
        OnEmpty::Wait => {
            return Err(StepError::terminal(
                "on_empty: `wait` means nothing for a window that is over; use `fail` or `pass`",
            ));
        }
        other => other,
    };
    let window = o.window.get();
    let resolution = o.resolution.map_or((window / 60).max(Duration::from_secs(1)), |r| r.get());
    let span = chrono::Duration::from_std(window).map_err(|_| StepError::terminal("window: too long"))?;
    let (start, end) = match &o.start {
        Some(start) => {
            let start = parse_time("start", start, "use a time output such as a probe's `passed_at`")?;
            (start, start + span)
        }
        None => (Utc::now() - span, Utc::now()),
    };
    // Samples land up to a scrape after their instant: the last point is read once it has.
    let settled = end + chrono::Duration::from_std(resolution).unwrap_or_default();
    if let Ok(wait) = (settled - Utc::now()).to_std() {
        tracing::info!(run = %cx.run_id, step = %cx.step_id, wait_ms = wait.as_millis() as u64, "waiting for the window to end");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
        }
    }
    let prometheus = Prometheus::new(&o.url.0, auth(&o.auth), o.request_timeout.map_or(REQUEST_TIMEOUT, |d| d.get()))?;
    let report = check_range(&prometheus, &o.query, &o.condition.0, (start, end, resolution), on_empty)
        .await
        .map_err(|e| match e {
            // The window is over: asking again gives the same points.
            ValidationError::NotPassing(broken) => StepError::terminal(broken),
            other => other.into(),
        })?;
    Ok(outputs_of(&report))
}

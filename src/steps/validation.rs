//! What the `validation.*` step kinds share: error conversion, option durations, and
//! polling a probe until it passes (its first passing time is the `recovered` evidence).

use super::{Outputs, StepContext, StepError};
use crate::plan::model::HumanDuration;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_validation::ValidationError;
use lifeboat_validation::probe::{self, Probe};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

impl From<ValidationError> for StepError {
    fn from(error: ValidationError) -> Self {
        StepError {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

/// An optional duration option, or its default.
pub fn duration_or(value: &Option<HumanDuration>, name: &str, default: Duration) -> Result<Duration, StepError> {
    match value {
        None => Ok(default),
        Some(d) => crate::plan::duration::parse(&d.0).map_err(|e| StepError::terminal(format!("{name}: {e}"))),
    }
}

/// Timestamps in outputs: RFC 3339, UTC, microseconds — precise enough for RTO/RPO.
pub fn timestamp(t: DateTime<Utc>) -> serde_json::Value {
    t.to_rfc3339_opts(SecondsFormat::Micros, true).into()
}

/// A serializable value as step outputs.
pub fn outputs_of(value: &impl Serialize) -> Outputs {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Outputs::new(),
    }
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a probe step polls; the same four options on every probe kind.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UntilOption {
    /// Until the check passes (default): recovery.
    #[default]
    Passing,
    /// Until it fails: detecting an outage.
    Failing,
}

pub struct Polling<'a> {
    pub interval: &'a Option<HumanDuration>,
    pub timeout: &'a Option<HumanDuration>,
    pub until: &'a UntilOption,
    pub consecutive: Option<u32>,
}

/// Polls `probe` every `interval` until `consecutive` checks in a row pass (or fail, with
/// `until: failing`) or `timeout` runs out.
pub async fn run_probe(probe: Probe, polling: Polling<'_>, cx: &StepContext) -> Result<Outputs, StepError> {
    let spec = probe::PollSpec {
        interval: duration_or(polling.interval, "interval", DEFAULT_INTERVAL)?,
        timeout: duration_or(polling.timeout, "timeout", DEFAULT_TIMEOUT)?,
        until: match polling.until {
            UntilOption::Passing => probe::Until::Passing,
            UntilOption::Failing => probe::Until::Failing,
        },
        consecutive: polling.consecutive.unwrap_or(1),
    };
    let report = tokio::select! {
        r = probe::poll(&probe, &spec) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = Outputs::new();
    out.insert("passed_at".into(), timestamp(report.passed_at));
    out.insert("first_check_at".into(), timestamp(report.first_check_at));
    out.insert("checks".into(), report.checks.into());
    out.insert("observed".into(), report.observed.into());
    out.insert("last_failure".into(), report.last_failure.into());
    out.insert(
        "waited_ms".into(),
        (report.passed_at - report.first_check_at).num_milliseconds().into(),
    );
    Ok(out)
}

/// A probe kind's `Options` — its own fields plus the four polling fields every probe kind
/// shares — and its `run`, which polls the probe the kind's `probe` function builds.
/// (serde cannot flatten a shared struct into options that deny unknown fields.)
macro_rules! probe_options {
    ($(#[$meta:meta])* pub struct Options { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct Options {
            $($body)*
            /// `passing` (default: wait for service) or `failing` (wait for an outage).
            #[serde(default)]
            pub until: $crate::steps::validation::UntilOption,
            /// Checks in a row with that outcome (default 1; a failure threshold with `failing`).
            #[serde(default)]
            pub consecutive: Option<u32>,
            /// Time between checks (default 1s).
            #[serde(default)]
            pub interval: Option<$crate::plan::model::HumanDuration>,
            /// Give up after this long (default 60s).
            #[serde(default)]
            pub timeout: Option<$crate::plan::model::HumanDuration>,
        }

        pub async fn run(
            options: Options,
            cx: &$crate::steps::StepContext,
        ) -> Result<$crate::steps::Outputs, $crate::steps::StepError> {
            let polling = $crate::steps::validation::Polling {
                interval: &options.interval,
                timeout: &options.timeout,
                until: &options.until,
                consecutive: options.consecutive,
            };
            $crate::steps::validation::run_probe(probe(&options)?, polling, cx).await
        }
    };
}
pub(crate) use probe_options;

/// Builds the probe of a probe kind from its rendered options (for guards).
pub fn probe_for(kind: &str, with: serde_json::Value) -> Result<Probe, StepError> {
    match kind {
        "validation.http_probe" => super::validation_http_probe::probe(&super::options(with)?),
        "validation.tcp_probe" => super::validation_tcp_probe::probe(&super::options(with)?),
        "validation.sql_probe" => super::validation_sql_probe::probe(&super::options(with)?),
        other => Err(StepError::terminal(format!("`{other}` is not a probe kind"))),
    }
}

/// The kinds [`probe_for`] accepts.
pub const PROBE_KINDS: &[&str] = &["validation.http_probe", "validation.sql_probe", "validation.tcp_probe"];

//! The `validation.*` step kinds and what they share: polling a probe until it passes (its
//! first passing time is the `recovered` evidence, [`ProbePassed`]).

pub mod canary;
pub mod canary_stop;
pub mod http_probe;
pub mod k8s_inventory;
pub mod prometheus_probe;
pub mod prometheus_range;
pub mod rpo;
pub mod sql_compare;
pub mod sql_probe;
pub mod tcp_probe;

use super::{Outputs, StepContext, StepError};
use crate::evidence::outcome::{Outcome, ProbePassed};
use crate::plan::model::{Interval, Limit};
use lifeboat_validation::probe::{self, Probe};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

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
    pub interval: Option<Interval>,
    pub timeout: Option<Limit>,
    pub until: &'a UntilOption,
    pub consecutive: Option<crate::plan::count::Count<1, 1000>>,
}

/// Polls `probe` every `interval` until `consecutive` checks in a row pass (or fail, with
/// `until: failing`) or `timeout` runs out.
pub async fn run_probe(probe: Probe, polling: Polling<'_>, cx: &StepContext) -> Result<Outputs, StepError> {
    let spec = probe::PollSpec {
        interval: polling.interval.map_or(DEFAULT_INTERVAL, |d| d.get()),
        timeout: polling.timeout.map_or(DEFAULT_TIMEOUT, |d| d.get()),
        until: match polling.until {
            UntilOption::Passing => probe::Until::Passing,
            UntilOption::Failing => probe::Until::Failing,
        },
        consecutive: polling.consecutive.map_or(1, |c| c.get() as u32),
    };
    let report = tokio::select! {
        r = probe::poll(&probe, &spec) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(ProbePassed {
        passed_at: report.passed_at,
        first_check_at: report.first_check_at,
        checks: report.checks,
        observed: report.observed,
        detail: report.detail,
        last_failure: report.last_failure,
        waited_ms: (report.passed_at - report.first_check_at).num_milliseconds(),
    }
    .to_outputs())
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
            pub consecutive: Option<$crate::plan::count::Count<1, 1000>>,
            /// Time between checks (default 1s).
            #[serde(default)]
            pub interval: Option<$crate::plan::model::Interval>,
            /// Give up after this long (default 60s).
            #[serde(default)]
            pub timeout: Option<$crate::plan::model::Limit>,
        }

        pub async fn run(
            options: Options,
            cx: &$crate::steps::StepContext,
        ) -> Result<$crate::steps::Outputs, $crate::steps::StepError> {
            let polling = $crate::steps::validation::Polling {
                interval: options.interval,
                timeout: options.timeout,
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
        "validation.http_probe" => http_probe::probe(&super::options(with)?),
        "validation.tcp_probe" => tcp_probe::probe(&super::options(with)?),
        "validation.sql_probe" => sql_probe::probe(&super::options(with)?),
        "validation.prometheus_probe" => prometheus_probe::probe(&super::options(with)?),
        other => Err(StepError::terminal(format!("`{other}` is not a probe kind"))),
    }
}

/// The kinds [`probe_for`] accepts.
pub const PROBE_KINDS: &[&str] = &[
    "validation.http_probe",
    "validation.prometheus_probe",
    "validation.sql_probe",
    "validation.tcp_probe",
];

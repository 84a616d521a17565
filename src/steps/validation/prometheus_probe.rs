//! `validation.prometheus_probe`: poll an instant PromQL query until its value meets a
//! condition: a steady state, a guard on an error ratio, or the `recovered` mark (the SLO
//! is back, not merely the port open).

use crate::plan::model::Limit;
use crate::steps::monitoring::{AuthOption, Condition, OnEmptyOption, REQUEST_TIMEOUT, SeriesOption, auth};
use crate::steps::{StepError, Text};
use lifeboat_validation::monitoring::prometheus::Prometheus;
use lifeboat_validation::probe::{Probe, prometheus::PromProbe};
use schemars::JsonSchema;
use serde::Deserialize;

super::probe_options! {
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Prometheus-compatible API's root, e.g. `http://prometheus:9090` (Thanos, Mimir
    /// and VictoriaMetrics answer the same API).
    pub url: Text,
    /// An instant query, e.g. `sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`.
    pub query: String,
    /// What the value must be: `< 0.01`, `== 1`, `within [0.5, 2]`.
    pub condition: Condition,
    /// `one` (default: several series are an error naming them), `all` or `any`.
    #[serde(default)]
    pub series: SeriesOption,
    /// An empty result: `fail` (default), `pass` or `wait` (keep polling). In a guard,
    /// `wait` counts as a failed check.
    #[serde(default)]
    pub on_empty: OnEmptyOption,
    #[serde(default)]
    pub auth: Option<AuthOption>,
    /// Time limit of one query (default 10s).
    #[serde(default)]
    pub request_timeout: Option<Limit>,
}
}

pub fn probe(o: &Options) -> Result<Probe, StepError> {
    Ok(Probe::Prometheus(PromProbe {
        prometheus: Prometheus::new(&o.url.0, auth(&o.auth), o.request_timeout.map_or(REQUEST_TIMEOUT, |d| d.get()))?,
        query: o.query.clone(),
        threshold: o.condition.0,
        series: o.series.into(),
        on_empty: o.on_empty.into(),
    }))
}

//! `k8s.wait`: wait, by watch, until an object has a condition (`Available`) or a JSONPath
//! value (`{.status.phase}` = `Completed`), on any kind.

use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::wait::{Test, wait_for};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// e.g. `v1`, `apps/v1`, `velero.io/v1` (default `v1`).
    #[serde(default)]
    pub api_version: Option<Text>,
    pub kind: Text,
    pub name: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    /// A condition type, optionally with its status: `Available` or `Ready=False`.
    #[serde(default)]
    pub condition: Option<Text>,
    /// A JSONPath as kubectl writes it, e.g. `{.status.phase}`; with `value`.
    #[serde(default)]
    pub jsonpath: Option<String>,
    #[serde(default)]
    pub value: Option<Text>,
    /// Give up after this long (default 5m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let test = match (&o.condition, &o.jsonpath, &o.value) {
        (Some(c), None, None) => {
            let (kind, status) = c.0.split_once('=').unwrap_or((&c.0, "True"));
            Test::Condition {
                kind: kind.trim().into(),
                status: status.trim().into(),
            }
        }
        (None, Some(path), Some(value)) => Test::JsonPath {
            path: path.clone(),
            value: value.0.clone(),
        },
        _ => {
            return Err(StepError::terminal(
                "give either `condition` (e.g. Available) or `jsonpath` with `value` (e.g. {.status.phase} and Completed)",
            ));
        }
    };
    let (client, cluster) = super::access::client(cx).await?;
    let api_version = o.api_version.as_ref().map_or("v1", |v| v.0.as_str());
    let met = tokio::select! {
        r = wait_for(&client, (api_version, &o.kind.0), &o.name.0, super::namespace(&o.namespace), &test, o.timeout.map_or(Duration::from_secs(300), |d| d.get())) => r.map_err(super::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(outputs_of(&met))
}

//! `k8s.rollout_wait`: wait until a Deployment's or StatefulSet's rollout is complete, as
//! `kubectl rollout status` judges it (generation observed; updated, ready and available
//! replicas caught up). `passed_at` makes it usable as the `recovered` mark.

use crate::evidence::outcome::{Outcome, ProbePassed};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text};
use chrono::Utc;
use lifeboat_failover::kube::{rollout, wait::Test, wait::wait_for};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `Deployment` or `StatefulSet`.
    pub kind: Text,
    pub name: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    /// Give up after this long (default 10m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    if !matches!(o.kind.0.as_str(), "Deployment" | "StatefulSet") {
        return Err(StepError::terminal(format!(
            "kind: `{}` has no rollout; use Deployment or StatefulSet, or k8s.wait",
            o.kind.0
        )));
    }
    let (client, cluster) = super::access::client(cx).await?;
    let started = Utc::now();
    let test = Test::Judge(rollout::judge);
    let met = tokio::select! {
        r = wait_for(&client, ("apps/v1", &o.kind.0), &o.name.0, super::namespace(&o.namespace), &test, o.timeout.map_or(Duration::from_secs(600), |d| d.get())) => r.map_err(super::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = ProbePassed {
        passed_at: met.met_at,
        first_check_at: started,
        checks: 1,
        observed: met.observed.clone(),
        detail: None,
        last_failure: None,
        waited_ms: (met.met_at - started).num_milliseconds(),
    }
    .to_outputs();
    out.insert("generation".into(), met.generation.into());
    Ok(out)
}

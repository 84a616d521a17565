//! `litmus.experiment`: a LitmusChaos ChaosEngine (its spec as Litmus documents it: appinfo,
//! experiments with their env and probes), run to its end and judged by the ChaosResults:
//! every experiment must reach verdict Pass. It is created once per idempotency key; its
//! `injected_at` is when lifeboat saw a target pod hit, so `mark: disaster` on it starts the
//! RTO clock there. An abort or a guard's breach stops the engine (`engineState: stop`) and
//! waits for its results to say so; a resume does the same for an engine a dead engine left.

use crate::chaos::DurableRevert;
use crate::chaos::litmus::{Engine, experiment_names_of, run as run_engine};
use crate::plan::model::Limit;
use crate::steps::chaos::activate_with_intent;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The ChaosEngine's name (default: derived from the run and step).
    #[serde(default)]
    pub name: Option<String>,
    /// Where the ChaosEngine lives.
    pub namespace: Text,
    /// The ChaosEngine's spec as Litmus documents it, e.g. `{ appinfo: { appns: shop,
    /// applabel: app=web, appkind: deployment }, chaosServiceAccount: pod-delete-sa,
    /// experiments: [{ name: pod-delete }] }`.
    pub spec: Value,
    /// How long the experiments may take to reach a verdict (default 10m).
    #[serde(default)]
    pub timeout: Option<Limit>,
    /// How long a stopped engine may take to say so (default 2m).
    #[serde(default)]
    pub stop_timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    if !o.spec.is_object() {
        return Err(StepError::terminal(
            "spec: give the ChaosEngine's spec as an object, e.g. { appinfo: {…}, experiments: [{ name: pod-delete }] }",
        ));
    }
    let access = crate::steps::k8s::access::of(cx);
    let (client, cluster) = crate::steps::k8s::access::connect(access.clone()).await?;
    let engine = Engine {
        namespace: o.namespace.0.clone(),
        name: crate::steps::k8s::object_name(&o.name, &cx.idempotency_key),
    };
    let limits = (
        o.timeout.map_or(Duration::from_secs(600), |d| d.get()),
        o.stop_timeout.map_or(Duration::from_secs(120), |d| d.get()),
    );
    // Journaled before the engine is created, so a resume after a crash stops an engine
    // the dead process may have started.
    let intent = access.spec.ok().map(|spec| DurableRevert::LitmusEngine {
        cluster_name: cluster.clone(),
        cluster: spec,
        namespace: engine.namespace.clone(),
        name: engine.name.clone(),
        experiments: experiment_names_of(&o.spec),
        limit_ms: limits.1.as_millis() as u64,
    });
    let running = run_engine(client, engine, o.spec, limits, cx.cancel.clone());
    activate_with_intent(cx, intent, running, None, false)
        .await
        .map_err(crate::steps::k8s::access::in_cluster(&cluster))
}

//! `chaos_mesh.experiment`: a Chaos Mesh experiment (PodChaos, NetworkChaos, IOChaos,
//! TimeChaos, HTTPChaos, StressChaos) with the spec as Chaos Mesh documents it. It is
//! injected once per idempotency key and counts as injected only when its status proves it,
//! timed from that observation, so `mark: disaster` on it starts the RTO clock when the
//! fault really applied. Persistent experiments are recovered (deleted, and waited for
//! until Chaos Mesh lets go) after `duration`, by `chaos.revert`, on abort or rollback, or
//! at the run's end.

use crate::chaos::DurableRevert;
use crate::chaos::chaos_mesh::{Experiment, inject};
use crate::plan::model::Limit;
use crate::steps::chaos::activate_with_intent;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum ChaosKind {
    PodChaos,
    NetworkChaos,
    IOChaos,
    TimeChaos,
    HTTPChaos,
    StressChaos,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub kind: ChaosKind,
    /// The experiment's name (default: derived from the run and step).
    #[serde(default)]
    pub name: Option<String>,
    /// Where the experiment object lives (and, by default, the pods it selects).
    pub namespace: Text,
    /// The experiment's spec as Chaos Mesh documents it, e.g.
    /// `{ action: pod-kill, mode: one, selector: { labelSelectors: { app: web } } }`.
    pub spec: Value,
    /// How long lifeboat keeps the fault before recovering it; without it, until
    /// `chaos.revert` or the run's end (Chaos Mesh's own `spec.duration` also ends it).
    #[serde(default)]
    pub duration: Option<Limit>,
    /// Wait for `duration` to pass (and the recovery) before the step succeeds.
    #[serde(default)]
    pub wait: bool,
    /// How long the status may take to prove the injection (default 2m).
    #[serde(default)]
    pub inject_timeout: Option<Limit>,
    /// How long recovery may take before it is reported as stuck (default 2m).
    #[serde(default)]
    pub recover_timeout: Option<Limit>,
    /// If recovery is stuck on Chaos Mesh's records finalizer, remove it (the evidence says
    /// which records may still be applied). Default: never.
    #[serde(default)]
    pub force_finalizer_removal: bool,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    if !o.spec.is_object() {
        return Err(StepError::terminal(
            "spec: give the experiment's spec as an object, e.g. { action: pod-kill, mode: one, selector: { labelSelectors: { app: web } } }",
        ));
    }
    let access = crate::steps::k8s::access::of(cx);
    let (client, cluster) = crate::steps::k8s::access::connect(access.clone()).await?;
    let experiment = Experiment {
        kind: format!("{:?}", o.kind),
        namespace: o.namespace.0.clone(),
        name: crate::steps::k8s::object_name(&o.name, &cx.idempotency_key),
    };
    let limits = (
        o.inject_timeout.map_or(Duration::from_secs(120), |d| d.get()),
        o.recover_timeout.map_or(Duration::from_secs(120), |d| d.get()),
    );
    // Journaled before the object is created, so a resume after a crash recovers an
    // experiment the dead engine may have started.
    let intent = access.spec.ok().map(|spec| DurableRevert::ChaosMeshExperiment {
        cluster_name: cluster.clone(),
        cluster: spec,
        kind: experiment.kind.clone(),
        namespace: experiment.namespace.clone(),
        name: experiment.name.clone(),
        force_finalizer: o.force_finalizer_removal,
        limit_ms: limits.1.as_millis() as u64,
    });
    let injecting = inject(client, experiment, o.spec, limits, o.force_finalizer_removal, intent.clone());
    activate_with_intent(cx, intent, injecting, o.duration.map(|d| d.get()), o.wait)
        .await
        .map_err(crate::steps::k8s::access::in_cluster(&cluster))
}

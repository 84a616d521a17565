//! `k8s.delete`: delete an object and wait until it is gone (finalizers included). With
//! `mark: disaster` this is the "namespace deleted" drill: `injected_at` is when the watch
//! saw it gone. Deleting what is already gone succeeds.

use crate::evidence::outcome::{FaultApplied, Outcome};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use kube::api::PropagationPolicy;
use lifeboat_failover::kube::delete::{DeleteOptions, delete};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Foreground,
    Background,
    Orphan,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// e.g. `v1`, `apps/v1`, `velero.io/v1` (default `v1`).
    #[serde(default)]
    pub api_version: Option<Text>,
    /// e.g. `Namespace`, `Deployment`.
    pub kind: Text,
    pub name: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    /// How dependents go (default: the kind's own default, usually background).
    #[serde(default)]
    pub propagation: Option<Propagation>,
    /// How long to wait until it is gone (default 5m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = super::access::client(cx).await?;
    let api_version = o.api_version.as_ref().map_or("v1", |v| v.0.as_str());
    let deleted = delete(
        &client,
        &DeleteOptions {
            api_version,
            kind: &o.kind.0,
            name: &o.name.0,
            namespace: super::namespace(&o.namespace),
            propagation: o.propagation.as_ref().map(|p| match p {
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            wait: Some(o.timeout.map_or(Duration::from_secs(300), |d| d.get())),
        },
    )
    .await
    .map_err(super::access::in_cluster(&cluster))?;
    // As a disaster, the drill clock starts when the object was observed gone.
    let mut out = FaultApplied {
        injected_at: deleted.gone_at,
        reverts_at: None,
        reverted_at: None,
        revert: None,
        evidence: outputs_of(&deleted),
    }
    .to_outputs();
    out.insert("kind".into(), o.kind.0.into());
    out.insert("name".into(), o.name.0.into());
    Ok(out)
}

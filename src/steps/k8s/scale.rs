//! `k8s.scale`: set a Deployment's or StatefulSet's replicas. The replicas it had are
//! journaled before it changes them and are an output, so a compensation
//! (`replicas: ${{ steps.<id>.outputs.previous_replicas }}`) puts them back, even after a
//! re-run.

use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::scale::{replicas, scale};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `Deployment` or `StatefulSet`.
    pub kind: Text,
    pub name: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    pub replicas: crate::plan::count::Count<0, 100000>,
}

/// The replicas before the first attempt changed them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousReplicas {
    pub replicas: i64,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

crate::evidence::single_record!(PreviousReplicas, "scale/");

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = super::access::client(cx).await?;
    let namespace = super::namespace(&o.namespace);
    let previous = match cx.records::<PreviousReplicas>().await?.pop() {
        Some(recorded) => recorded.replicas,
        None => {
            let now = replicas(&client, &o.kind.0, &o.name.0, namespace)
                .await
                .map_err(super::access::in_cluster(&cluster))?;
            cx.record(&PreviousReplicas { replicas: now, at: None }).await?;
            now
        }
    };
    let scaled = scale(&client, &o.kind.0, &o.name.0, namespace, (previous, o.replicas.get() as i64))
        .await
        .map_err(super::access::in_cluster(&cluster))?;
    Ok(outputs_of(&scaled))
}

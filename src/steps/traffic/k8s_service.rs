//! `traffic.k8s_service`: point a Kubernetes Service at the standby — other pods
//! (`selector`), a DNS name (`external_name`), or addresses outside the cluster
//! (`addresses` with `port`, as for an external database: the Service loses its selector and
//! lifeboat writes its EndpointSlice). Done when the EndpointSlices backing it show the new
//! target. How it routed before is journaled first and is an output, so a compensation can
//! point it back (`selector: ${{ steps.<id>.outputs.previous_selector }}` or
//! `external_name: ${{ steps.<id>.outputs.previous_external_name }}`).

use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::service::{Routing, Target, routing, switch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub service: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    /// Send traffic to the pods with these labels.
    #[serde(default)]
    pub selector: Option<BTreeMap<String, Text>>,
    /// Or to this DNS name (the Service becomes type ExternalName).
    #[serde(default)]
    pub external_name: Option<Text>,
    /// Or to these addresses outside the cluster (IPv4), on `port`.
    #[serde(default)]
    pub addresses: Vec<Text>,
    #[serde(default)]
    pub port: Option<crate::plan::count::Count<1, 65535>>,
    /// How long the EndpointSlices may take to show the new target (default 2m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

/// How the Service routed before the first attempt changed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousRouting {
    pub routing: Routing,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

crate::evidence::single_record!(PreviousRouting, "k8s-service/");

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let target = match (&o.selector, &o.external_name, o.addresses.is_empty(), o.port) {
        (Some(labels), None, true, None) if !labels.is_empty() => {
            Target::Selector(labels.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        }
        (None, Some(name), true, None) if !name.0.is_empty() => Target::ExternalName(name.0.clone()),
        (None, None, false, Some(port)) => Target::Addresses {
            addresses: o.addresses.iter().map(|a| a.0.clone()).collect(),
            port: port.get() as i32,
        },
        _ => {
            return Err(StepError::terminal(
                "give exactly one target: `selector` (labels), `external_name` (a DNS name), or `addresses` with `port`",
            ));
        }
    };
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let in_cluster = crate::steps::k8s::access::in_cluster(&cluster);
    let namespace = crate::steps::k8s::namespace_or_default(&o.namespace);
    let previous = match cx.records::<PreviousRouting>().await?.pop() {
        Some(recorded) => recorded.routing,
        None => {
            let now = routing(&client, &namespace, &o.service.0).await.map_err(&in_cluster)?;
            cx.record(&PreviousRouting {
                routing: now.clone(),
                at: None,
            })
            .await?;
            now
        }
    };
    let limit = o.timeout.map_or(Duration::from_secs(120), |d| d.get());
    let switched = tokio::select! {
        r = switch(&client, &namespace, &o.service.0, &target, limit) => r.map_err(&in_cluster)?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = outputs_of(&switched);
    out.insert(
        "previous_selector".into(),
        serde_json::to_value(&previous.selector).unwrap_or_default(),
    );
    out.insert(
        "previous_external_name".into(),
        serde_json::to_value(&previous.external_name).unwrap_or_default(),
    );
    Ok(out)
}

//! Moving a Kubernetes Service's traffic: to other pods (its selector), to a DNS name
//! (ExternalName), or to addresses outside the cluster (no selector, and an EndpointSlice
//! lifeboat owns, as for an external database). Done only when the EndpointSlices that back
//! the Service say so: their ready endpoints are the new pods, or the given addresses.

use super::{error, wait};
use crate::FailoverError;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the Service sends traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The pods with these labels.
    Selector(BTreeMap<String, String>),
    /// A DNS name (type ExternalName).
    ExternalName(String),
    /// Addresses outside the cluster, on `port`.
    Addresses { addresses: Vec<String>, port: i32 },
}

/// How the Service pointed before: enough to point it back.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Routing {
    pub selector: Option<BTreeMap<String, String>>,
    pub external_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Switched {
    pub service: String,
    /// The ready endpoints now backing it (`address` and the pod it belongs to, if any).
    pub endpoints: Vec<Value>,
    pub slices: Vec<String>,
    pub switched_at: DateTime<Utc>,
}

/// The field manager lifeboat's own EndpointSlices are written with.
const MANAGER: &str = "lifeboat";

fn slice_name(service: &str) -> String {
    format!("{service}-lifeboat")
}

/// How `service` routes now.
pub async fn routing(client: &kube::Client, namespace: &str, service: &str) -> Result<Routing, FailoverError> {
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .get(service)
        .await
        .map_err(|e| error(e, &format!("reading Service {service}")))?;
    let spec = svc.spec.unwrap_or_default();
    Ok(Routing {
        selector: spec.selector,
        external_name: spec.external_name.filter(|_| spec.type_.as_deref() == Some("ExternalName")),
    })
}

/// Points `service` at `target` and waits, for at most `limit`, until its EndpointSlices
/// (or, for ExternalName, the Service itself) show it.
pub async fn switch(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    target: &Target,
    limit: Duration,
) -> Result<Switched, FailoverError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let what = format!("pointing Service {service}");
    let patch = match target {
        Target::Selector(labels) => json!({"spec": {"type": "ClusterIP", "externalName": null, "selector": labels}}),
        Target::ExternalName(name) => {
            json!({"spec": {"type": "ExternalName", "externalName": name, "selector": null, "clusterIP": null, "clusterIPs": null}})
        }
        Target::Addresses { .. } => json!({"spec": {"type": "ClusterIP", "externalName": null, "selector": null}}),
    };
    services
        .patch(service, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| error(e, &what))?;
    if !matches!(target, Target::Selector(_)) {
        // Kubernetes' controller leaves its slice behind when a Service stops selecting
        // pods, and kube-proxy would go on sending traffic to those pods.
        let managed =
            format!("kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io");
        let stale = slices
            .list(&ListParams::default().labels(&managed))
            .await
            .map_err(|e| error(e, &format!("listing the EndpointSlices of Service {service}")))?;
        for slice in stale.items.iter().filter_map(|s| s.metadata.name.clone()) {
            match slices.delete(&slice, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(error(e, &format!("removing the stale EndpointSlice {slice}")).into()),
            }
        }
    }
    match target {
        Target::Addresses { addresses, port } => {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_name(service), "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": MANAGER}},
                "addressType": "IPv4",
                "endpoints": addresses.iter().map(|a| json!({"addresses": [a], "conditions": {"ready": true}})).collect::<Vec<_>>(),
                "ports": [{"port": port, "protocol": "TCP"}],
            });
            slices
                .patch(&slice_name(service), &PatchParams::apply(MANAGER).force(), &Patch::Apply(slice))
                .await
                .map_err(|e| error(e, &format!("writing the EndpointSlice of Service {service}")))?;
        }
        _ => {
            // A slice lifeboat wrote for an earlier external target no longer applies.
            match slices.delete(&slice_name(service), &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(error(e, &format!("removing the EndpointSlice lifeboat wrote for {service}")).into()),
            }
        }
    }
    if let Target::ExternalName(name) = target {
        let met = wait::wait_for(
            client,
            ("v1", "Service"),
            service,
            Some(namespace),
            &wait::Test::JsonPath {
                path: "{.spec.externalName}".into(),
                value: name.clone(),
            },
            limit,
        )
        .await?;
        return Ok(Switched {
            service: service.to_owned(),
            endpoints: vec![json!({"external_name": name})],
            slices: Vec::new(),
            switched_at: met.met_at,
        });
    }
    let expected_pods = match target {
        Target::Selector(labels) => {
            let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pods = Api::<Pod>::namespaced(client.clone(), namespace)
                .list(&ListParams::default().labels(&selector.join(",")))
                .await
                .map_err(|e| error(e, &format!("listing the pods Service {service} now selects")))?;
            if pods.items.is_empty() {
                return Err(FailoverError::Invalid(format!(
                    "Service {service}: no pod in namespace {namespace} has the labels {}; nothing would serve it",
                    selector.join(",")
                )));
            }
            Some(pods.items.into_iter().filter_map(|p| p.metadata.name).collect::<Vec<_>>())
        }
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let listed = slices
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
            .await
            .map_err(|e| error(e, &format!("listing the EndpointSlices of Service {service}")))?;
        let mut endpoints = Vec::new();
        for slice in &listed.items {
            for ep in &slice.endpoints {
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                endpoints.push(json!({
                    "addresses": ep.addresses,
                    "pod": ep.target_ref.as_ref().and_then(|t| t.name.clone()),
                    "slice": slice.metadata.name,
                }));
            }
        }
        let backed = match (&expected_pods, target) {
            (Some(pods), _) => {
                !endpoints.is_empty()
                    && endpoints
                        .iter()
                        .all(|e| e["pod"].as_str().is_some_and(|p| pods.iter().any(|q| q == p)))
            }
            (None, Target::Addresses { addresses, .. }) => {
                let listed = |a: &String| {
                    endpoints
                        .iter()
                        .any(|e| e["addresses"].as_array().is_some_and(|l| l.iter().any(|x| x == a)))
                };
                // Every given address is served, and nothing else is.
                addresses.iter().all(listed)
                    && endpoints.iter().all(|e| {
                        e["addresses"]
                            .as_array()
                            .is_some_and(|l| l.iter().all(|x| addresses.iter().any(|a| x == a)))
                    })
            }
            _ => true,
        };
        if backed {
            return Ok(Switched {
                service: service.to_owned(),
                endpoints,
                slices: listed.items.iter().filter_map(|s| s.metadata.name.clone()).collect(),
                switched_at: Utc::now(),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(FailoverError::NotReady(format!(
                "Service {service} is not yet backed by its new target after {limit:?}: its ready endpoints are {}",
                Value::Array(endpoints)
            )));
        }
        // EndpointSlices follow pods within moments; polling keeps the check simple.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

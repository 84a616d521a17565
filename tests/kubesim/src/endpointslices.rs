//! The EndpointSlice controller, and the cluster IPs the API server gives Services.
//!
//! Every Service with a non-empty `spec.selector` and a type other than ExternalName keeps
//! one managed EndpointSlice, `<service>-<5 characters>` (generated once, then kept), in its
//! namespace: labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` (plus the
//! Service's own labels and, when headless, `service.kubernetes.io/headless`), controlled
//! by the Service through an ownerReference, `addressType: IPv4`, one endpoint per pod the
//! selector matches that has an IP and has not terminated, and the Service's ports (a named
//! `targetPort` resolved through the pods' container ports). It is recomputed whenever a
//! Service, Pod or EndpointSlice in the namespace changes, so a slice edited or deleted by
//! hand is put back.
//!
//! Where it differs from Kubernetes: one slice per Service whatever its size (the real
//! controller splits at 100 endpoints and by port set); a Service with no matching pod
//! keeps a slice with no endpoints but with its ports (the real placeholder has none); and
//! a Service that loses its selector or becomes ExternalName loses its managed slice here,
//! whereas the real controller leaves the stale slice in place (kubernetes/kubernetes
//! #91072, #118376). Slices written by anyone else (no `managed-by` of ours) are never
//! touched; managed slices of a Service that is gone are left to the garbage collector.

use crate::Cluster;
use crate::store::{Change, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const GROUP: &str = "discovery.k8s.io";
const PLURAL: &str = "endpointslices";
const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
const HEADLESS: &str = "service.kubernetes.io/headless";

/// Whether `object` is an EndpointSlice this controller manages (made again from its
/// Service, so a backup leaves it out as it does controllers' pods).
pub(crate) fn managed(object: &Value) -> bool {
    object["kind"] == "EndpointSlice" && object["metadata"]["labels"][MANAGED_BY] == CONTROLLER
}

/// Recomputes the slices of a namespace whose Services, Pods or slices changed.
pub(crate) fn on_change(cluster: &Cluster, change: &Change) {
    let relevant = match change.group.as_str() {
        "" => matches!(change.plural.as_str(), "services" | "pods"),
        GROUP => change.plural == PLURAL,
        _ => false,
    };
    if relevant && !change.namespace.is_empty() {
        reconcile_namespace(cluster, &change.namespace);
    }
}

/// Recomputes every namespace's slices: at start, and after changes were missed.
pub(crate) fn resync(cluster: &Cluster) {
    let namespaces: BTreeSet<String> = cluster
        .store()
        .list("", "services", "")
        .iter()
        .filter_map(|s| s["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    for namespace in namespaces {
        reconcile_namespace(cluster, &namespace);
    }
}

/// The selector of a Service that gets a managed slice, or `None`.
fn selector(service: &Value) -> Option<&Map<String, Value>> {
    if service["spec"]["type"] == "ExternalName" || !service["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    // An empty selector is stored as none by the real API server (protobuf keeps no empty
    // map), so it selects nothing rather than everything.
    service["spec"]["selector"].as_object().filter(|s| !s.is_empty())
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn reconcile_namespace(cluster: &Cluster, namespace: &str) {
    let (Some(slice_resource), Some(_)) = (cluster.resource(GROUP, PLURAL), cluster.resource("", "services")) else {
        return;
    };
    let (services, pods, slices) = {
        let store = cluster.store();
        (
            store.list("", "services", namespace),
            store.list("", "pods", namespace),
            store.list(GROUP, PLURAL, namespace),
        )
    };
    let slices: Vec<Value> = slices.into_iter().filter(managed).collect();
    for service in &services {
        let service_name = name(service);
        let uid = service["metadata"]["uid"].as_str().unwrap_or_default();
        let (mut owned, stale): (Vec<&Value>, Vec<&Value>) = slices
            .iter()
            .filter(|s| s["metadata"]["labels"][SERVICE_NAME] == service_name)
            .partition(|s| controller_uid(s) == Some(uid));
        // Slices of an earlier Service of this name. Those of a Service that stopped
        // selecting pods (or became ExternalName) stay, stale, as the real controller leaves
        // them (kubernetes/kubernetes#91072): whoever re-points a Service must clean up.
        for slice in stale {
            let _ = crate::http::delete_object(cluster, &slice_resource, namespace, name(slice));
        }
        let Some(selector) = selector(service) else { continue };
        owned.sort_by_key(|s| {
            (
                s["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_owned(),
                name(s).to_owned(),
            )
        });
        for extra in owned.iter().skip(1) {
            let _ = crate::http::delete_object(cluster, &slice_resource, namespace, name(extra));
        }
        let desired = desired_slice(service, selector, &pods);
        match owned.first() {
            Some(current) => {
                let mut updated = (*current).clone();
                for field in ["addressType", "endpoints", "ports"] {
                    updated[field] = desired[field].clone();
                }
                updated["metadata"]["labels"] = desired["metadata"]["labels"].clone();
                updated["metadata"]["ownerReferences"] = desired["metadata"]["ownerReferences"].clone();
                if &updated != *current {
                    let slice_name = name(current).to_owned();
                    if let Err(e) = crate::http::update_object(cluster, &slice_resource, namespace, &slice_name, updated) {
                        // A conflict means a newer change is on its way here, which recomputes it.
                        if e.code != 409 && e.code != 404 {
                            eprintln!("kubesim: updating EndpointSlice {namespace}/{slice_name}: {}", e.message);
                        }
                    }
                }
            }
            None => match crate::http::create_object(cluster, &slice_resource, namespace, desired, CONTROLLER) {
                // A namespace being deleted takes no new slices, as the real controller finds.
                Ok(_) | Err(crate::http::ApiError { code: 403 | 404, .. }) => {}
                Err(e) => eprintln!(
                    "kubesim: creating the EndpointSlice of service {namespace}/{service_name}: {}",
                    e.message
                ),
            },
        }
    }
}

fn controller_uid(object: &Value) -> Option<&str> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

/// The slice `service` should have, with a `generateName` for when it is created.
fn desired_slice(service: &Value, selector: &Map<String, Value>, pods: &[Value]) -> Value {
    let service_name = name(service);
    let namespace = service["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut matching: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            let labels = &p["metadata"]["labels"];
            selector.iter().all(|(k, v)| &labels[k] == v)
        })
        .filter(|p| p["status"]["podIP"].as_str().is_some_and(|ip| !ip.is_empty()))
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .collect();
    matching.sort_by_key(|p| name(p));
    let publish_not_ready = service["spec"]["publishNotReadyAddresses"] == true;
    let endpoints: Vec<Value> = matching
        .iter()
        .map(|pod| {
            let pod_ready = pod["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
            let serving = publish_not_ready || pod_ready;
            let mut endpoint = json!({
                "addresses": [pod["status"]["podIP"]],
                "conditions": {"ready": serving && !terminating, "serving": serving, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"],
                              "uid": pod["metadata"]["uid"]},
            });
            if let Some(node) = pod["spec"]["nodeName"].as_str() {
                endpoint["nodeName"] = node.into();
            }
            // A StatefulSet's pod is addressable by hostname under its governing Service.
            if let Some(hostname) = pod["spec"]["hostname"].as_str()
                && pod["spec"]["subdomain"] == service_name
            {
                endpoint["hostname"] = hostname.into();
            }
            endpoint
        })
        .collect();
    let ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let number = match &p["targetPort"] {
                Value::Number(n) => Value::Number(n.clone()),
                Value::String(named) => named_port(&matching, named).map_or_else(|| p["port"].clone(), Value::from),
                _ => p["port"].clone(),
            };
            let mut port = json!({"name": p["name"].as_str().unwrap_or_default(), "port": number,
                                  "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(app) = p["appProtocol"].as_str() {
                port["appProtocol"] = app.into();
            }
            port
        })
        .collect();
    let mut labels: Map<String, Value> = service["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.remove(HEADLESS);
    if service["spec"]["clusterIP"] == "None" {
        labels.insert(HEADLESS.into(), "".into());
    }
    labels.insert(SERVICE_NAME.into(), service_name.into());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    // generateName keeps at most 58 characters of its base, leaving room for the suffix.
    let prefix: String = format!("{service_name}-").chars().take(58).collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "generateName": prefix, "namespace": namespace, "labels": labels,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service_name,
                                 "uid": service["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}],
        },
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
    })
}

/// The container port named `named` in the first of `pods` that declares it.
fn named_port(pods: &[&Value], named: &str) -> Option<i64> {
    pods.iter().find_map(|pod| {
        pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"] == named)?["containerPort"]
            .as_i64()
    })
}

/// What the API server sets on a Service it creates: a cluster IP from 10.96.0.0/16, free
/// in the cluster, unless it is ExternalName, headless (`None`) or was given one.
pub(crate) fn allocate_cluster_ip(store: &Store, service: &mut Value) {
    let spec = &mut service["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec["type"] == "ExternalName" {
        return;
    }
    if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        let taken: BTreeSet<String> = store
            .list("", "services", "")
            .iter()
            .filter_map(|s| s["spec"]["clusterIP"].as_str().map(str::to_owned))
            .collect();
        let free = (0..u16::MAX).find_map(|_| {
            let b = uuid::Uuid::new_v4().into_bytes();
            // .0 and .255 are skipped for legibility; 10.96.0.1 and .10 are the real
            // cluster's kubernetes and DNS Services.
            let ip = format!("10.96.{}.{}", b[0], b[1].clamp(11, 254));
            (!taken.contains(&ip)).then_some(ip)
        });
        let Some(ip) = free else { return };
        spec["clusterIP"] = ip.into();
    }
    if let Some(ip) = spec["clusterIP"].as_str().map(str::to_owned) {
        spec["clusterIPs"] = json!([ip]);
    }
    if spec["type"].is_null() {
        spec["type"] = "ClusterIP".into();
    }
}

/// What the API server keeps on a Service update: an omitted cluster IP stays as it was,
/// one left in place when the Service becomes ExternalName is released with it, and one
/// leaving ExternalName gets a new one.
pub(crate) fn keep_cluster_ip(store: &Store, current: &Value, service: &mut Value) {
    let spec = &mut service["spec"];
    if !spec.is_object() {
        return;
    }
    let old = &current["spec"];
    if spec["type"] == "ExternalName" {
        if old["type"] != "ExternalName"
            && spec["clusterIP"] == old["clusterIP"]
            && let Some(s) = spec.as_object_mut()
        {
            s.remove("clusterIP");
            s.remove("clusterIPs");
        }
        return;
    }
    if spec["clusterIP"].as_str().is_none_or(str::is_empty) && old["clusterIP"].is_string() {
        spec["clusterIP"] = old["clusterIP"].clone();
        spec["clusterIPs"] = old["clusterIPs"].clone();
    }
    allocate_cluster_ip(store, service);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_selected_pods() {
        let service = json!({"metadata": {"name": "web", "namespace": "shop", "uid": "s1", "labels": {"app": "web"}},
                             "spec": {"selector": {"app": "web"}, "clusterIP": "None",
                                      "ports": [{"port": 80, "targetPort": "http"}, {"name": "m", "port": 9090}]}});
        let pod = |n: &str, app: &str, ready: &str| {
            json!({"metadata": {"name": n, "uid": format!("u-{n}"), "labels": {"app": app}},
                   "spec": {"nodeName": "node", "hostname": n, "subdomain": "web",
                            "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
                   "status": {"podIP": format!("10.1.0.{}", n.len()), "phase": "Running",
                              "conditions": [{"type": "Ready", "status": ready}]}})
        };
        let pods = [pod("b", "web", "True"), pod("aa", "web", "False"), pod("c", "db", "True")];
        let slice = desired_slice(&service, selector(&service).unwrap(), &pods);
        let endpoints = slice["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[0]["targetRef"]["name"], "aa");
        assert_eq!(endpoints[0]["conditions"]["ready"], false);
        assert_eq!(endpoints[1]["conditions"]["ready"], true);
        assert_eq!(endpoints[1]["hostname"], "b");
        assert_eq!(
            slice["ports"],
            json!([{"name": "", "port": 8080, "protocol": "TCP"}, {"name": "m", "port": 9090, "protocol": "TCP"}])
        );
        assert_eq!(slice["metadata"]["labels"][HEADLESS], "");
        assert!(managed(&slice));
        assert!(selector(&json!({"spec": {"selector": {}}})).is_none());
        assert!(selector(&json!({"spec": {"type": "ExternalName", "selector": {"a": "b"}}})).is_none());
    }

    #[test]
    fn cluster_ips_are_given_and_kept() {
        let store = Store::default();
        let mut service = json!({"spec": {"ports": [{"port": 80}]}});
        allocate_cluster_ip(&store, &mut service);
        let ip = service["spec"]["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10.96."), "{ip}");
        assert_eq!(service["spec"]["clusterIPs"], json!([ip]));
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        allocate_cluster_ip(&store, &mut headless);
        assert_eq!(headless["spec"]["clusterIP"], "None");
        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        allocate_cluster_ip(&store, &mut external);
        assert!(external["spec"]["clusterIP"].is_null());
        let mut omitted = json!({"spec": {"ports": [{"port": 81}]}});
        keep_cluster_ip(&store, &service, &mut omitted);
        assert_eq!(omitted["spec"]["clusterIP"], ip.as_str());
        let mut to_external = service.clone();
        to_external["spec"]["type"] = "ExternalName".into();
        keep_cluster_ip(&store, &service, &mut to_external);
        assert!(to_external["spec"]["clusterIP"].is_null());
        let mut back = json!({"spec": {"type": "ClusterIP"}});
        keep_cluster_ip(&store, &to_external, &mut back);
        assert!(back["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    }
}

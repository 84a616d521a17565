//! Simulated controllers: move objects as the real ones do (Jobs' are in `jobs.rs`,
//! workloads' pods in `pods.rs`, Velero's in `velero.rs`, Chaos Mesh's in `chaos_mesh.rs`,
//! LitmusChaos's in `litmus.rs`, Argo CD's in `argocd.rs`, EndpointSlices' in
//! `endpointslices.rs`); [`start`] feeds every change to
//! each of them.
//!
//! Deployments and StatefulSets roll out after [`ROLLOUT`]: a StatefulSet's volume claim
//! templates become Bound claims, the workload gets exactly `spec.replicas` Running pods,
//! then its status catches up with the newest generation and the replicas asked for
//! (observedGeneration, updated/ready/available replicas, revisions). The status follows the
//! spec, not the pods: a pod made unready by a chaos experiment does not lower
//! `readyReplicas`.

use crate::Cluster;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a simulated rollout takes.
pub const ROLLOUT: Duration = Duration::from_millis(300);

/// The status a workload reaches once rolled out, or `None` when it has it already.
fn rolled_out(object: &Value) -> Option<Value> {
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let revision = format!("{}-{generation}", object["metadata"]["name"].as_str().unwrap_or_default());
    let mut status = json!({
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas,
    });
    if object["kind"] == "StatefulSet" {
        status["currentRevision"] = revision.clone().into();
        status["updateRevision"] = revision.into();
        status["currentReplicas"] = replicas.into();
    } else {
        status["conditions"] = json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]);
    }
    (object["status"] != status).then_some(status)
}

/// The claims a StatefulSet's pods use, `<template>-<set>-<ordinal>`, created Bound as the
/// StatefulSet controller and a provisioner would; claims that exist are kept (they outlive
/// the set, as real ones do).
fn claim_volumes(cluster: &Cluster, namespace: &str, set: &Value) {
    let Some(resource) = cluster.resource("", "persistentvolumeclaims") else {
        return;
    };
    let name = set["metadata"]["name"].as_str().unwrap_or_default();
    let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1);
    for template in set["spec"]["volumeClaimTemplates"].as_array().into_iter().flatten() {
        let template_name = template["metadata"]["name"].as_str().unwrap_or_default();
        for ordinal in 0..replicas {
            let claim_name = format!("{template_name}-{name}-{ordinal}");
            let mut claim = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name, "namespace": namespace,
                             "labels": set["spec"]["selector"]["matchLabels"].clone()},
                "spec": template["spec"].clone(),
            });
            claim["spec"]["volumeName"] = format!("pvc-{}", uuid::Uuid::new_v4()).into();
            if crate::http::create_object(cluster, &resource, namespace, claim, "kube-controller-manager").is_ok() {
                let bound = cluster
                    .store()
                    .get(&(String::new(), "persistentvolumeclaims".into(), namespace.into(), claim_name.clone()))
                    .cloned();
                if let Some(mut bound) = bound {
                    bound["status"] = json!({"phase": "Bound", "accessModes": template["spec"]["accessModes"].clone(),
                                             "capacity": template["spec"]["resources"]["requests"].clone()});
                    let _ = crate::http::update_status(cluster, &resource, namespace, &claim_name, bound);
                }
            }
        }
    }
}

pub fn start(cluster: &Cluster) -> tokio::task::JoinHandle<()> {
    if cluster.resource("velero.io", "backupstoragelocations").is_some() {
        cluster.track(tokio::spawn(crate::velero::sync_storage_locations(cluster.clone())));
    }
    let cluster = cluster.clone();
    let mut changes = cluster.store().changes.subscribe();
    // Services stored before serving began get their slices too.
    crate::endpointslices::resync(&cluster);
    tokio::spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Slices are derived state: recomputing them all makes up for what was missed.
                    crate::endpointslices::resync(&cluster);
                    continue;
                }
                Err(_) => return,
            };
            crate::velero::on_change(&cluster, &change);
            crate::jobs::on_change(&cluster, &change);
            crate::pods::on_change(&cluster, &change);
            crate::chaos_mesh::on_change(&cluster, &change);
            crate::litmus::on_change(&cluster, &change);
            crate::argocd::on_change(&cluster, &change);
            crate::endpointslices::on_change(&cluster, &change);
            if change.group != "apps" || change.kind == "DELETED" || !matches!(change.plural.as_str(), "deployments" | "statefulsets") {
                continue;
            }
            // Every change is looked at, not only those leaving the status behind: a workload
            // created with its status (a restore) still needs its pods.
            let cluster = cluster.clone();
            let (plural, namespace) = (change.plural.clone(), change.namespace.clone());
            let name = change.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(ROLLOUT).await;
                let Some(resource) = cluster.resource("apps", &plural) else {
                    return;
                };
                let current = cluster
                    .store()
                    .get(&("apps".into(), plural.clone(), namespace.clone(), name.clone()))
                    .cloned();
                let Some(mut current) = current else { return };
                if plural == "statefulsets" {
                    claim_volumes(&cluster, &namespace, &current);
                }
                crate::pods::reconcile(&cluster, &plural, &namespace, &name);
                let Some(status) = rolled_out(&current) else { return };
                current["status"] = status;
                let _ = crate::http::update_status(&cluster, &resource, &namespace, &name, current);
            });
        }
    })
}

//! Simulated controllers: move objects as the real ones do (Jobs' are in `jobs.rs`, Velero's
//! in `velero.rs`).
//! Deployments and StatefulSets roll out after a delay: their status catches up with the newest generation and the
//! replicas asked for (observedGeneration, updated/ready/available replicas, revisions).

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

pub fn start(cluster: &Cluster) -> tokio::task::JoinHandle<()> {
    if cluster.resource("velero.io", "backupstoragelocations").is_some() {
        cluster.track(tokio::spawn(crate::velero::sync_storage_locations(cluster.clone())));
    }
    let cluster = cluster.clone();
    let mut changes = cluster.store().changes.subscribe();
    tokio::spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            crate::velero::on_change(&cluster, &change);
            crate::jobs::on_change(&cluster, &change);
            if change.group != "apps" || change.kind == "DELETED" || !matches!(change.plural.as_str(), "deployments" | "statefulsets") {
                continue;
            }
            if rolled_out(&change.object).is_none() {
                continue;
            }
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
                let Some(status) = rolled_out(&current) else { return };
                current["status"] = status;
                let _ = crate::http::update_status(&cluster, &resource, &namespace, &name, current);
            });
        }
    })
}

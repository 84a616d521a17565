//! The pods of Deployments and StatefulSets, as the ReplicaSet and StatefulSet controllers
//! and a kubelet would keep them: exactly `spec.replicas` pods, Running and Ready at once
//! (no process runs; Jobs' pods, which do run, are `jobs.rs`'s).
//!
//! A Deployment's pods are `<deployment>-<pod-template-hash>-<5 characters>`, a
//! StatefulSet's `<set>-<ordinal>` (with its claims, `<template>-<set>-<ordinal>`, as
//! volumes). Each carries the template's labels (plus `pod-template-hash`, or
//! `controller-revision-hash`, `statefulset.kubernetes.io/pod-name` and
//! `apps.kubernetes.io/pod-index`), its spec, and a controller ownerReference to the
//! workload itself: kubesim serves no ReplicaSets, so a Deployment owns its pods directly.
//! A pod deleted by anyone is replaced after [`ROLLOUT`] (a new name for a Deployment, the
//! same for a StatefulSet; always a new uid); a changed template replaces every pod;
//! scaling adds or deletes pods (a StatefulSet's highest ordinals first). Deleting the
//! workload deletes its pods through the garbage collector (`http.rs`).

use crate::controllers::ROLLOUT;
use crate::now;
use crate::store::Change;
use crate::{Cluster, lock};
use serde_json::{Value, json};

/// Replaces a workload's pod when it goes, as its controller notices the shortfall.
pub(crate) fn on_change(cluster: &Cluster, change: &Change) {
    if !change.group.is_empty() || change.plural != "pods" || change.kind != "DELETED" {
        return;
    }
    let Some(plural) = workload_of(&change.object) else {
        return;
    };
    let owner = controller_ref(&change.object)["name"].as_str().unwrap_or_default().to_owned();
    let (cluster, namespace) = (cluster.clone(), change.namespace.clone());
    tokio::spawn(async move {
        tokio::time::sleep(ROLLOUT).await;
        reconcile(&cluster, plural, &namespace, &owner);
    });
}

fn controller_ref(pod: &Value) -> &Value {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .unwrap_or(&Value::Null)
}

/// The workload resource (`deployments`, `statefulsets`) controlling `pod`, if any.
fn workload_of(pod: &Value) -> Option<&'static str> {
    let owner = controller_ref(pod);
    match (owner["apiVersion"].as_str(), owner["kind"].as_str()) {
        (Some("apps/v1"), Some("Deployment")) => Some("deployments"),
        (Some("apps/v1"), Some("StatefulSet")) => Some("statefulsets"),
        _ => None,
    }
}

/// Makes the pods of workload `plural`/`namespace`/`name` what its spec asks for.
pub(crate) fn reconcile(cluster: &Cluster, plural: &str, namespace: &str, name: &str) {
    // One reconcile at a time: two at once would both see a shortfall and both fill it.
    let _serial = lock(&cluster.inner.workloads);
    let key = ("apps".to_owned(), plural.to_owned(), namespace.to_owned(), name.to_owned());
    let Some(workload) = cluster.store().get(&key).cloned() else {
        return;
    };
    if !workload["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let Some(pod_resource) = cluster.resource("", "pods") else {
        return;
    };
    let uid = workload["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let replicas = usize::try_from(workload["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
    let mut pods: Vec<Value> = cluster
        .store()
        .list("", "pods", namespace)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && controller_ref(p)["uid"] == uid.as_str())
        .collect();
    pods.sort_by_key(|p| pod_name(p).to_owned());
    let hash = template_hash(&workload["spec"]["template"]);
    let delete = |pod: &Value| {
        let _ = crate::http::delete_object(cluster, &pod_resource, namespace, pod_name(pod));
    };
    let create = |pod: Value| {
        match crate::http::create_object(cluster, &pod_resource, namespace, pod, "kube-controller-manager") {
            // A namespace being deleted takes no new pods, as the real controller finds.
            Ok(_) | Err(crate::http::ApiError { code: 403 | 404, .. }) => {}
            Err(e) => eprintln!("kubesim: creating a pod of {plural} {namespace}/{name}: {}", e.message),
        }
    };
    if plural == "statefulsets" {
        let revision = format!("{name}-{hash}");
        let mut kept = Vec::new();
        for pod in &pods {
            let ordinal = ordinal_of(pod_name(pod), name);
            let current = pod["metadata"]["labels"]["controller-revision-hash"] == revision.as_str();
            match ordinal {
                Some(i) if i < replicas && current => kept.push(i),
                _ => delete(pod),
            }
        }
        for ordinal in (0..replicas).filter(|i| !kept.contains(i)) {
            create(set_pod(&workload, namespace, ordinal, &revision));
        }
    } else {
        let (current, old): (Vec<&Value>, Vec<&Value>) = pods
            .iter()
            .partition(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        for pod in old.iter().chain(current.iter().skip(replicas)) {
            delete(pod);
        }
        for _ in current.len()..replicas {
            let pod_name = format!("{name}-{hash}-{}", crate::jobs::suffix());
            create(deployment_pod(&workload, &pod_name, &hash));
        }
    }
}

fn pod_name(pod: &Value) -> &str {
    pod["metadata"]["name"].as_str().unwrap_or_default()
}

/// The ordinal of a StatefulSet's pod from its name, `<set>-<ordinal>`.
fn ordinal_of(pod: &str, set: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Ten characters from the alphabet of generated names, the same for the same template, as
/// the `pod-template-hash` of a Deployment's ReplicaSet is.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // FNV-1a: stable across runs and Rust versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char;
            hash /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A pod made from `workload`'s template, Running and Ready.
fn pod_from(workload: &Value, pod_name: &str, labels: &[(&str, String)]) -> Value {
    let template = &workload["spec"]["template"];
    let mut all_labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in labels {
        all_labels.insert((*k).into(), v.clone().into());
    }
    let mut metadata = json!({
        "name": pod_name, "labels": all_labels,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": workload["kind"], "name": workload["metadata"]["name"],
                             "uid": workload["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        metadata["annotations"] = annotations.clone().into();
    }
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["nodeName"] = "kubesim-node".into();
    let started = now();
    let ip = {
        let b = uuid::Uuid::new_v4().into_bytes();
        format!("10.{}.{}.{}", b[0], b[1], b[2].max(1))
    };
    let containers: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true,
                   "restartCount": 0, "state": {"running": {"startedAt": started}}})
        })
        .collect();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": started});
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
        "status": {
            "phase": "Running", "startTime": started, "qosClass": "BestEffort",
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"),
                           condition("ContainersReady"), condition("PodScheduled")],
            "containerStatuses": containers,
        },
    })
}

fn deployment_pod(deployment: &Value, pod_name: &str, hash: &str) -> Value {
    pod_from(deployment, pod_name, &[("pod-template-hash", hash.to_owned())])
}

/// The StatefulSet's pod `ordinal`: a stable hostname under the set's service, and its
/// claims mounted.
fn set_pod(set: &Value, namespace: &str, ordinal: usize, revision: &str) -> Value {
    let set_name = set["metadata"]["name"].as_str().unwrap_or_default();
    let pod_name = format!("{set_name}-{ordinal}");
    let mut pod = pod_from(
        set,
        &pod_name,
        &[
            ("controller-revision-hash", revision.to_owned()),
            ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
            ("apps.kubernetes.io/pod-index", ordinal.to_string()),
        ],
    );
    pod["spec"]["hostname"] = pod_name.clone().into();
    if let Some(service) = set["spec"]["serviceName"].as_str() {
        pod["spec"]["subdomain"] = service.into();
    }
    let claims: Vec<Value> = set["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .map(|t| json!({"name": t, "persistentVolumeClaim": {"claimName": format!("{t}-{set_name}-{ordinal}")}}))
        .collect();
    if !claims.is_empty() {
        let volumes = pod["spec"]["volumes"].as_array().cloned().unwrap_or_default();
        pod["spec"]["volumes"] = volumes.into_iter().chain(claims).collect::<Vec<_>>().into();
    }
    pod["metadata"]["namespace"] = namespace.into();
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_controllers() {
        let hash = template_hash(&json!({"spec": {"containers": [{"name": "web"}]}}));
        assert_eq!(hash.len(), 10);
        assert!(hash.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{hash}");
        assert_eq!(hash, template_hash(&json!({"spec": {"containers": [{"name": "web"}]}})));
        assert_ne!(hash, template_hash(&json!({"spec": {"containers": [{"name": "db"}]}})));
        assert_eq!(ordinal_of("db-12", "db"), Some(12));
        assert_eq!(ordinal_of("db-x", "db"), None);
        assert_eq!(ordinal_of("dbx-1", "db"), None);
    }
}

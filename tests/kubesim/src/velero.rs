//! A simulated Velero server: Backups move New → InProgress → Completed (or PartiallyFailed,
//! or stay InProgress, as the fault hooks say), recording the objects of the included
//! namespaces with item counts; Restores re-create those objects (namespaces mapped) and
//! count what they restored.

use crate::Cluster;
use crate::store::Change;
use serde_json::{Value, json};
use std::time::Duration;

/// How a simulated Velero behaves; change it with [`Cluster::velero`].
#[derive(Debug, Clone)]
pub struct VeleroBehaviour {
    /// Time between phases.
    pub phase_delay: Duration,
    /// Backups stay InProgress forever.
    pub stuck: bool,
    /// Backups end PartiallyFailed with this many errors (0: Completed).
    pub partial_errors: i64,
}

impl Default for VeleroBehaviour {
    fn default() -> Self {
        VeleroBehaviour {
            phase_delay: Duration::from_millis(150),
            stuck: false,
            partial_errors: 0,
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reacts to a change of a Velero object.
pub fn on_change(cluster: &Cluster, change: &Change) {
    if change.group != "velero.io" || change.kind != "ADDED" || !change.object["status"]["phase"].is_null() {
        return;
    }
    let (cluster, plural, namespace) = (cluster.clone(), change.plural.clone(), change.namespace.clone());
    let name = change.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    tokio::spawn(async move {
        match plural.as_str() {
            "backups" => run_backup(&cluster, &namespace, &name).await,
            "restores" => run_restore(&cluster, &namespace, &name).await,
            _ => {}
        }
    });
}

fn get(cluster: &Cluster, plural: &str, namespace: &str, name: &str) -> Option<Value> {
    cluster
        .store()
        .get(&("velero.io".into(), plural.into(), namespace.into(), name.into()))
        .cloned()
}

fn set_status(cluster: &Cluster, plural: &str, namespace: &str, name: &str, status: Value) {
    let Some(resource) = cluster.resource("velero.io", plural) else {
        return;
    };
    let Some(mut object) = get(cluster, plural, namespace, name) else {
        return;
    };
    for (k, v) in status.as_object().into_iter().flatten() {
        object["status"][k] = v.clone();
    }
    let _ = crate::http::update_status(cluster, &resource, namespace, name, object);
}

/// The objects a backup of `spec` takes: everything in the included namespaces (all when
/// none is named) but Velero's own objects, with the namespaces themselves.
fn items(cluster: &Cluster, spec: &Value) -> Vec<Value> {
    let list = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (included, excluded) = (list("includedNamespaces"), list("excludedNamespaces"));
    let (resources, excluded_resources) = (list("includedResources"), list("excludedResources"));
    let wanted_ns = |ns: &str| (included.is_empty() || included.iter().any(|i| i == "*" || i == ns)) && !excluded.iter().any(|e| e == ns);
    let wanted_resource = |plural: &str| {
        (resources.is_empty() || resources.iter().any(|r| r == "*" || r == plural)) && !excluded_resources.iter().any(|r| r == plural)
    };
    let store = cluster.store();
    cluster
        .resources()
        .iter()
        .filter(|r| r.group != "velero.io" && wanted_resource(&r.plural))
        .flat_map(|r| store.list(&r.group, &r.plural, ""))
        .filter(|o| {
            let ns = o["metadata"]["namespace"].as_str();
            match ns {
                Some(ns) => wanted_ns(ns),
                None => o["kind"] == "Namespace" && wanted_ns(o["metadata"]["name"].as_str().unwrap_or_default()),
            }
        })
        .collect()
}

async fn run_backup(cluster: &Cluster, namespace: &str, name: &str) {
    let behaviour = cluster.velero_behaviour();
    let Some(backup) = get(cluster, "backups", namespace, name) else {
        return;
    };
    set_status(cluster, "backups", namespace, name, json!({"phase": "New"}));
    tokio::time::sleep(behaviour.phase_delay).await;
    let taken = items(cluster, &backup["spec"]);
    let total = taken.len() as i64;
    set_status(
        cluster,
        "backups",
        namespace,
        name,
        json!({"phase": "InProgress", "startTimestamp": now(), "version": 1, "formatVersion": "1.1.0", "progress": {"totalItems": total, "itemsBackedUp": 0}}),
    );
    if behaviour.stuck {
        return;
    }
    tokio::time::sleep(behaviour.phase_delay).await;
    cluster.keep_backup(name, taken);
    let phase = if behaviour.partial_errors > 0 {
        "PartiallyFailed"
    } else {
        "Completed"
    };
    set_status(
        cluster,
        "backups",
        namespace,
        name,
        json!({"phase": phase, "completionTimestamp": now(), "expiration": now(), "errors": behaviour.partial_errors, "warnings": 0,
               "progress": {"totalItems": total, "itemsBackedUp": total}}),
    );
}

/// What a restored object looks like: as backed up, without what the server sets, in its
/// mapped namespace, labelled with the restore and backup.
fn restored(object: &Value, mapping: &serde_json::Map<String, Value>, restore: &str, backup: &str) -> Value {
    let mut o = object.clone();
    let map = |ns: &str| mapping.get(ns).and_then(Value::as_str).unwrap_or(ns).to_owned();
    if let Some(meta) = o["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "finalizers",
        ] {
            meta.remove(field);
        }
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    if o["kind"] == "Namespace" {
        o["metadata"]["name"] = map(object["metadata"]["name"].as_str().unwrap_or_default()).into();
    } else if let Some(ns) = object["metadata"]["namespace"].as_str() {
        o["metadata"]["namespace"] = map(ns).into();
    }
    o["metadata"]["labels"]["velero.io/restore-name"] = restore.into();
    o["metadata"]["labels"]["velero.io/backup-name"] = backup.into();
    o
}

async fn run_restore(cluster: &Cluster, namespace: &str, name: &str) {
    let behaviour = cluster.velero_behaviour();
    let Some(restore) = get(cluster, "restores", namespace, name) else {
        return;
    };
    let backup = restore["spec"]["backupName"].as_str().unwrap_or_default().to_owned();
    let Some(taken) = cluster.kept_backup(&backup) else {
        set_status(
            cluster,
            "restores",
            namespace,
            name,
            json!({"phase": "FailedValidation", "validationErrors": [format!("Error retrieving backup: backup.velero.io \"{backup}\" not found")]}),
        );
        return;
    };
    let mapping = restore["spec"]["namespaceMapping"].as_object().cloned().unwrap_or_default();
    let update = restore["spec"]["existingResourcePolicy"] == "update";
    let total = taken.len() as i64;
    set_status(
        cluster,
        "restores",
        namespace,
        name,
        json!({"phase": "InProgress", "startTimestamp": now(), "progress": {"totalItems": total, "itemsRestored": 0}}),
    );
    tokio::time::sleep(behaviour.phase_delay).await;
    // Namespaces first, as Velero restores them.
    let mut ordered = taken.clone();
    ordered.sort_by_key(|o| o["kind"] != "Namespace");
    let (mut restored_count, mut warnings, mut errors) = (0, 0, 0);
    for object in &ordered {
        let o = restored(object, &mapping, name, &backup);
        let (group, kind) = match o["apiVersion"].as_str().unwrap_or_default().split_once('/') {
            Some((g, _)) => (g.to_owned(), o["kind"].as_str().unwrap_or_default().to_owned()),
            None => (String::new(), o["kind"].as_str().unwrap_or_default().to_owned()),
        };
        let Some(resource) = cluster.resources().iter().find(|r| r.group == group && r.kind == kind).cloned() else {
            errors += 1;
            continue;
        };
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        match crate::http::create_object(cluster, &resource, &ns, o.clone(), "velero-server") {
            Ok(_) => restored_count += 1,
            Err(e) if e.code == 409 && update => {
                let object_name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                let mut current = cluster
                    .store()
                    .get(&(group.clone(), resource.plural.clone(), ns.clone(), object_name.clone()))
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in o.as_object().into_iter().flatten() {
                    if k != "metadata" {
                        current[k] = v.clone();
                    }
                }
                match crate::http::update_status(cluster, &resource, &ns, &object_name, current) {
                    Ok(_) => restored_count += 1,
                    Err(_) => errors += 1,
                }
            }
            Err(e) if e.code == 409 => warnings += 1,
            Err(_) => errors += 1,
        }
    }
    let phase = if errors > 0 { "PartiallyFailed" } else { "Completed" };
    set_status(
        cluster,
        "restores",
        namespace,
        name,
        json!({"phase": phase, "completionTimestamp": now(), "errors": errors, "warnings": warnings,
               "progress": {"totalItems": total, "itemsRestored": restored_count}}),
    );
}

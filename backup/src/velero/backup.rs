//! A Velero Backup: created once under its name, waited for to a terminal phase.

use super::{Finished, Selection, create_once, terminal, velero_api};
use crate::BackupError;
use crate::kube::wait::{Test, wait_for};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// Velero's namespace (usually `velero`).
    pub namespace: String,
    pub name: String,
    pub selection: Selection,
    pub match_labels: BTreeMap<String, String>,
    pub snapshot_volumes: Option<bool>,
    /// Velero's duration form, e.g. `720h0m0s`.
    pub ttl: Option<String>,
    pub storage_location: Option<String>,
}

fn spec(r: &BackupRequest) -> Value {
    let mut spec = Map::new();
    r.selection.write(&mut spec);
    if !r.match_labels.is_empty() {
        spec.insert("labelSelector".into(), json!({"matchLabels": r.match_labels}));
    }
    if let Some(v) = r.snapshot_volumes {
        spec.insert("snapshotVolumes".into(), v.into());
    }
    if let Some(ttl) = &r.ttl {
        spec.insert("ttl".into(), ttl.clone().into());
    }
    if let Some(bsl) = &r.storage_location {
        spec.insert("storageLocation".into(), bsl.clone().into());
    }
    Value::Object(spec)
}

/// Starts the backup (unless a backup of that name exists: a re-run) and waits until Velero
/// finishes it. Returns whether it was created now, and what Velero reported.
pub async fn backup(client: &kube::Client, request: &BackupRequest, limit: Duration) -> Result<(bool, Finished), BackupError> {
    let api = velero_api(client, "Backup", &request.namespace).await?;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Backup"), "backups");
    let object = DynamicObject::new(&request.name, &ar)
        .within(&request.namespace)
        .data(json!({ "spec": spec(request) }));
    let created = create_once(&api, &object, &format!("creating backup {}", request.name)).await?;
    let finished = wait_finished(client, &request.namespace, "Backup", &request.name, limit).await?;
    Ok((created, Finished::of(&finished, "itemsBackedUp")))
}

/// Waits for a Velero object to reach a terminal phase; returns it as it was then.
pub async fn wait_finished(client: &kube::Client, namespace: &str, kind: &str, name: &str, limit: Duration) -> Result<Value, BackupError> {
    wait_for(client, ("velero.io/v1", kind), name, Some(namespace), &Test::Judge(terminal), limit).await?;
    let api = velero_api(client, kind, namespace).await?;
    let object = api
        .get(name)
        .await
        .map_err(|e| crate::kube::error(e, &format!("reading {kind} {name}")))?;
    serde_json::to_value(object).map_err(|e| BackupError::Invalid(e.to_string()))
}

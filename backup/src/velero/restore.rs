//! A Velero Restore from a named backup or the newest completed backup of a schedule,
//! optionally into other namespaces (a drill restores into a scratch namespace).

use super::backup::wait_finished;
use super::{Finished, Selection, create_once, velero_api};
use crate::BackupError;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Source {
    Backup(String),
    /// The newest Completed backup of this schedule.
    Schedule(String),
}

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub namespace: String,
    pub name: String,
    pub source: Source,
    pub namespace_mapping: BTreeMap<String, String>,
    pub selection: Selection,
    /// `none` (default: keep what exists) or `update`.
    pub existing_resource_policy: Option<String>,
    pub restore_pvs: Option<bool>,
}

/// Starts the restore (unless one of that name exists: a re-run) and waits until Velero
/// finishes it. Returns the backup restored from and what Velero reported.
pub async fn restore(client: &kube::Client, request: &RestoreRequest, limit: Duration) -> Result<(String, Finished), BackupError> {
    let backup = match &request.source {
        Source::Backup(name) => name.clone(),
        Source::Schedule(schedule) => super::schedule::newest_completed(client, &request.namespace, schedule).await?,
    };
    let mut spec = Map::new();
    spec.insert("backupName".into(), backup.clone().into());
    request.selection.write(&mut spec);
    if !request.namespace_mapping.is_empty() {
        spec.insert("namespaceMapping".into(), json!(request.namespace_mapping));
    }
    if let Some(policy) = &request.existing_resource_policy {
        spec.insert("existingResourcePolicy".into(), policy.clone().into());
    }
    if let Some(pvs) = request.restore_pvs {
        spec.insert("restorePVs".into(), pvs.into());
    }
    let api = velero_api(client, "Restore", &request.namespace).await?;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Restore"), "restores");
    let object = DynamicObject::new(&request.name, &ar)
        .within(&request.namespace)
        .data(json!({ "spec": Value::Object(spec) }));
    create_once(&api, &object, &format!("creating restore {}", request.name)).await?;
    let finished = wait_finished(client, &request.namespace, "Restore", &request.name, limit).await?;
    Ok((backup, Finished::of(&finished, "itemsRestored")))
}

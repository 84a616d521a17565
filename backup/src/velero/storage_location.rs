//! A BackupStorageLocation's access mode. Velero's documented DR procedure sets the
//! location ReadOnly in the recovering cluster, so nothing there writes over or expires
//! the backups being restored, and ReadWrite again afterwards.

use super::velero_api;
use crate::BackupError;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// `ReadWrite` when the location does not say (Velero's default).
pub async fn access_mode(client: &kube::Client, namespace: &str, location: &str) -> Result<String, BackupError> {
    let api = velero_api(client, "BackupStorageLocation", namespace).await?;
    let object = api
        .get_opt(location)
        .await
        .map_err(|e| crate::kube::error(e, &format!("reading backup storage location {location}")))?
        .ok_or_else(|| {
            BackupError::NotFound(format!(
                "there is no backup storage location {location} in namespace {namespace} (`velero backup-location get` lists them)"
            ))
        })?;
    Ok(object.data["spec"]["accessMode"].as_str().unwrap_or("ReadWrite").to_owned())
}

/// Sets the access mode (`ReadOnly` or `ReadWrite`); setting the mode it has is a no-op.
pub async fn set_access_mode(client: &kube::Client, namespace: &str, location: &str, mode: &str) -> Result<(), BackupError> {
    let api = velero_api(client, "BackupStorageLocation", namespace).await?;
    api.patch(
        location,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"accessMode": mode}})),
    )
    .await
    .map_err(|e| crate::kube::error(e, &format!("setting backup storage location {location} {mode}")))?;
    Ok(())
}

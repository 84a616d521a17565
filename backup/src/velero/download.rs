//! Velero's per-item results and logs live in object storage; a DownloadRequest makes the
//! Velero server sign a URL for one of them. This fetches it (gzipped) and decodes it, so
//! a restore's errors and warnings, item by item, become evidence.

use super::{create_once, velero_api};
use crate::BackupError;
use crate::kube::wait::{Test, wait_for};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Read;
use std::time::Duration;

/// Messages by where Velero files them: its own, cluster-scoped objects, and by namespace.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Messages {
    pub velero: Vec<String>,
    pub cluster: Vec<String>,
    pub namespaces: std::collections::BTreeMap<String, Vec<String>>,
}

impl Messages {
    fn of(value: &Value) -> Messages {
        let list = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Messages {
            velero: list(&value["velero"]),
            cluster: list(&value["cluster"]),
            namespaces: value["namespaces"]
                .as_object()
                .map(|m| m.iter().map(|(ns, v)| (ns.clone(), list(v))).collect())
                .unwrap_or_default(),
        }
    }

    pub fn count(&self) -> usize {
        self.velero.len() + self.cluster.len() + self.namespaces.values().map(Vec::len).sum::<usize>()
    }
}

/// A restore's (or backup's) results file.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Results {
    pub errors: Messages,
    pub warnings: Messages,
}

/// Fetches the `target` (`RestoreResults`, `BackupResults`, `RestoreLog`, `BackupLog`) of
/// the backup or restore `name`, decompressed.
pub async fn download(client: &kube::Client, namespace: &str, target: &str, name: &str, limit: Duration) -> Result<Vec<u8>, BackupError> {
    let api = velero_api(client, "DownloadRequest", namespace).await?;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "DownloadRequest"), "downloadrequests");
    let mut request_name = format!("{name}-{}", target.to_ascii_lowercase());
    request_name.truncate(63);
    let object = DynamicObject::new(request_name.trim_end_matches('-'), &ar)
        .within(namespace)
        .data(json!({"spec": {"target": {"kind": target, "name": name}}}));
    let request_name = object.metadata.name.clone().unwrap_or_default();
    create_once(&api, &object, &format!("requesting the {target} of {name}")).await?;
    fn processed(object: &Value) -> Result<Option<String>, String> {
        let status = &object["status"];
        Ok((status["phase"] == "Processed" && status["downloadURL"].is_string()).then(|| "Processed".to_owned()))
    }
    wait_for(
        client,
        ("velero.io/v1", "DownloadRequest"),
        &request_name,
        Some(namespace),
        &Test::Judge(processed),
        limit,
    )
    .await?;
    let processed = api
        .get(&request_name)
        .await
        .map_err(|e| crate::kube::error(e, &format!("reading download request {request_name}")))?;
    let url = processed.data["status"]["downloadURL"].as_str().unwrap_or_default().to_owned();
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(limit)
        .send()
        .await
        .map_err(|e| BackupError::Kubernetes {
            message: format!("downloading the {target} of {name}: {e}"),
            retryable: true,
        })?;
    if !response.status().is_success() {
        return Err(BackupError::Kubernetes {
            message: format!("downloading the {target} of {name}: {}", response.status()),
            retryable: response.status().is_server_error(),
        });
    }
    let body = response.bytes().await.map_err(|e| BackupError::Kubernetes {
        message: format!("downloading the {target} of {name}: {e}"),
        retryable: true,
    })?;
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut decoded)
        .map_err(|e| BackupError::Invalid(format!("the {target} of {name} is not gzip: {e}")))?;
    Ok(decoded)
}

/// The errors and warnings, item by item, of restore `name`.
pub async fn restore_results(client: &kube::Client, namespace: &str, name: &str, limit: Duration) -> Result<Results, BackupError> {
    let raw = download(client, namespace, "RestoreResults", name, limit).await?;
    let value: Value =
        serde_json::from_slice(&raw).map_err(|e| BackupError::Invalid(format!("the RestoreResults of {name} are not JSON: {e}")))?;
    Ok(Results {
        errors: Messages::of(&value["errors"]),
        warnings: Messages::of(&value["warnings"]),
    })
}

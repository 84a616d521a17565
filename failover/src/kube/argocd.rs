//! Argo CD Applications in a failover: a sync requested as `argocd app sync` requests it (the
//! Application's `operation` field), waited for until the operation finished and the
//! Application is Synced and Healthy; and the automated sync policy taken off during a
//! failover (so Argo CD does not undo it) and put back after.

use super::{api, error, resource, wait};
use crate::FailoverError;
use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

const API_VERSION: &str = "argoproj.io/v1alpha1";

#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub name: String,
    pub namespace: String,
    /// A revision to sync to (default: the Application's target revision).
    pub revision: Option<String>,
    pub prune: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    pub application: String,
    pub revision: String,
    pub sync_status: String,
    pub health: String,
    pub operation_phase: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// What the sync applied: kind, namespace, name, status.
    pub resources: Value,
    pub synced_at: DateTime<Utc>,
}

async fn applications(client: &kube::Client, namespace: &str) -> Result<kube::Api<kube::api::DynamicObject>, FailoverError> {
    let (ar, caps) = resource(client, API_VERSION, "Application").await.map_err(|e| match e {
        lifeboat_backup::BackupError::Kubernetes { retryable: false, .. } => {
            FailoverError::Invalid("Argo CD is not installed (no applications.argoproj.io): install it, or check the cluster".into())
        }
        other => other.into(),
    })?;
    Ok(api(client, &ar, &caps, Some(namespace)))
}

/// Asks Argo CD to sync the Application.
pub async fn request_sync(client: &kube::Client, r: &SyncRequest) -> Result<(), FailoverError> {
    let apps = applications(client, &r.namespace).await?;
    let mut sync = json!({"prune": r.prune, "syncStrategy": {"hook": {}}});
    if let Some(revision) = &r.revision {
        sync["revision"] = revision.clone().into();
    }
    let operation = json!({"operation": {"initiatedBy": {"username": "lifeboat"}, "sync": sync}});
    apps.patch(&r.name, &PatchParams::default(), &Patch::Merge(operation))
        .await
        .map_err(|e| error(e, &format!("requesting a sync of Application {}", r.name)))?;
    Ok(())
}

/// Done when the last operation finished (Failed and Error fail) and the Application is
/// Synced and Healthy.
fn settled(object: &Value) -> Result<Option<String>, String> {
    let status = &object["status"];
    if !object["operation"].is_null() {
        return Ok(None);
    }
    let phase = status["operationState"]["phase"].as_str().unwrap_or_default();
    if matches!(phase, "Failed" | "Error") {
        return Err(format!(
            "the sync operation ended {phase}: {}",
            status["operationState"]["message"].as_str().unwrap_or("no message")
        ));
    }
    let (sync, health) = (
        status["sync"]["status"].as_str().unwrap_or_default(),
        status["health"]["status"].as_str().unwrap_or_default(),
    );
    Ok((phase == "Succeeded" && sync == "Synced" && health == "Healthy").then(|| format!("Synced, Healthy after {phase}")))
}

/// Waits until the Application settled after the sync, for at most `limit`.
pub async fn wait_synced(client: &kube::Client, r: &SyncRequest, limit: Duration) -> Result<Synced, FailoverError> {
    let waited = wait::wait_for(
        client,
        (API_VERSION, "Application"),
        &r.name,
        Some(&r.namespace),
        &wait::Test::Judge(settled),
        limit,
    )
    .await;
    let apps = applications(client, &r.namespace).await?;
    let met = match waited {
        Ok(met) => met,
        Err(lifeboat_backup::BackupError::Invalid(message)) => {
            return Err(FailoverError::Invalid(format!("Application {}: {message}", r.name)));
        }
        Err(lifeboat_backup::BackupError::NotReady(_)) => {
            let status = apps
                .get_opt(&r.name)
                .await
                .ok()
                .flatten()
                .map(|a| a.data["status"].clone())
                .unwrap_or_default();
            let text = |v: &Value| v.as_str().unwrap_or("unknown").to_owned();
            return Err(FailoverError::NotReady(format!(
                "Application {} did not become Synced and Healthy within {limit:?}: sync {}, health {}, last operation {}",
                r.name,
                text(&status["sync"]["status"]),
                text(&status["health"]["status"]),
                text(&status["operationState"]["phase"])
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let app = apps
        .get(&r.name)
        .await
        .map_err(|e| error(e, &format!("reading Application {}", r.name)))?;
    let status = &app.data["status"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(Synced {
        application: r.name.clone(),
        revision: text(&status["sync"]["revision"]),
        sync_status: text(&status["sync"]["status"]),
        health: text(&status["health"]["status"]),
        operation_phase: text(&status["operationState"]["phase"]),
        started_at: status["operationState"]["startedAt"].as_str().map(str::to_owned),
        finished_at: status["operationState"]["finishedAt"].as_str().map(str::to_owned),
        resources: status["operationState"]["syncResult"]["resources"].clone(),
        synced_at: met.met_at,
    })
}

/// The Application's automated sync policy (`None`: manual sync).
pub async fn automated(client: &kube::Client, namespace: &str, name: &str) -> Result<Option<Value>, FailoverError> {
    let apps = applications(client, namespace).await?;
    let app = apps.get(name).await.map_err(|e| error(e, &format!("reading Application {name}")))?;
    Ok(Some(app.data["spec"]["syncPolicy"]["automated"].clone()).filter(|a| !a.is_null()))
}

/// Sets (or, with `None`, removes) the automated sync policy.
pub async fn set_automated(client: &kube::Client, namespace: &str, name: &str, policy: Option<Value>) -> Result<(), FailoverError> {
    let apps = applications(client, namespace).await?;
    let patch = json!({"spec": {"syncPolicy": {"automated": policy}}});
    apps.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| error(e, &format!("setting the sync policy of Application {name}")))?;
    Ok(())
}

//! `argocd.sync`: sync an Argo CD Application (as `argocd app sync` does: the
//! Application's `operation`), optionally to a revision and with prune, and wait until the
//! operation succeeded and the Application is Synced and Healthy. The request is journaled,
//! so a re-run waits for the sync it asked for instead of asking again.

use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::argocd::{SyncRequest, request_sync, wait_synced};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Application.
    pub application: Text,
    /// Where Argo CD keeps its Applications (default `argocd`).
    #[serde(default = "super::default_namespace")]
    pub namespace: Text,
    /// Sync to this revision (default: the Application's target revision).
    #[serde(default)]
    pub revision: Option<Text>,
    /// Delete what Git no longer has.
    #[serde(default)]
    pub prune: bool,
    /// How long until the Application must be Synced and Healthy (default 10m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

/// A sync this step asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRequested {
    pub application: String,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

crate::evidence::single_record!(SyncRequested, "argocd-sync/");

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let in_cluster = crate::steps::k8s::access::in_cluster(&cluster);
    let request = SyncRequest {
        name: o.application.0.clone(),
        namespace: o.namespace.0.clone(),
        revision: o.revision.map(|r| r.0).filter(|r| !r.is_empty()),
        prune: o.prune,
    };
    if cx.records::<SyncRequested>().await?.is_empty() {
        request_sync(&client, &request).await.map_err(&in_cluster)?;
        cx.record(&SyncRequested {
            application: request.name.clone(),
            at: None,
        })
        .await?;
    }
    let limit = o.timeout.map_or(Duration::from_secs(600), |d| d.get());
    let synced = tokio::select! {
        r = wait_synced(&client, &request, limit) => r.map_err(&in_cluster)?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    Ok(outputs_of(&synced))
}

//! `velero.wait_backup_sync`: in the DR cluster, wait until a backup taken elsewhere has
//! been synced from the shared storage location and is visible and finished, by watch.
//! Restoring before that fails Velero's validation.

use super::{PartiallyFailed, default_namespace};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_backup::velero::sync::wait_backup_sync;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The backup's name, e.g. `${{ steps.backup.outputs.name }}`.
    pub backup: Text,
    #[serde(default = "default_namespace")]
    pub velero_namespace: String,
    #[serde(default)]
    pub partially_failed: PartiallyFailed,
    /// Give up after this long (default 10m; Velero syncs every minute by default).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let limit = o.timeout.map_or(Duration::from_secs(600), |d| d.get());
    let finished = tokio::select! {
        r = wait_backup_sync(&client, &o.velero_namespace, &o.backup.0, limit) => r.map_err(crate::steps::k8s::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let finished = finished
        .judged("backup", matches!(o.partially_failed, PartiallyFailed::Warn))
        .map_err(crate::steps::k8s::access::in_cluster(&cluster))?;
    let mut out = outputs_of(&finished);
    out.insert("visible_at".into(), chrono::Utc::now().to_rfc3339().into());
    Ok(out)
}

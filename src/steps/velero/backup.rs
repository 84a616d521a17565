//! `velero.backup`: a Velero Backup, waited for to a terminal phase; Completed passes,
//! PartiallyFailed fails unless `partially_failed: warn`, Failed and FailedValidation fail
//! with Velero's reason. Its name comes from the idempotency key, so a re-run waits for the
//! backup its first attempt created.

use super::{PartiallyFailed, default_namespace};
use crate::plan::model::Limit;
use crate::steps::k8s::object_name;
use crate::steps::{Outputs, StepContext, StepError, outputs_of};
use lifeboat_backup::velero::Selection;
use lifeboat_backup::velero::backup::{BackupRequest, backup};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Backup's name (default: derived from the run and step).
    #[serde(default)]
    pub name: Option<String>,
    /// Velero's namespace (default `velero`).
    #[serde(default = "default_namespace")]
    pub velero_namespace: String,
    #[serde(default)]
    pub included_namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub included_resources: Vec<String>,
    #[serde(default)]
    pub excluded_resources: Vec<String>,
    /// Only objects with these labels.
    #[serde(default)]
    pub label_selector: BTreeMap<String, String>,
    /// Take volume snapshots (default: Velero's setting).
    #[serde(default)]
    pub snapshot_volumes: Option<bool>,
    /// How long Velero keeps it, in Velero's form, e.g. `720h0m0s`.
    #[serde(default)]
    pub ttl: Option<String>,
    /// The BackupStorageLocation (default: Velero's default location).
    #[serde(default)]
    pub storage_location: Option<String>,
    #[serde(default)]
    pub partially_failed: PartiallyFailed,
    /// Give up waiting after this long (default 30m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let request = BackupRequest {
        namespace: o.velero_namespace.clone(),
        name: object_name(&o.name, &cx.idempotency_key),
        selection: Selection {
            included_namespaces: o.included_namespaces,
            excluded_namespaces: o.excluded_namespaces,
            included_resources: o.included_resources,
            excluded_resources: o.excluded_resources,
        },
        match_labels: o.label_selector,
        snapshot_volumes: o.snapshot_volumes,
        ttl: o.ttl,
        storage_location: o.storage_location,
    };
    let limit = o.timeout.map_or(Duration::from_secs(1800), |d| d.get());
    let (created, finished) = tokio::select! {
        r = backup(&client, &request, limit) => r.map_err(crate::steps::k8s::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let finished = finished
        .judged("backup", matches!(o.partially_failed, PartiallyFailed::Warn))
        .map_err(crate::steps::k8s::access::in_cluster(&cluster))?;
    let mut out = outputs_of(&finished);
    out.insert("created".into(), created.into());
    Ok(out)
}

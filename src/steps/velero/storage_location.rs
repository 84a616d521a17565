//! `velero.storage_location`: set a BackupStorageLocation ReadOnly or ReadWrite, as
//! Velero's DR procedure does in the recovering cluster. The mode it had is journaled
//! before it is changed and is an output, so a compensation or a `finally` step
//! (`access_mode: ${{ steps.<id>.outputs.previous_mode }}`) puts it back, even after a
//! re-run.

use super::default_namespace;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_backup::velero::storage_location::{access_mode, set_access_mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq)]
pub enum AccessMode {
    ReadOnly,
    ReadWrite,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The BackupStorageLocation (default `default`).
    #[serde(default)]
    pub location: Option<Text>,
    #[serde(default = "default_namespace")]
    pub velero_namespace: String,
    /// `ReadOnly` or `ReadWrite`.
    pub access_mode: AccessMode,
}

/// The mode before the first attempt changed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousMode {
    pub location: String,
    pub mode: String,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

crate::evidence::single_record!(PreviousMode, "bsl/");

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let in_cluster = crate::steps::k8s::access::in_cluster(&cluster);
    let location = o.location.map_or("default".to_owned(), |l| l.0);
    let previous = match cx.records::<PreviousMode>().await?.pop() {
        Some(recorded) => recorded.mode,
        None => {
            let now = access_mode(&client, &o.velero_namespace, &location).await.map_err(&in_cluster)?;
            cx.record(&PreviousMode {
                location: location.clone(),
                mode: now.clone(),
                at: None,
            })
            .await?;
            now
        }
    };
    let mode = match o.access_mode {
        AccessMode::ReadOnly => "ReadOnly",
        AccessMode::ReadWrite => "ReadWrite",
    };
    set_access_mode(&client, &o.velero_namespace, &location, mode)
        .await
        .map_err(&in_cluster)?;
    let mut out = Outputs::new();
    out.insert("location".into(), location.into());
    out.insert("previous_mode".into(), previous.into());
    out.insert("access_mode".into(), mode.into());
    Ok(out)
}

//! The `velero.*` step kinds: Velero backups, restores, backup sync into a DR cluster,
//! storage location modes and schedule freshness as plan steps, on the cluster the
//! step names, through `lifeboat_backup::velero`.

pub mod backup;
pub mod check_schedule;
pub mod restore;
pub mod storage_location;
pub mod wait_backup_sync;

use schemars::JsonSchema;
use serde::Deserialize;

/// What a PartiallyFailed backup or restore means for the step.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartiallyFailed {
    /// The step fails (default).
    #[default]
    Fail,
    /// The step succeeds; errors and warnings are in its outputs.
    Warn,
}

fn default_namespace() -> String {
    "velero".into()
}

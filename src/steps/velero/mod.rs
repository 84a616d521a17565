//! The `velero.*` step kinds: Velero backups and restores as plan steps, on the cluster the
//! step names, through `lifeboat_backup::velero`.

pub mod backup;
pub mod restore;

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

/// A Velero object name derived from the idempotency key, so a re-run finds its object.
fn object_name(explicit: &Option<String>, key: &str) -> String {
    if let Some(name) = explicit {
        return name.clone();
    }
    let mut name: String = format!("lifeboat-{key}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

//! Velero through its API objects (velero.io/v1): backups and restores created and waited
//! for to a terminal phase by watch. An unknown phase is never taken as done, and a backup
//! is successful only when Velero says `Completed` (unlike `velero backup create --wait`,
//! which exits 0 for a Failed backup).

pub mod backup;
pub mod download;
pub mod restore;
pub mod schedule;
pub mod storage_location;
pub mod sync;

use crate::BackupError;
use crate::kube::{api, error, resource};
use kube::api::{Api, DynamicObject, PostParams};
use serde::Serialize;
use serde_json::Value;

/// Which namespaces and resources a backup or restore covers (empty: Velero's default).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    pub included_resources: Vec<String>,
    pub excluded_resources: Vec<String>,
}

impl Selection {
    /// Writes the non-empty lists into a Backup's or Restore's spec.
    pub fn write(&self, spec: &mut serde_json::Map<String, Value>) {
        for (key, values) in [
            ("includedNamespaces", &self.included_namespaces),
            ("excludedNamespaces", &self.excluded_namespaces),
            ("includedResources", &self.included_resources),
            ("excludedResources", &self.excluded_resources),
        ] {
            if !values.is_empty() {
                spec.insert(key.into(), serde_json::json!(values));
            }
        }
    }
}

/// Phases after which Velero does nothing more with the object.
pub const TERMINAL: &[&str] = &["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// The API of a Velero kind in Velero's namespace; "not installed" when the cluster does
/// not serve it.
pub async fn velero_api(client: &kube::Client, kind: &str, namespace: &str) -> Result<Api<DynamicObject>, BackupError> {
    let (ar, caps) = resource(client, "velero.io/v1", kind).await.map_err(|e| match e {
        BackupError::Kubernetes { retryable: false, .. } => BackupError::Invalid(format!(
            "Velero is not installed (no {}.velero.io): install it, or check the cluster",
            kind.to_ascii_lowercase() + "s"
        )),
        other => other,
    })?;
    Ok(api(client, &ar, &caps, Some(namespace)))
}

/// Creates `object` unless it exists (a re-run under the same name); returns whether it
/// was created now.
pub async fn create_once(api: &Api<DynamicObject>, object: &DynamicObject, what: &str) -> Result<bool, BackupError> {
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(error(e, what)),
    }
}

/// Judges a Velero object for `wait::Test::Judge`: done at a terminal phase.
pub fn terminal(object: &Value) -> Result<Option<String>, String> {
    let phase = object["status"]["phase"].as_str().unwrap_or_default();
    Ok(TERMINAL.contains(&phase).then(|| phase.to_owned()))
}

/// What a finished backup or restore reports.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub name: String,
    pub phase: String,
    /// Items backed up or restored.
    pub items: Option<i64>,
    pub total_items: Option<i64>,
    pub errors: i64,
    pub warnings: i64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub failure_reason: Option<String>,
    pub validation_errors: Vec<String>,
}

impl Finished {
    pub fn of(object: &Value, items_field: &str) -> Finished {
        let status = &object["status"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Finished {
            name: object["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            phase: status["phase"].as_str().unwrap_or_default().to_owned(),
            items: status["progress"][items_field].as_i64(),
            total_items: status["progress"]["totalItems"].as_i64(),
            errors: status["errors"].as_i64().unwrap_or(0),
            warnings: status["warnings"].as_i64().unwrap_or(0),
            started_at: text(&status["startTimestamp"]),
            completed_at: text(&status["completionTimestamp"]),
            failure_reason: text(&status["failureReason"]),
            validation_errors: status["validationErrors"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }

    /// `Ok` for Completed, and for PartiallyFailed when `accept_partial`; otherwise a
    /// terminal error saying why.
    pub fn judged(self, what: &str, accept_partial: bool) -> Result<Finished, BackupError> {
        match self.phase.as_str() {
            "Completed" => Ok(self),
            "PartiallyFailed" if accept_partial => Ok(self),
            "PartiallyFailed" => Err(BackupError::Invalid(format!(
                "{what} {} PartiallyFailed with {} errors and {} warnings (set `partially_failed: warn` to accept it)",
                self.name, self.errors, self.warnings
            ))),
            phase => Err(BackupError::Invalid(format!(
                "{what} {} ended {phase}: {}",
                self.name,
                self.failure_reason.clone().unwrap_or_else(|| self.validation_errors.join("; "))
            ))),
        }
    }
}

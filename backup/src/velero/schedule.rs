//! A Velero Schedule and its backups: the newest Completed one (what a restore "from the
//! schedule" restores) and its age, the pre-flight check that a plan's RPO is possible.

use super::velero_api;
use crate::BackupError;
use chrono::{DateTime, Utc};
use kube::api::ListParams;
use serde::Serialize;

/// What a schedule shows about the backups it took.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleState {
    pub schedule: String,
    /// Velero's phase of the Schedule (`Enabled`, `FailedValidation`, …).
    pub phase: String,
    pub paused: bool,
    /// The cron expression, as written in the Schedule.
    pub cron: String,
    /// The newest Completed backup, when there is one.
    pub last_completed: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Backups of the schedule newer than the last Completed one that did not complete
    /// (`PartiallyFailed`, `Failed`, …): the reason a schedule falls behind.
    pub failed_since: Vec<String>,
}

impl ScheduleState {
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.completed_at.map(|t| now - t)
    }
}

fn completion(b: &kube::api::DynamicObject) -> Option<DateTime<Utc>> {
    b.data["status"]["completionTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Reads `schedule` and its backups in Velero's `namespace`.
pub async fn state(client: &kube::Client, namespace: &str, schedule: &str) -> Result<ScheduleState, BackupError> {
    let schedules = velero_api(client, "Schedule", namespace).await?;
    let object = schedules
        .get_opt(schedule)
        .await
        .map_err(|e| crate::kube::error(e, &format!("reading schedule {schedule}")))?
        .ok_or_else(|| {
            BackupError::NotFound(format!(
                "there is no Velero schedule {schedule} in namespace {namespace} (`velero schedule get` lists them)"
            ))
        })?;
    let backups = velero_api(client, "Backup", namespace)
        .await?
        .list(&ListParams::default().labels(&format!("velero.io/schedule-name={schedule}")))
        .await
        .map_err(|e| crate::kube::error(e, &format!("listing the backups of schedule {schedule}")))?;
    let newest = backups
        .items
        .iter()
        .filter(|b| b.data["status"]["phase"] == "Completed")
        .max_by_key(|b| completion(b));
    let completed_at = newest.and_then(completion);
    let started = |b: &kube::api::DynamicObject| {
        b.data["status"]["startTimestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let mut failed_since: Vec<_> = backups
        .items
        .iter()
        .filter(|b| {
            let phase = b.data["status"]["phase"].as_str().unwrap_or_default();
            matches!(phase, "PartiallyFailed" | "Failed" | "FailedValidation")
                && completed_at.is_none_or(|c| started(b).or_else(|| completion(b)).is_none_or(|s| s > c))
        })
        .filter_map(|b| {
            Some(format!(
                "{} ({})",
                b.metadata.name.clone()?,
                b.data["status"]["phase"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    failed_since.sort();
    Ok(ScheduleState {
        schedule: schedule.to_owned(),
        phase: object.data["status"]["phase"].as_str().unwrap_or_default().to_owned(),
        paused: object.data["spec"]["paused"].as_bool().unwrap_or(false),
        cron: object.data["spec"]["schedule"].as_str().unwrap_or_default().to_owned(),
        last_completed: newest.and_then(|b| b.metadata.name.clone()),
        completed_at,
        failed_since,
    })
}

/// The newest Completed backup of `schedule`.
pub async fn newest_completed(client: &kube::Client, namespace: &str, schedule: &str) -> Result<String, BackupError> {
    state(client, namespace, schedule)
        .await?
        .last_completed
        .ok_or_else(|| BackupError::NotFound(format!("schedule {schedule} has no Completed backup in namespace {namespace}")))
}

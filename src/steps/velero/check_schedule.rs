//! `velero.check_schedule`: the pre-flight "is our RPO even possible". The schedule's
//! newest Completed backup must be younger than `max_age` (default: the plan's RPO
//! objective); otherwise the step fails naming the age, the schedule's state and the
//! backups that failed since.

use super::default_namespace;
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_backup::velero::schedule::state;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Velero Schedule.
    pub schedule: Text,
    #[serde(default = "default_namespace")]
    pub velero_namespace: String,
    /// The oldest the newest Completed backup may be (default: the plan's
    /// `objectives.rpo`).
    #[serde(default)]
    pub max_age: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let Some(max_age) = o.max_age.map(|d| d.get()).or(cx.rpo_objective) else {
        return Err(StepError::terminal(
            "max_age: give the oldest acceptable backup (e.g. 1h), or set the plan's objectives.rpo",
        ));
    };
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let state = state(&client, &o.velero_namespace, &o.schedule.0)
        .await
        .map_err(crate::steps::k8s::access::in_cluster(&cluster))?;
    let now = chrono::Utc::now();
    let age = state.age(now);
    // Whole seconds: `2h0m3s` reads better than `7203.4s`.
    let human = |d: std::time::Duration| crate::plan::duration::format(std::time::Duration::from_secs(d.as_secs()));
    let failed = if state.failed_since.is_empty() {
        String::new()
    } else {
        format!("; since then: {}", state.failed_since.join(", "))
    };
    let paused = if state.paused { " (the schedule is paused)" } else { "" };
    let Some(age) = age.and_then(|a| a.to_std().ok()) else {
        return Err(StepError::terminal(format!(
            "cluster `{cluster}`: schedule {} has no Completed backup, so no recovery point exists{paused}{failed}",
            state.schedule
        )));
    };
    if age > max_age {
        return Err(StepError::terminal(format!(
            "cluster `{cluster}`: schedule {}'s newest Completed backup {} is {} old, older than the allowed {}: the RPO cannot be met{paused}{failed}",
            state.schedule,
            state.last_completed.as_deref().unwrap_or_default(),
            human(age),
            human(max_age)
        )));
    }
    let mut out = outputs_of(&state);
    out.insert("age_seconds".into(), age.as_secs_f64().into());
    out.insert("max_age_seconds".into(), max_age.as_secs_f64().into());
    Ok(out)
}

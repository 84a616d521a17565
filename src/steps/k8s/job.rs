//! `k8s.job`: run a Job to completion inside the cluster (a data check from where the app
//! runs, a smoke test) and report its exit status and the tail of its log. The Job's name
//! comes from the idempotency key, so a re-run waits for the Job already started. A Job
//! that fails fails the step, with the exit code and the log tail in the message.

use crate::plan::count::Count;
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::job::{JobRequest, run_job};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Job's name (default: derived from the run and step).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<Text>,
    /// The container image, e.g. `postgres:15`.
    pub image: Text,
    /// The container's command, e.g. `[sh, -c, "psql -Atc 'select count(*) from orders'"]`.
    pub command: Vec<Text>,
    #[serde(default)]
    pub args: Vec<Text>,
    /// Environment of the container (plain values; use the image's own Secrets for
    /// credentials you do not want in the Job's spec).
    #[serde(default)]
    pub env: BTreeMap<String, Text>,
    /// Failed pods tolerated before the Job fails (default 0: a check runs once).
    #[serde(default)]
    pub backoff_limit: Option<Count<0, 100>>,
    /// Kubernetes ends the Job after this long (`activeDeadlineSeconds`).
    #[serde(default)]
    pub deadline: Option<Limit>,
    #[serde(default)]
    pub service_account: Option<Text>,
    /// Kubernetes deletes the finished Job after this long (default: kept).
    #[serde(default)]
    pub ttl_after_finished: Option<Limit>,
    /// Lines of the log kept as output (default 20).
    #[serde(default)]
    pub tail_lines: Option<Count<1, 10000>>,
    /// Give up waiting after this long (default 10m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    if o.command.is_empty() {
        return Err(StepError::terminal("command: give the container's command, e.g. [sh, -c, \"…\"]"));
    }
    let (client, cluster) = super::access::client(cx).await?;
    let seconds = |d: Limit| d.get().as_secs().max(1) as i64;
    let request = JobRequest {
        name: super::object_name(&o.name, &cx.idempotency_key),
        namespace: super::namespace(&o.namespace).map(str::to_owned),
        image: o.image.0,
        command: o.command.into_iter().map(|t| t.0).collect(),
        args: o.args.into_iter().map(|t| t.0).collect(),
        env: o.env.into_iter().map(|(k, v)| (k, v.0)).collect(),
        backoff_limit: o.backoff_limit.map_or(0, |c| c.get() as i64),
        active_deadline_seconds: o.deadline.map(seconds),
        service_account: o.service_account.map(|s| s.0).filter(|s| !s.is_empty()),
        ttl_seconds_after_finished: o.ttl_after_finished.map(seconds),
        tail_lines: o.tail_lines.map_or(20, |c| c.get() as i64),
    };
    let limit = o.timeout.map_or(Duration::from_secs(600), |d| d.get());
    let (created, outcome) = tokio::select! {
        r = run_job(&client, &request, limit) => r.map_err(super::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    if !outcome.succeeded {
        let exit = outcome
            .exit_code
            .map_or("no container exit code".to_owned(), |c| format!("its last pod exited {c}"));
        return Err(StepError::terminal(format!(
            "cluster `{cluster}`: Job {} failed ({}{}); {exit}; log tail:\n{}",
            outcome.name,
            outcome.reason,
            outcome.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
            outcome.log_tail.trim_end()
        )));
    }
    let mut out = outputs_of(&outcome);
    out.insert("created".into(), created.into());
    Ok(out)
}

//! Running a Job to completion: a check that must run inside the cluster (a query against
//! the restored database from the app's network, a smoke test). The Job is created once
//! under the caller's name, so a re-run waits for the Job its first attempt started
//! rather than starting another; its outcome is what the Job's conditions say, with the
//! last pod's exit code and the tail of its log.

use super::{api, error, resource, wait};
use crate::FailoverError;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams, PostParams};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    pub name: String,
    pub namespace: Option<String>,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Pods that may fail before the Job does (Kubernetes' default is 6; a check wants 0).
    pub backoff_limit: i64,
    pub active_deadline_seconds: Option<i64>,
    pub service_account: Option<String>,
    pub ttl_seconds_after_finished: Option<i64>,
    /// Lines of the last pod's log to keep.
    pub tail_lines: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodOutcome {
    pub name: String,
    pub phase: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    pub name: String,
    pub succeeded: bool,
    /// `Complete`, or the Failed condition's reason (`BackoffLimitExceeded`, `DeadlineExceeded`).
    pub reason: String,
    pub message: Option<String>,
    /// The exit code of the last pod's container.
    pub exit_code: Option<i64>,
    pub pods: Vec<PodOutcome>,
    pub log_tail: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

fn manifest(r: &JobRequest) -> Value {
    let env: Vec<Value> = r.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let mut container = json!({"name": "check", "image": r.image});
    if !r.command.is_empty() {
        container["command"] = json!(r.command);
    }
    if !r.args.is_empty() {
        container["args"] = json!(r.args);
    }
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    let mut pod_spec = json!({"restartPolicy": "Never", "containers": [container]});
    if let Some(sa) = &r.service_account {
        pod_spec["serviceAccountName"] = sa.clone().into();
    }
    let mut spec = json!({
        "backoffLimit": r.backoff_limit,
        "template": {"metadata": {"labels": {"app.kubernetes.io/managed-by": "lifeboat"}}, "spec": pod_spec},
    });
    if let Some(deadline) = r.active_deadline_seconds {
        spec["activeDeadlineSeconds"] = deadline.into();
    }
    if let Some(ttl) = r.ttl_seconds_after_finished {
        spec["ttlSecondsAfterFinished"] = ttl.into();
    }
    json!({ "spec": spec })
}

/// Done when the Job has a `Complete` or `Failed` condition that is True.
fn finished(object: &Value) -> Result<Option<String>, String> {
    Ok(object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True")
        .map(|c| c["type"].as_str().unwrap_or_default().to_owned()))
}

/// Creates the Job unless it exists, waits until it finishes (for at most `limit`) and
/// reports how. Returns whether it was created now.
pub async fn run_job(client: &kube::Client, request: &JobRequest, limit: Duration) -> Result<(bool, JobOutcome), FailoverError> {
    let (ar, caps) = resource(client, "batch/v1", "Job").await?;
    let jobs = api(client, &ar, &caps, request.namespace.as_deref());
    let job_ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("batch", "v1", "Job"), "jobs");
    let mut object = DynamicObject::new(&request.name, &job_ar).data(manifest(request));
    object.metadata.namespace = request.namespace.clone();
    let created = match jobs.create(&PostParams::default(), &object).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => false,
        Err(e) => return Err(error(e, &format!("creating Job {}", request.name)).into()),
    };
    wait::wait_for(
        client,
        ("batch/v1", "Job"),
        &request.name,
        request.namespace.as_deref(),
        &wait::Test::Judge(finished),
        limit,
    )
    .await?;
    let job = jobs
        .get(&request.name)
        .await
        .map_err(|e| error(e, &format!("reading Job {}", request.name)))?;
    let outcome = outcome(client, request, &job.data).await?;
    Ok((created, outcome))
}

async fn outcome(client: &kube::Client, request: &JobRequest, job: &Value) -> Result<JobOutcome, FailoverError> {
    let condition = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True")
        .cloned()
        .unwrap_or_default();
    let succeeded = condition["type"] == "Complete";
    let pods: Api<Pod> = match &request.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    let mut listed = pods
        .list(&ListParams::default().labels(&format!("job-name={}", request.name)))
        .await
        .map_err(|e| error(e, &format!("listing the pods of Job {}", request.name)))?
        .items;
    listed.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let pod_outcomes: Vec<PodOutcome> = listed
        .iter()
        .map(|p| {
            let terminated = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.terminated.as_ref());
            PodOutcome {
                name: p.metadata.name.clone().unwrap_or_default(),
                phase: p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default(),
                exit_code: terminated.map(|t| i64::from(t.exit_code)),
                reason: terminated.and_then(|t| t.reason.clone()),
            }
        })
        .collect();
    let log_tail = match listed.last().and_then(|p| p.metadata.name.clone()) {
        Some(pod) => {
            let params = LogParams {
                tail_lines: Some(request.tail_lines),
                ..LogParams::default()
            };
            // A pod that never started has no log; the outcome still stands.
            pods.logs(&pod, &params).await.unwrap_or_else(|e| format!("(no log: {e})"))
        }
        None => String::new(),
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(JobOutcome {
        name: request.name.clone(),
        succeeded,
        reason: if succeeded {
            "Complete".into()
        } else {
            condition["reason"].as_str().unwrap_or("Failed").to_owned()
        },
        message: text(&condition["message"]),
        exit_code: pod_outcomes.last().and_then(|p| p.exit_code),
        pods: pod_outcomes,
        log_tail,
        started_at: text(&job["status"]["startTime"]),
        completed_at: text(&job["status"]["completionTime"]).or_else(|| text(&condition["lastTransitionTime"])),
    })
}

//! LitmusChaos experiments: a ChaosEngine created, run to its end, and judged by its
//! ChaosResults (phase, verdict, probe success percentage, fail step) — never by the
//! engine's own status, which Litmus has been known to report as done while the result
//! said otherwise. The injection time is when lifeboat saw a target pod killed, replaced or
//! restarted; stopping sets `engineState: stop` and waits for the results to say Stopped.

use super::{ChaosError, Injection, evidence, ts};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const API_VERSION: &str = "litmuschaos.io/v1alpha1";

/// A ChaosEngine: its namespace and name.
#[derive(Debug, Clone)]
pub struct Engine {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChaosEngine {}/{}", self.namespace, self.name)
    }
}

fn kube_error(what: String) -> impl Fn(kube::Error) -> ChaosError {
    move |e| match lifeboat_backup::kube::error(e, &what) {
        lifeboat_backup::BackupError::Kubernetes { message, retryable: false } => ChaosError::Invalid(message),
        other => ChaosError::NotApplied(other.to_string()),
    }
}

async fn api_of(client: &kube::Client, kind: &str, namespace: &str) -> Result<Api<DynamicObject>, ChaosError> {
    let (ar, caps) = lifeboat_backup::kube::resource(client, API_VERSION, kind)
        .await
        .map_err(|err| match err {
            lifeboat_backup::BackupError::Kubernetes { retryable: false, .. } => ChaosError::Invalid(format!(
                "LitmusChaos is not installed (no {}s.litmuschaos.io): install it, or check the cluster",
                kind.to_ascii_lowercase()
            )),
            other => ChaosError::NotApplied(other.to_string()),
        })?;
    Ok(lifeboat_backup::kube::api(client, &ar, &caps, Some(namespace)))
}

/// The experiments an engine runs, by name.
pub fn experiment_names_of(spec: &Value) -> Vec<String> {
    spec["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

/// The target pods' identities (uid, restarts) by name.
async fn targets(client: &kube::Client, spec: &Value) -> BTreeMap<String, (String, i64)> {
    let (Some(ns), Some(label)) = (spec["appinfo"]["appns"].as_str(), spec["appinfo"]["applabel"].as_str()) else {
        return BTreeMap::new();
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let Ok(listed) = pods.list(&ListParams::default().labels(label)).await else {
        return BTreeMap::new();
    };
    listed
        .items
        .into_iter()
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |cs| cs.iter().map(|c| i64::from(c.restart_count)).sum());
            (
                p.metadata.name.clone().unwrap_or_default(),
                (p.metadata.uid.clone().unwrap_or_default(), restarts),
            )
        })
        .collect()
}

/// What a ChaosResult says, as evidence.
fn result_evidence(result: &Value) -> Value {
    let status = &result["status"]["experimentStatus"];
    json!({
        "name": result["metadata"]["name"], "phase": status["phase"], "verdict": status["verdict"],
        "probe_success_percentage": status["probeSuccessPercentage"], "fail_step": status["failStep"],
        "probes": result["status"]["probeStatuses"], "history": result["status"]["history"],
    })
}

const FINAL_VERDICTS: &[&str] = &["Pass", "Fail", "Stopped", "Error"];

fn verdict(result: &Value) -> &str {
    result["status"]["experimentStatus"]["verdict"].as_str().unwrap_or("Awaited")
}

/// Creates the engine (unless it exists: a re-run), waits until every experiment's
/// ChaosResult has a final verdict, and judges by those. Cancelled, it stops the engine.
pub async fn run(
    client: kube::Client,
    engine: Engine,
    spec: Value,
    (limit, stop_limit): (Duration, Duration),
    cancel: CancellationToken,
) -> Result<Injection, ChaosError> {
    let experiments = experiment_names_of(&spec);
    if experiments.is_empty() {
        return Err(ChaosError::Invalid(
            "spec.experiments: name at least one experiment, e.g. [{ name: pod-delete }]".into(),
        ));
    }
    let engines = api_of(&client, "ChaosEngine", &engine.namespace).await?;
    let results = api_of(&client, "ChaosResult", &engine.namespace).await?;
    let before = targets(&client, &spec).await;
    let mut spec = spec;
    spec["engineState"] = "active".into();
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": API_VERSION, "kind": "ChaosEngine",
        "metadata": {"name": engine.name, "namespace": engine.namespace, "labels": {"app.kubernetes.io/managed-by": "lifeboat"}},
        "spec": spec,
    }))
    .map_err(|e| ChaosError::Invalid(format!("spec: {e}")))?;
    let created_at = Utc::now();
    match engines.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {}
        Err(e) => return Err(kube_error(format!("creating {engine}"))(e)),
    }
    let names: Vec<String> = experiments.iter().map(|e| format!("{}-{e}", engine.name)).collect();
    let mut first_effect: Option<DateTime<Utc>> = None;
    let deadline = tokio::time::Instant::now() + limit;
    // Polled rather than watched: the effect on pods and several results are read together.
    let finished = loop {
        let mut found = Vec::new();
        for name in &names {
            if let Some(r) = results
                .get_opt(name)
                .await
                .map_err(kube_error(format!("reading ChaosResult {name}")))?
            {
                found.push(serde_json::to_value(r).unwrap_or_default());
            }
        }
        if first_effect.is_none() {
            let now = targets(&client, &spec).await;
            let hit = before
                .iter()
                .any(|(pod, (uid, restarts))| now.get(pod).is_none_or(|(u, r)| u != uid || r > restarts));
            if hit {
                first_effect = Some(Utc::now());
            }
        }
        if found.len() == names.len() && found.iter().all(|r| FINAL_VERDICTS.contains(&verdict(r))) {
            break found;
        }
        if tokio::time::Instant::now() >= deadline || cancel.is_cancelled() {
            let why = if cancel.is_cancelled() {
                "cancelled".to_owned()
            } else {
                let states: Vec<String> = found
                    .iter()
                    .map(|r| format!("{} {}", r["metadata"]["name"].as_str().unwrap_or_default(), verdict(r)))
                    .collect();
                format!(
                    "no final verdict within {} (results: {})",
                    crate::plan::duration::format(limit),
                    if states.is_empty() {
                        "none yet".to_owned()
                    } else {
                        states.join(", ")
                    }
                )
            };
            let stopped = stop(client.clone(), engine.clone(), experiments.clone(), stop_limit).await;
            return Err(ChaosError::NotApplied(format!(
                "{engine}: {why}; {}",
                match stopped {
                    Ok(_) => "the engine was stopped".to_owned(),
                    Err(e) => e,
                }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let engine_status = engines
        .get_opt(&engine.name)
        .await
        .ok()
        .flatten()
        .map(|o| o.data["status"].clone())
        .unwrap_or_default();
    let mut proof: Map<String, Value> = evidence([
        ("engine", engine.to_string().into()),
        ("created_at", ts(created_at)),
        ("results", Value::Array(finished.iter().map(result_evidence).collect())),
        ("engine_status", engine_status.clone()),
    ]);
    let failed: Vec<String> = finished
        .iter()
        .filter(|r| verdict(r) != "Pass")
        .map(|r| {
            let s = &r["status"]["experimentStatus"];
            format!(
                "{} verdict {} (probe success {}%, fail step: {})",
                r["metadata"]["name"].as_str().unwrap_or_default(),
                verdict(r),
                s["probeSuccessPercentage"].as_str().unwrap_or("?"),
                s["failStep"].as_str().unwrap_or("N/A")
            )
        })
        .collect();
    if !failed.is_empty() {
        let engine_said = engine_status["experiments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["verdict"].as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ChaosError::Failed(format!(
            "{engine}: the ChaosResult says {}{}",
            failed.join("; "),
            if engine_said.contains("Pass") {
                format!(" (the engine's own status says {engine_said}; the result is what counts)")
            } else {
                String::new()
            }
        )));
    }
    let injected_at = match first_effect {
        Some(at) => {
            proof.insert("observed".into(), "a target pod was killed, replaced or restarted".into());
            at
        }
        None => {
            proof.insert(
                "observed".into(),
                "no effect on the target pods seen from outside; timed from the verdict".into(),
            );
            Utc::now()
        }
    };
    Ok(Injection {
        injected_at,
        evidence: proof,
        revert: None,
    })
}

/// Stops the engine (`engineState: stop`) and waits until its results say Stopped or
/// another final verdict, for at most `limit`.
pub async fn stop(client: kube::Client, engine: Engine, experiments: Vec<String>, limit: Duration) -> Result<Map<String, Value>, String> {
    let engines = api_of(&client, "ChaosEngine", &engine.namespace).await.map_err(|e| e.to_string())?;
    match engines
        .patch(
            &engine.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(evidence([("note", format!("{engine} was already gone").into())]));
        }
        Err(e) => return Err(format!("stopping {engine}: {e}")),
    }
    let results = api_of(&client, "ChaosResult", &engine.namespace).await.map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut verdicts = Vec::new();
        for exp in &experiments {
            let name = format!("{}-{exp}", engine.name);
            let v = results
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .map(|r| verdict(&serde_json::to_value(r).unwrap_or_default()).to_owned());
            verdicts.push((name, v));
        }
        if verdicts
            .iter()
            .all(|(_, v)| v.as_deref().is_none_or(|v| FINAL_VERDICTS.contains(&v)))
        {
            let listed: Vec<String> = verdicts
                .iter()
                .map(|(n, v)| format!("{n} {}", v.as_deref().unwrap_or("no result")))
                .collect();
            return Ok(evidence([("note", format!("{engine} stopped: {}", listed.join(", ")).into())]));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{engine} was told to stop but its results are not final after {}: {verdicts:?}; the experiment may still be running",
                crate::plan::duration::format(limit)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! Chaos Mesh experiments (PodChaos, NetworkChaos, IOChaos, TimeChaos, HTTPChaos,
//! StressChaos) as faults lifeboat owns. An experiment counts as injected only when its
//! status proves it: Selected, AllInjected, and every record injected; the injection time is
//! when lifeboat saw that, not when the object was created. Where the effect is visible from
//! outside (a killed pod's uid, a container's restart count, a failed pod's readiness) it is
//! checked independently, and an experiment that says AllInjected without it is "injected
//! but not observed". Recovery deletes the object and waits until Chaos Mesh's records
//! finalizer lets it go; the finalizer is forced away only when the plan asks, and then the
//! evidence says what may be left behind.

use super::{ChaosError, Injection, Revert, evidence, ts};
use chrono::Utc;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use lifeboat_backup::kube::wait::{Test, wait_for};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const API_VERSION: &str = "chaos-mesh.org/v1alpha1";

/// The finalizer Chaos Mesh holds an experiment by until its records are recovered.
pub const RECORDS_FINALIZER: &str = "chaos-mesh/records";

/// One experiment: its kind, namespace and name.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a pod looked like, for telling whether a fault reached it.
#[derive(Debug, Clone, PartialEq)]
struct PodState {
    uid: String,
    restarts: i64,
    ready: bool,
}

fn kube_error(what: String) -> impl Fn(kube::Error) -> ChaosError {
    move |e| match lifeboat_backup::kube::error(e, &what) {
        lifeboat_backup::BackupError::Kubernetes { message, retryable: false } => ChaosError::Invalid(message),
        other => ChaosError::NotApplied(other.to_string()),
    }
}

async fn experiments(client: &kube::Client, e: &Experiment) -> Result<Api<DynamicObject>, ChaosError> {
    let (ar, caps) = lifeboat_backup::kube::resource(client, API_VERSION, &e.kind)
        .await
        .map_err(|err| match err {
            lifeboat_backup::BackupError::Kubernetes { retryable: false, .. } => ChaosError::Invalid(format!(
                "Chaos Mesh is not installed (no {}.chaos-mesh.org): install it, or check the cluster",
                e.kind.to_ascii_lowercase()
            )),
            other => ChaosError::NotApplied(other.to_string()),
        })?;
    Ok(lifeboat_backup::kube::api(client, &ar, &caps, Some(&e.namespace)))
}

/// Every pod of the namespaces the selector may pick, by `namespace/name`.
async fn pods(client: &kube::Client, namespaces: &[String]) -> Result<BTreeMap<String, PodState>, ChaosError> {
    let mut out = BTreeMap::new();
    for ns in namespaces {
        let listed = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(kube_error(format!("listing pods in {ns}")))?;
        for pod in listed.items {
            let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
            out.insert(
                format!("{ns}/{}", pod.metadata.name.clone().unwrap_or_default()),
                PodState {
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    restarts: statuses.iter().map(|c| i64::from(c.restart_count)).sum(),
                    ready: !statuses.is_empty() && statuses.iter().all(|c| c.ready),
                },
            );
        }
    }
    Ok(out)
}

fn selector_namespaces(e: &Experiment, spec: &Value) -> Vec<String> {
    let mut namespaces: Vec<String> = spec["selector"]["namespaces"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    for ns in spec["selector"]["pods"].as_object().into_iter().flatten().map(|(ns, _)| ns) {
        if !namespaces.contains(ns) {
            namespaces.push(ns.clone());
        }
    }
    if namespaces.is_empty() {
        namespaces.push(e.namespace.clone());
    }
    namespaces
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
}

fn records(object: &Value) -> Vec<Value> {
    object["status"]["experiment"]["containerRecords"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn record_injected(record: &Value) -> bool {
    record["phase"] == "Injected" || record["injectedCount"].as_i64().unwrap_or(0) > 0
}

/// Done when nothing was selected (to be reported) or every record was injected.
fn settled(object: &Value) -> Result<Option<String>, String> {
    if condition(object, "Selected") == Some("False") {
        return Ok(Some("nothing selected".into()));
    }
    let records = records(object);
    let all = condition(object, "AllInjected") == Some("True") && !records.is_empty() && records.iter().all(record_injected);
    // A one-shot action may be recovered by the time it is seen; its records say it was injected.
    let one_shot_done = !records.is_empty() && records.iter().all(|r| r["injectedCount"].as_i64().unwrap_or(0) > 0);
    Ok((all || one_shot_done).then(|| format!("{} records injected", records.len())))
}

/// The records as evidence: id, phase, counts and the events Chaos Mesh noted on each.
fn record_evidence(object: &Value) -> Value {
    Value::Array(
        records(object)
            .iter()
            .map(|r| {
                json!({
                    "id": r["id"], "phase": r["phase"], "injected_count": r["injectedCount"],
                    "recovered_count": r["recoveredCount"], "events": r["events"],
                })
            })
            .collect(),
    )
}

/// The Events about the experiment (reason, message, time), oldest first.
async fn events(client: &kube::Client, e: &Experiment) -> Value {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &e.namespace);
    let listed = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={}", e.name)))
        .await;
    let mut found: Vec<Value> = listed
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|ev| ev.involved_object.name.as_deref() == Some(e.name.as_str()))
        .map(|ev| {
            let at = ev
                .last_timestamp
                .map(|t| t.0.to_string())
                .or_else(|| ev.event_time.map(|t| t.0.to_string()))
                .unwrap_or_default();
            json!({"reason": ev.reason, "message": ev.message, "type": ev.type_, "at": at})
        })
        .collect();
    found.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    Value::Array(found)
}

/// A pod-level effect lifeboat can see for itself, by action.
fn observable(kind: &str, spec: &Value) -> Option<&'static str> {
    match (kind, spec["action"].as_str()) {
        ("PodChaos", Some("pod-kill")) => Some("pod-kill"),
        ("PodChaos", Some("container-kill")) => Some("container-kill"),
        ("PodChaos", Some("pod-failure")) => Some("pod-failure"),
        _ => None,
    }
}

/// Actions Chaos Mesh applies once and has nothing to recover from.
pub fn one_shot(kind: &str, spec: &Value) -> bool {
    matches!(observable(kind, spec), Some("pod-kill" | "container-kill"))
}

/// The pod a record names (`ns/pod` or `ns/pod/container`).
fn record_pod(record: &Value) -> Option<String> {
    let id = record["id"].as_str()?;
    let mut parts = id.splitn(3, '/');
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

/// Whether each selected pod shows the effect, compared with how it was before.
fn effect_seen(action: &str, before: &BTreeMap<String, PodState>, now: &BTreeMap<String, PodState>, pod: &str) -> bool {
    let (Some(was), is) = (before.get(pod), now.get(pod)) else {
        // Not there before: a replacement already; whatever it was, it was killed.
        return action == "pod-kill";
    };
    match action {
        "pod-kill" => is.is_none_or(|p| p.uid != was.uid),
        "container-kill" => is.is_some_and(|p| p.uid != was.uid || p.restarts > was.restarts),
        "pod-failure" => is.is_none_or(|p| !p.ready),
        _ => false,
    }
}

/// Creates the experiment (unless it exists: a re-run) and waits until its status proves
/// the fault applied, then checks the effect where it can be seen. Persistent faults come
/// back with their revert; one-shot ones are cleaned up at once.
pub async fn inject(
    client: kube::Client,
    e: Experiment,
    spec: Value,
    limits: (Duration, Duration),
    force_finalizer: bool,
    durable: Option<super::DurableRevert>,
) -> Result<Injection, ChaosError> {
    let (inject_limit, recover_limit) = limits;
    let api = experiments(&client, &e).await?;
    let namespaces = selector_namespaces(&e, &spec);
    let before = pods(&client, &namespaces).await?;
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": API_VERSION, "kind": e.kind,
        "metadata": {"name": e.name, "namespace": e.namespace, "labels": {"app.kubernetes.io/managed-by": "lifeboat"}},
        "spec": spec,
    }))
    .map_err(|err| ChaosError::Invalid(format!("spec: {err}")))?;
    let created_at = Utc::now();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {}
        Err(err) => return Err(kube_error(format!("creating {e}"))(err)),
    }
    let waited = wait_for(
        &client,
        (API_VERSION, &e.kind),
        &e.name,
        Some(&e.namespace),
        &Test::Judge(settled),
        inject_limit,
    )
    .await;
    let current = api.get_opt(&e.name).await.map_err(kube_error(format!("reading {e}")))?;
    let current = current.map(|o| serde_json::to_value(o).unwrap_or_default()).unwrap_or_default();
    if let Err(err) = waited {
        let records = record_evidence(&current);
        let _ = recover(client.clone(), e.clone(), recover_limit, force_finalizer).await;
        return Err(ChaosError::NotApplied(format!(
            "{e} was not injected within {}: records {records} ({err}); the experiment was deleted",
            crate::plan::duration::format(inject_limit)
        )));
    }
    if condition(&current, "Selected") == Some("False") {
        let _ = recover(client.clone(), e.clone(), recover_limit, force_finalizer).await;
        return Err(ChaosError::Invalid(format!(
            "{e} selected nothing: selector {} (mode {}) matched no running pod; check the namespaces and labels",
            spec["selector"],
            spec["mode"].as_str().unwrap_or("one")
        )));
    }
    let injected_at = Utc::now();
    let recs = records(&current);
    let mut proof = evidence([
        ("experiment", e.to_string().into()),
        ("created_at", ts(created_at)),
        ("records", record_evidence(&current)),
    ]);
    match observable(&e.kind, &spec) {
        Some(action) => {
            let targets: Vec<String> = recs.iter().filter_map(record_pod).collect();
            let mut unseen = targets.clone();
            // Kubernetes reflects the effect shortly after Chaos Mesh records it.
            for _ in 0..50 {
                let now = pods(&client, &namespaces).await?;
                unseen.retain(|pod| !effect_seen(action, &before, &now, pod));
                if unseen.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if !unseen.is_empty() {
                let _ = recover(client.clone(), e.clone(), recover_limit, force_finalizer).await;
                return Err(ChaosError::NotApplied(format!(
                    "{e} injected but not observed: Chaos Mesh reports AllInjected, yet {} show no {action} (uid, restarts and readiness unchanged); the experiment was deleted",
                    unseen.join(", ")
                )));
            }
            proof.insert("observed".into(), json!({"action": action, "pods": targets}));
        }
        None => {
            proof.insert(
                "observed".into(),
                format!(
                    "no independent check of {} from outside; follow it with a probe through the faulted path",
                    e.kind
                )
                .into(),
            );
        }
    }
    proof.insert("events".into(), events(&client, &e).await);
    if one_shot(&e.kind, &spec) {
        proof.insert(
            "recovery".into(),
            format!(
                "one-shot {}: nothing to recover; the experiment object is deleted",
                spec["action"].as_str().unwrap_or_default()
            )
            .into(),
        );
        if let Err(err) = recover(client, e, recover_limit, force_finalizer).await {
            proof.insert("cleanup_error".into(), err.into());
        }
        return Ok(Injection {
            injected_at,
            evidence: proof,
            revert: None,
        });
    }
    Ok(Injection {
        injected_at,
        evidence: proof,
        revert: Some(Revert {
            undo: recover(client, e.clone(), recover_limit, force_finalizer).boxed(),
            durable,
        }),
    })
}

/// Deletes the experiment and waits until Chaos Mesh recovered it and let it go. If its
/// records finalizer does not clear within `limit`, it is an error saying so, unless
/// `force` removes the finalizer, in which case the evidence names what may be left.
pub async fn recover(client: kube::Client, e: Experiment, limit: Duration, force: bool) -> Result<Map<String, Value>, String> {
    let api = experiments(&client, &e).await.map_err(|err| err.to_string())?;
    let last = api
        .get_opt(&e.name)
        .await
        .map_err(|err| format!("reading {e}: {err}"))?
        .map(|o| serde_json::to_value(o).unwrap_or_default());
    let Some(_) = last else {
        return Ok(evidence([("note", format!("{e} was already gone").into())]));
    };
    let options = lifeboat_failover::kube::delete::DeleteOptions {
        api_version: API_VERSION,
        kind: &e.kind,
        name: &e.name,
        namespace: Some(&e.namespace),
        propagation: None,
        wait: Some(limit),
    };
    match lifeboat_failover::kube::delete::delete(&client, &options).await {
        Ok(deleted) => Ok(evidence([
            ("recovered_at", ts(deleted.gone_at)),
            ("note", format!("{e} recovered and deleted").into()),
            ("events", events(&client, &e).await),
        ])),
        Err(lifeboat_failover::FailoverError::NotReady(_)) => {
            let stuck = api
                .get_opt(&e.name)
                .await
                .ok()
                .flatten()
                .map(|o| serde_json::to_value(o).unwrap_or_default())
                .unwrap_or_default();
            let not_recovered: Vec<String> = records(&stuck)
                .iter()
                .filter(|r| r["phase"] == "Injected")
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect();
            let within = crate::plan::duration::format(limit);
            if !force {
                return Err(format!(
                    "{e} did not recover within {within}: the {RECORDS_FINALIZER} finalizer is still set (AllRecovered {}), records still injected: [{}]; the fault may still be applied. Check Chaos Mesh's controller, or set force_finalizer_removal: true to let go of it",
                    condition(&stuck, "AllRecovered").unwrap_or("unknown"),
                    not_recovered.join(", ")
                ));
            }
            api.patch(
                &e.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .map_err(|err| format!("removing the finalizers of {e}: {err}"))?;
            Ok(evidence([
                ("forced", true.into()),
                (
                    "note",
                    format!(
                        "{e} did not recover within {within}; its finalizers were removed as the plan asked. These records may still be applied and need checking by hand: [{}]",
                        not_recovered.join(", ")
                    )
                    .into(),
                ),
                ("events", events(&client, &e).await),
            ]))
        }
        Err(err) => Err(format!("deleting {e}: {err}")),
    }
}

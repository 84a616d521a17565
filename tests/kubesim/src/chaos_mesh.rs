//! A simulated Chaos Mesh 2.x controller manager for the one-off experiment kinds: PodChaos,
//! NetworkChaos, IOChaos, TimeChaos, HTTPChaos and StressChaos (not Schedules or Workflows).
//! It follows Chaos Mesh's `finalizers`, `desiredphase`, `records` and `condition`
//! controllers:
//!
//! - A new experiment gets the finalizer `chaos-mesh/records`, then its targets: the Running
//!   pods (or those in `podPhaseSelectors`) of `selector.namespaces` (the experiment's own
//!   namespace when none is named), or the pods `selector.pods` names, narrowed by
//!   `labelSelectors`, `expressionSelectors`, `annotationSelectors`, `fieldSelectors` and
//!   `nodes`; then `mode` picks among them in namespace and name order (`one`: the first;
//!   `fixed`: the first `value`; `fixed-percent`: that share, rounded down;
//!   `random-max-percent`: always the maximum share — kubesim picks deterministically).
//!   Container experiments (PodChaos `container-kill`, IOChaos, StressChaos, TimeChaos)
//!   target each pod's `containerNames`, or its first container when none is named: their
//!   record ids are `namespace/pod/container`, the others' `namespace/pod`.
//! - The status is written as Chaos Mesh writes it: `status.experiment.desiredPhase` (`Run`,
//!   `Stop` once the duration is over or the experiment is deleted),
//!   `status.experiment.containerRecords` (one per target: `id`, `selectorKey` `.`, `phase`
//!   `Not Injected` or `Injected`, `injectedCount`, `recoveredCount`, and `events` of type
//!   `Succeeded` or `Failed` for operation `Apply` or `Recover`), and `status.conditions`
//!   `Selected`, `AllInjected`, `AllRecovered` (all records `Not Injected`, so True before
//!   the injection as well, as in Chaos Mesh) and `Paused` (always False: pausing is not
//!   simulated).
//! - Records go `Not Injected` → `Injected` after [`ChaosMeshBehaviour::inject_delay`]. With
//!   a `spec.duration` (a Go duration, counted from the experiment's creation) they are
//!   recovered when it is over: desiredPhase `Stop`, records `Not Injected` again with
//!   `recoveredCount` 1. A duration over before the injection stops the experiment before
//!   anything is injected, as Chaos Mesh's desiredPhase controller does.
//! - One-shot actions (PodChaos `pod-kill` and `container-kill`) are what Chaos Mesh's
//!   `IsOneShot` says: their desiredPhase stays `Run` whatever the duration, so their records
//!   stay `Injected` (AllInjected True, AllRecovered False) until the experiment is deleted;
//!   only then does the (empty) recovery run, bringing `recoveredCount` to
//!   `injectedCount`. The fault itself is over at once: the pod is gone, or the container
//!   restarted.
//! - Deleting an experiment recovers it (records `Not Injected`, AllRecovered True), then the
//!   finalizer is removed and the object goes; the annotation
//!   `chaos-mesh.chaos-mesh.org/cleanFinalizer: forced` removes the finalizer without
//!   recovering, as in Chaos Mesh.
//! - core/v1 Events on the experiment, as Chaos Mesh's recorder words them: `Applied`
//!   ("Successfully apply chaos for <id>"), `Recovered` ("Successfully recover chaos for
//!   <id>"), and Warning `Failed` ("Failed to select targets: no pod is selected", "Failed to
//!   apply chaos: …", "Failed to recover chaos: …"). Nothing selected leaves the records out:
//!   Selected False, AllInjected and AllRecovered False.
//!
//! What a test can see on pods: `pod-kill` deletes the pod (its Deployment or StatefulSet
//! replaces it, `pods.rs`); `container-kill` restarts the container (`restartCount` + 1,
//! `lastState.terminated` `Error`, exit code 137); `pod-failure` makes the pod unready
//! (Ready and ContainersReady False, containers not ready) until recovered. Network, IO,
//! time, HTTP and stress faults have no effect kubesim could show; their records still go
//! through the phases (the target pod must exist to be injected). A failed injection is not
//! retried. Fault hooks ([`crate::Cluster::chaos_mesh`]): injection stuck, or a recovery that
//! fails so the finalizer stays.

use crate::now;
use crate::resources::Resource;
use crate::selectors::Selector;
use crate::store::Change;
use crate::{Cluster, http};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// The finalizer Chaos Mesh puts on every experiment until it is recovered.
pub const FINALIZER: &str = "chaos-mesh/records";

/// The annotation that makes Chaos Mesh drop its finalizer without recovering.
const CLEAN_FINALIZER: &str = "chaos-mesh.chaos-mesh.org/cleanFinalizer";

const GROUP: &str = "chaos-mesh.org";

/// The experiment kinds simulated, by plural.
const PLURALS: [&str; 6] = ["podchaos", "networkchaos", "iochaos", "timechaos", "httpchaos", "stresschaos"];

const NOT_INJECTED: &str = "Not Injected";
const INJECTED: &str = "Injected";

/// How often a waiting experiment looks for its deletion (and a stuck one for a cure).
const POLL: Duration = Duration::from_millis(50);

/// What a failing chaos daemon answers, for [`ChaosMeshBehaviour::finalizer_stuck`].
const DAEMON_DOWN: &str = "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 10.0.0.1:31767: connect: connection refused\"";

/// How the simulated Chaos Mesh behaves; change it with [`crate::Cluster::chaos_mesh`].
#[derive(Debug, Clone)]
pub struct ChaosMeshBehaviour {
    /// Time from an experiment's creation to its injection.
    pub inject_delay: Duration,
    /// Records stay `Not Injected` (AllInjected False) for as long as this is set, as with a
    /// chaos daemon that never answers; injection happens once it is cleared.
    pub stuck_not_injected: bool,
    /// Recovery fails for as long as this is set: a deleted experiment keeps its finalizer
    /// (and its deletionTimestamp), injected records stay `Injected` (AllRecovered False),
    /// with a Failed event.
    pub finalizer_stuck: bool,
}

impl Default for ChaosMeshBehaviour {
    fn default() -> Self {
        ChaosMeshBehaviour {
            inject_delay: Duration::from_millis(200),
            stuck_not_injected: false,
            finalizer_stuck: false,
        }
    }
}

/// Starts a new experiment's controller.
pub(crate) fn on_change(cluster: &Cluster, change: &Change) {
    if change.group != GROUP || change.kind != "ADDED" || !PLURALS.contains(&change.plural.as_str()) {
        return;
    }
    // One that ran already (restored with its status) is not run again.
    if !change.object["status"]["experiment"]["desiredPhase"].is_null() {
        return;
    }
    let Some(resource) = cluster.resource(GROUP, &change.plural) else {
        return;
    };
    let meta = &change.object["metadata"];
    let experiment = Experiment {
        cluster: cluster.clone(),
        kind: resource.kind.clone(),
        resource,
        namespace: change.namespace.clone(),
        name: meta["name"].as_str().unwrap_or_default().to_owned(),
        uid: meta["uid"].as_str().unwrap_or_default().to_owned(),
        action: change.object["spec"]["action"].as_str().unwrap_or_default().to_owned(),
    };
    cluster.track(tokio::spawn(run(experiment)));
}

/// One experiment, as its controllers see it.
struct Experiment {
    cluster: Cluster,
    resource: Resource,
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    /// PodChaos's action; empty for the other kinds.
    action: String,
}

/// One target's record, `status.experiment.containerRecords[]`.
struct Record {
    id: String,
    namespace: String,
    pod: String,
    container: Option<String>,
    phase: &'static str,
    injected: i64,
    recovered: i64,
    events: Vec<Value>,
}

impl Record {
    fn to_json(&self) -> Value {
        let mut record = json!({"id": self.id, "selectorKey": ".", "phase": self.phase,
                                "injectedCount": self.injected, "recoveredCount": self.recovered});
        if !self.events.is_empty() {
            record["events"] = self.events.clone().into();
        }
        record
    }

    fn event(&mut self, kind: &str, operation: &str, message: Option<&str>) {
        let mut event = json!({"type": kind, "operation": operation, "timestamp": now()});
        if let Some(message) = message {
            event["message"] = message.into();
        }
        self.events.push(event);
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Live,
    Deleting,
    Gone,
}

/// Chaos Mesh's condition controller: the conditions the records imply.
fn conditions(records: &[Record]) -> Value {
    let selected = !records.is_empty();
    let all = |phase: &str| selected && records.iter().all(|r| r.phase == phase);
    let status = |b: bool| if b { "True" } else { "False" };
    json!([
        {"type": "Selected", "status": status(selected), "reason": ""},
        {"type": "AllInjected", "status": status(all(INJECTED)), "reason": ""},
        {"type": "AllRecovered", "status": status(all(NOT_INJECTED)), "reason": ""},
        {"type": "Paused", "status": "False", "reason": ""},
    ])
}

async fn run(experiment: Experiment) {
    let started = Instant::now();
    let added = experiment.modify(false, |o| {
        let mut finalizers = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(FINALIZER.into());
        }
        o["metadata"]["finalizers"] = finalizers.into();
    });
    let Some(chaos) = experiment.current().filter(|_| added) else {
        return;
    };
    let mut records = match select(&experiment.cluster, &chaos, &experiment.namespace, experiment.targets_containers()) {
        Ok(records) => records,
        Err(message) => {
            experiment.event("Warning", "Failed", &format!("Failed to select targets: {message}"));
            Vec::new()
        }
    };
    if !experiment.write_status("Run", &records) {
        return;
    }
    let duration = if experiment.one_shot() {
        None
    } else {
        chaos["spec"]["duration"].as_str().and_then(go_duration)
    };
    let stop_at = duration.map(|d| started + d);
    let mut next = started + experiment.cluster.chaos_mesh_behaviour().inject_delay;
    while !records.is_empty() && stop_at.is_none_or(|stop| next < stop) {
        match experiment.until(Some(next)).await {
            State::Gone => return,
            State::Deleting => return experiment.finalize(&mut records).await,
            State::Live => {}
        }
        if experiment.cluster.chaos_mesh_behaviour().stuck_not_injected {
            next = Instant::now() + POLL;
            continue;
        }
        experiment.inject(&mut records);
        if !experiment.write_status("Run", &records) {
            return;
        }
        break;
    }
    if let Some(stop) = stop_at {
        match experiment.until(Some(stop)).await {
            State::Gone => return,
            State::Deleting => return experiment.finalize(&mut records).await,
            State::Live => {}
        }
        experiment.recover(&mut records);
        if !experiment.write_status("Stop", &records) {
            return;
        }
    }
    if experiment.until(None).await == State::Deleting {
        experiment.finalize(&mut records).await;
    }
}

impl Experiment {
    fn key(&self) -> crate::store::Key {
        (
            GROUP.into(),
            self.resource.plural.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }

    /// The experiment as stored, unless it is gone (or another of the same name replaced it).
    fn current(&self) -> Option<Value> {
        self.cluster
            .store()
            .get(&self.key())
            .filter(|o| o["metadata"]["uid"] == self.uid.as_str())
            .cloned()
    }

    fn state(&self) -> State {
        match self.current() {
            None => State::Gone,
            Some(o) if !o["metadata"]["deletionTimestamp"].is_null() => State::Deleting,
            Some(_) => State::Live,
        }
    }

    /// Waits until `at` (forever when `None`) unless the experiment is deleted or gone first.
    async fn until(&self, at: Option<Instant>) -> State {
        crate::poll_while(|| self.state(), &State::Live, at, POLL).await
    }

    fn one_shot(&self) -> bool {
        self.kind == "PodChaos" && matches!(self.action.as_str(), "pod-kill" | "container-kill")
    }

    /// Whether Chaos Mesh selects containers (rather than pods) for this experiment.
    fn targets_containers(&self) -> bool {
        match self.kind.as_str() {
            "PodChaos" => self.action == "container-kill",
            "IOChaos" | "StressChaos" | "TimeChaos" => true,
            _ => false,
        }
    }

    /// A read-modify-write of the experiment (its status when `status`), retried on
    /// conflicts as controllers do; false when it is gone or cannot be written.
    fn modify(&self, status: bool, change: impl Fn(&mut Value)) -> bool {
        for _ in 0..10 {
            let Some(mut object) = self.current() else {
                return false;
            };
            change(&mut object);
            let written = if status {
                http::update_status(&self.cluster, &self.resource, &self.namespace, &self.name, object)
            } else {
                http::update_object(&self.cluster, &self.resource, &self.namespace, &self.name, object)
            };
            match written {
                Ok(_) => return true,
                Err(e) if e.code == 409 => continue,
                Err(e) => {
                    eprintln!("kubesim: chaos-mesh: {} {}/{}: {}", self.kind, self.namespace, self.name, e.message);
                    return false;
                }
            }
        }
        false
    }

    fn write_status(&self, desired_phase: &str, records: &[Record]) -> bool {
        let mut experiment = json!({"desiredPhase": desired_phase});
        if !records.is_empty() {
            experiment["containerRecords"] = records.iter().map(Record::to_json).collect::<Vec<_>>().into();
        }
        let conditions = conditions(records);
        self.modify(true, |o| {
            if !o["status"].is_object() {
                o["status"] = json!({});
            }
            o["status"]["experiment"] = experiment.clone();
            o["status"]["conditions"] = conditions.clone();
        })
    }

    /// A core/v1 Event about the experiment, as Chaos Mesh's recorder makes it.
    fn event(&self, kind: &str, reason: &str, message: &str) {
        let Some(resource) = self.cluster.resource("", "events") else {
            return;
        };
        let at = chrono::Utc::now();
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let nanos = at.timestamp_nanos_opt().unwrap_or_default();
        for attempt in 0..5 {
            let event = json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{}.{:x}", self.name, nanos + attempt), "namespace": self.namespace},
                "involvedObject": {"apiVersion": self.resource.api_version(), "kind": self.kind, "name": self.name,
                                   "namespace": self.namespace, "uid": self.uid},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "records"},
            });
            match http::create_object(&self.cluster, &resource, &self.namespace, event, "chaos-controller-manager") {
                Err(e) if e.code == 409 => continue,
                // A namespace being deleted takes no more events; that is no news.
                Err(e) if e.code != 403 && e.code != 404 => eprintln!("kubesim: chaos-mesh: event: {}", e.message),
                _ => {}
            }
            return;
        }
    }

    /// Applies the fault to every record not injected yet (once: failures are not retried).
    fn inject(&self, records: &mut [Record]) {
        for record in records.iter_mut().filter(|r| r.phase == NOT_INJECTED) {
            match self.apply(record) {
                Ok(()) => {
                    record.phase = INJECTED;
                    record.injected += 1;
                    record.event("Succeeded", "Apply", None);
                    self.event("Normal", "Applied", &format!("Successfully apply chaos for {}", record.id));
                }
                Err(message) => {
                    record.event("Failed", "Apply", Some(&message));
                    self.event("Warning", "Failed", &format!("Failed to apply chaos: {message}"));
                }
            }
        }
    }

    fn recover(&self, records: &mut [Record]) {
        for record in records.iter_mut().filter(|r| r.phase == INJECTED) {
            match self.undo(record) {
                Ok(()) => {
                    record.phase = NOT_INJECTED;
                    record.recovered += 1;
                    record.event("Succeeded", "Recover", None);
                    self.event("Normal", "Recovered", &format!("Successfully recover chaos for {}", record.id));
                }
                Err(message) => {
                    record.event("Failed", "Recover", Some(&message));
                    self.event("Warning", "Failed", &format!("Failed to recover chaos: {message}"));
                }
            }
        }
    }

    /// What the fault does to the target, where kubesim can show it.
    fn apply(&self, record: &Record) -> Result<(), String> {
        let (namespace, pod) = (record.namespace.as_str(), record.pod.as_str());
        match (self.kind.as_str(), self.action.as_str()) {
            ("PodChaos", "pod-kill") => {
                let resource = self.cluster.resource("", "pods").ok_or("pods are not served")?;
                http::delete_object(&self.cluster, &resource, namespace, pod)
                    .map(|_| ())
                    .map_err(|e| e.message)
            }
            ("PodChaos", "container-kill") => modify_pod(&self.cluster, namespace, pod, |status| {
                kill_container(status, record.container.as_deref())
            }),
            ("PodChaos", "pod-failure") => modify_pod(&self.cluster, namespace, pod, |status| set_ready(status, false)),
            _ => match self.cluster.store().get(&pod_key(namespace, pod)) {
                Some(_) => Ok(()),
                None => Err(format!("pods \"{pod}\" not found")),
            },
        }
    }

    /// Undoes [`Experiment::apply`]; a pod gone has nothing left to recover.
    fn undo(&self, record: &Record) -> Result<(), String> {
        if (self.kind.as_str(), self.action.as_str()) != ("PodChaos", "pod-failure") {
            return Ok(());
        }
        match modify_pod(&self.cluster, &record.namespace, &record.pod, |status| set_ready(status, true)) {
            Err(_) if self.cluster.store().get(&pod_key(&record.namespace, &record.pod)).is_none() => Ok(()),
            other => other,
        }
    }

    /// The finalizer controller on a deleted experiment: recover, then let it go — unless
    /// recovery fails ([`ChaosMeshBehaviour::finalizer_stuck`]), which is retried until it
    /// works or the finalizer is cleaned by force.
    async fn finalize(&self, records: &mut [Record]) {
        let mut reported = false;
        let forced = loop {
            let Some(chaos) = self.current() else {
                return;
            };
            if chaos["metadata"]["annotations"][CLEAN_FINALIZER] == "forced" {
                break true;
            }
            if !self.cluster.chaos_mesh_behaviour().finalizer_stuck {
                break false;
            }
            if !reported {
                reported = true;
                for record in records.iter_mut().filter(|r| r.phase == INJECTED) {
                    record.event("Failed", "Recover", Some(DAEMON_DOWN));
                    self.event("Warning", "Failed", &format!("Failed to recover chaos: {DAEMON_DOWN}"));
                }
                self.write_status("Stop", records);
            }
            tokio::time::sleep(POLL).await;
        };
        if !forced {
            self.recover(records);
            if !self.write_status("Stop", records) {
                return;
            }
        }
        self.modify(false, |o| {
            if let Some(finalizers) = o["metadata"]["finalizers"].as_array_mut() {
                finalizers.retain(|f| f != FINALIZER);
            }
        });
    }
}

fn pod_key(namespace: &str, name: &str) -> crate::store::Key {
    (String::new(), "pods".into(), namespace.into(), name.into())
}

/// A kubelet's status write on a pod, retried on conflicts.
pub(crate) fn modify_pod(cluster: &Cluster, namespace: &str, name: &str, change: impl Fn(&mut Value)) -> Result<(), String> {
    let resource = cluster.resource("", "pods").ok_or("pods are not served")?;
    for _ in 0..10 {
        let Some(mut pod) = cluster.store().get(&pod_key(namespace, name)).cloned() else {
            return Err(format!("pods \"{name}\" not found"));
        };
        change(&mut pod["status"]);
        match http::update_status(cluster, &resource, namespace, name, pod) {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(e.message),
        }
    }
    Err(format!("pods \"{name}\": too many conflicts"))
}

/// The container killed and restarted by the kubelet (the first one when none is named).
pub(crate) fn kill_container(status: &mut Value, container: Option<&str>) {
    let at = now();
    let Some(statuses) = status["containerStatuses"].as_array_mut() else {
        return;
    };
    let index = match container {
        Some(name) => statuses.iter().position(|c| c["name"] == name),
        None => (!statuses.is_empty()).then_some(0),
    };
    let Some(killed) = index.and_then(|i| statuses.get_mut(i)) else {
        return;
    };
    let started = match &killed["state"]["running"]["startedAt"] {
        Value::String(s) => s.clone(),
        _ => at.clone(),
    };
    killed["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started, "finishedAt": at}});
    killed["restartCount"] = (killed["restartCount"].as_i64().unwrap_or(0) + 1).into();
    killed["state"] = json!({"running": {"startedAt": at}});
}

/// The pod's readiness, as its containers' readiness makes it.
fn set_ready(status: &mut Value, ready: bool) {
    let mut names = Vec::new();
    for container in status["containerStatuses"].as_array_mut().into_iter().flatten() {
        container["ready"] = ready.into();
        names.push(container["name"].as_str().unwrap_or_default().to_owned());
    }
    let at = now();
    for condition in status["conditions"].as_array_mut().into_iter().flatten() {
        if condition["type"] != "Ready" && condition["type"] != "ContainersReady" {
            continue;
        }
        let mut fresh = json!({"type": condition["type"], "status": if ready { "True" } else { "False" },
                               "lastTransitionTime": at});
        if !ready {
            fresh["reason"] = "ContainersNotReady".into();
            fresh["message"] = format!("containers with unready status: [{}]", names.join(" ")).into();
        }
        *condition = fresh;
    }
}

/// Chaos Mesh's selection: the records of the targets `chaos` selects, or why there are none.
fn select(cluster: &Cluster, chaos: &Value, namespace: &str, containers: bool) -> Result<Vec<Record>, String> {
    let spec = &chaos["spec"];
    let pods = select_pods(cluster, &spec["selector"], namespace)?;
    if pods.is_empty() {
        return Err("no pod is selected".into());
    }
    let value = spec["value"].as_str().unwrap_or_default();
    let count = by_mode(pods.len(), spec["mode"].as_str().unwrap_or_default(), value)?;
    let names: Vec<&str> = spec["containerNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut records = Vec::new();
    for pod in pods.iter().take(count) {
        let pod_namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let record = |container: Option<String>| Record {
            id: match &container {
                Some(c) => format!("{pod_namespace}/{pod_name}/{c}"),
                None => format!("{pod_namespace}/{pod_name}"),
            },
            namespace: pod_namespace.clone(),
            pod: pod_name.clone(),
            container,
            phase: NOT_INJECTED,
            injected: 0,
            recovered: 0,
            events: Vec::new(),
        };
        if !containers {
            records.push(record(None));
            continue;
        }
        let in_pod: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let chosen: Vec<&str> = if names.is_empty() {
            in_pod.first().copied().into_iter().collect()
        } else {
            in_pod.into_iter().filter(|c| names.contains(c)).collect()
        };
        records.extend(chosen.into_iter().map(|c| record(Some(c.to_owned()))));
    }
    if records.is_empty() {
        return Err("no target has been selected".into());
    }
    Ok(records)
}

/// The pods a chaos `selector` matches, in namespace and name order.
fn select_pods(cluster: &Cluster, selector: &Value, namespace: &str) -> Result<Vec<Value>, String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let named: Vec<(String, String)> = selector["pods"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(ns, names)| strings(names).into_iter().map(move |n| (ns.clone(), n)))
        .collect();
    let candidates: Vec<Value> = {
        let store = cluster.store();
        if named.is_empty() {
            let mut namespaces = strings(&selector["namespaces"]);
            if namespaces.is_empty() {
                namespaces.push(namespace.to_owned());
            }
            namespaces.sort();
            namespaces.dedup();
            namespaces.iter().flat_map(|ns| store.list("", "pods", ns)).collect()
        } else {
            named.iter().filter_map(|(ns, n)| store.get(&pod_key(ns, n)).cloned()).collect()
        }
    };
    let pairs = |field: &str, sep: &str| -> Vec<String> {
        selector[field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or_default()))
            .collect()
    };
    let mut labels = pairs("labelSelectors", "=");
    for expression in selector["expressionSelectors"].as_array().into_iter().flatten() {
        let key = expression["key"].as_str().unwrap_or_default();
        let values = strings(&expression["values"]).join(",");
        labels.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => return Err(format!("\"{other}\" is not a valid label selector operator")),
        });
    }
    let fields = pairs("fieldSelectors", "=");
    let matcher = Selector::parse(Some(labels.join(",").as_str()), Some(fields.join(",").as_str()))?;
    let annotations: Vec<(String, Value)> = selector["annotationSelectors"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let phases = strings(&selector["podPhaseSelectors"]);
    let nodes = strings(&selector["nodes"]);
    let mut pods: Vec<Value> = candidates
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            let phase = p["status"]["phase"].as_str().unwrap_or_default();
            if phases.is_empty() {
                phase == "Running"
            } else {
                phases.iter().any(|w| w == phase)
            }
        })
        .filter(|p| matcher.matches(p))
        .filter(|p| annotations.iter().all(|(k, v)| &p["metadata"]["annotations"][k] == v))
        .filter(|p| nodes.is_empty() || nodes.iter().any(|n| p["spec"]["nodeName"] == n.as_str()))
        .collect();
    let key = |p: &Value| (p["metadata"]["namespace"].to_string(), p["metadata"]["name"].to_string());
    pods.sort_by_key(key);
    pods.dedup_by(|a, b| key(&*a) == key(&*b));
    Ok(pods)
}

/// How many of `found` pods `mode` takes, with Chaos Mesh's errors for a bad `value`.
fn by_mode(found: usize, mode: &str, value: &str) -> Result<usize, String> {
    let number = || {
        value
            .parse::<i64>()
            .map_err(|_| format!("strconv.Atoi: parsing \"{value}\": invalid syntax"))
    };
    let share = |percent: i64| usize::try_from(percent).map_or(0, |p| found * p / 100);
    match mode {
        "one" => Ok(1),
        "all" => Ok(found),
        "fixed" => match number()? {
            n if n <= 0 => Err("cannot select any pod as value below or equal 0".into()),
            n => Ok(usize::try_from(n).map_or(found, |n| n.min(found))),
        },
        "fixed-percent" => match number()? {
            0 => Err("cannot select any pod as value below or equal 0".into()),
            p if !(0..=100).contains(&p) => Err(format!("fixed percentage value of {p} is invalid, Must be (0,100]")),
            p => Ok(share(p)),
        },
        "random-max-percent" => match number()? {
            p if !(0..=100).contains(&p) => Err(format!("fixed max percentage value of {p} is invalid, Must be [0-100]")),
            p => Ok(share(p)),
        },
        other => Err(format!("mode {other} not supported")),
    }
}

/// A Go `time.ParseDuration` string (`500ms`, `1m30s`, `1.5h`); a negative one is over at once.
pub(crate) fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += number * scale;
        rest = &rest[unit_end..];
    }
    if negative {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("-3s"), Some(Duration::ZERO));
        assert_eq!(go_duration("10µs"), Some(Duration::from_micros(10)));
        for bad in ["", "5", "s", "3 s", "1d"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn modes_pick_as_chaos_mesh_counts() {
        assert_eq!(by_mode(5, "one", ""), Ok(1));
        assert_eq!(by_mode(5, "all", ""), Ok(5));
        assert_eq!(by_mode(5, "fixed", "2"), Ok(2));
        assert_eq!(by_mode(5, "fixed", "9"), Ok(5));
        assert_eq!(by_mode(5, "fixed-percent", "50"), Ok(2));
        assert_eq!(by_mode(5, "random-max-percent", "100"), Ok(5));
        assert!(by_mode(5, "fixed", "x").unwrap_err().contains("invalid syntax"));
        assert!(by_mode(5, "fixed", "0").is_err());
        assert!(by_mode(5, "fixed-percent", "101").is_err());
        assert!(by_mode(5, "sometimes", "").is_err());
    }

    #[test]
    fn conditions_follow_the_records() {
        let record = |phase| Record {
            id: "ns/p".into(),
            namespace: "ns".into(),
            pod: "p".into(),
            container: None,
            phase,
            injected: 0,
            recovered: 0,
            events: Vec::new(),
        };
        let status = |records: &[Record]| -> Vec<String> {
            conditions(records)
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{}={}", c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
                .collect()
        };
        assert_eq!(
            status(&[]),
            ["Selected=False", "AllInjected=False", "AllRecovered=False", "Paused=False"]
        );
        assert_eq!(
            status(&[record(INJECTED), record(NOT_INJECTED)]),
            ["Selected=True", "AllInjected=False", "AllRecovered=False", "Paused=False"]
        );
        assert_eq!(
            status(&[record(INJECTED)]),
            ["Selected=True", "AllInjected=True", "AllRecovered=False", "Paused=False"]
        );
    }
}

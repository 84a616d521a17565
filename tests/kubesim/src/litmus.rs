//! A simulated LitmusChaos (chaos-operator, chaos-runner and the litmus-go experiments
//! together) for ChaosEngines (`litmuschaos.io/v1alpha1`). Neither ChaosEngine nor
//! ChaosResult has a status subresource: every status here is written through the main
//! resource, as Litmus's own `Update` calls do.
//!
//! - An engine whose `spec.engineState` is `active` (or unset, which the operator writes as
//!   `active`) gets the finalizer `chaosengine.litmuschaos.io/finalizer` and the status
//!   `engineStatus: initialized` with one `experiments[]` entry per `spec.experiments[]`:
//!   `name`, `runner` (`<engine>-runner`), `experimentPod` (`<experiment>-<run id>-<pod
//!   suffix>`), `status: Running`, `verdict: Awaited`, `lastUpdateTime`.
//! - The experiments run one after the other. Each creates (or, for a rerun, resets) the
//!   ChaosResult `<engine>-<experiment>`: `spec.engine`, `spec.experiment`, the experiment
//!   job's labels plus `chaosUID` (the engine's uid), and `status.experimentStatus` `phase:
//!   Running`, `verdict: Awaited`, `probeSuccessPercentage: Awaited`, `failStep: N/A`, its
//!   probes in `probeStatuses` (verdict `Awaited`) and `history` (`passedRuns`, `failedRuns`,
//!   `stoppedRuns`, `targets`), kept across runs.
//! - After [`LitmusBehaviour::chaos_time`] (or the experiment's `TOTAL_CHAOS_DURATION` env,
//!   in seconds, when shorter) the chaos is injected into the Running pods that
//!   `spec.appinfo` selects (`appns`, the engine's namespace when unset; `applabel`, a label
//!   selector; `appkind`, the kind of the pods' controller): `pod-delete` deletes the first
//!   of them by name (or `PODS_AFFECTED_PERC` of them, at least one), which its Deployment
//!   or StatefulSet replaces; `container-kill` restarts `TARGET_CONTAINER` (or the first
//!   container) of the first one. Other `pod-*` and `container-*` experiments need targets
//!   but show no effect; any other experiment needs none. No target: verdict `Fail`,
//!   failStep `[chaos]: failed to get the target pod list`.
//! - Then the probes of `spec.experiments[].spec.probe[]` are evaluated once: an `httpProbe`
//!   really sends its GET (or POST) to `httpProbe/inputs.url` (plain `http://` only) and
//!   compares the response code with `criteria` (`==`, `!=`, `oneOf`) and `responseCode`;
//!   every other probe type passes. Their `probeStatuses` get verdict `Passed` or `Failed`
//!   with a description.
//! - The result ends `phase: Completed` with verdict `Pass` (`probeSuccessPercentage`
//!   `100`) or `Fail` (the share of probes that passed, `0` without probes, and a failStep
//!   naming the failed probe); its history counts the run and names the targets. The
//!   engine's entry turns `Completed` with the verdict, and once every experiment is done
//!   the engine gets `engineStatus: completed` and `spec.engineState: stop` in one update.
//! - Patching `spec.engineState` to `stop` mid-run aborts it, as the operator's kill of the
//!   experiment pod and litmus-go's abort watcher do: the running experiment's result ends
//!   `phase: Completed`, `verdict: Stopped`, failStep `Chaos injection stopped!`,
//!   `stoppedRuns` + 1 and unevaluated probes `N/A`; the engine's running entries become
//!   `Forcefully Aborted` with verdict `Stopped`, `engineStatus: stopped`, and the finalizer
//!   is removed. Deleting a running engine does the same, then the engine goes; a finished
//!   one just loses its finalizer. Setting `active` again on a completed or stopped engine
//!   runs it afresh.
//!
//! Not simulated: ChaosExperiment objects (an engine runs whether or not its experiments'
//! ChaosExperiments exist), runner and experiment pods and jobs (only named in the status),
//! `spec.selectors`, the default application health checks, probe modes (every probe is
//! evaluated once, after the injection), repeated injections over the chaos duration, and
//! Events.
//!
//! Fault hooks ([`crate::Cluster::litmus`]): a ChaosResult that says `Fail` while its engine
//! says `Pass`, and a run that never leaves `Awaited`.

use crate::resources::Resource;
use crate::selectors::Selector;
use crate::store::Change;
use crate::{Cluster, http};
use crate::{now, text};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const GROUP: &str = "litmuschaos.io";

/// The finalizer the chaos-operator puts on every engine it initializes.
pub const FINALIZER: &str = "chaosengine.litmuschaos.io/finalizer";

/// How often a waiting run looks for an abort.
const POLL: Duration = Duration::from_millis(50);

/// litmus-go's failStep when the experiment pod is told to stop.
const STOPPED_STEP: &str = "Chaos injection stopped!";
/// litmus-go's failStep when no pod matches the application's details.
const NO_TARGETS_STEP: &str = "[chaos]: failed to get the target pod list";
/// litmus-go's failStep for a failed probe; kubesim appends which probe and why.
const PROBE_STEP: &str = "[post-chaos]: failed in probe execution";
/// The failStep of [`LitmusBehaviour::result_says_fail`].
const RESULT_SAYS_FAIL_STEP: &str = "[post-chaos]: failed in AUT status checks";

/// Probes wait no longer than this, whatever their `probeTimeout`, so tests stay fast.
const PROBE_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// How the simulated LitmusChaos behaves; change it with [`crate::Cluster::litmus`].
#[derive(Debug, Clone)]
pub struct LitmusBehaviour {
    /// How long each experiment's chaos lasts before its effect and verdict (an experiment's
    /// shorter `TOTAL_CHAOS_DURATION` wins).
    pub chaos_time: Duration,
    /// The known Litmus inconsistency: the engine's `experiments[]` says `Completed`/`Pass`
    /// while the ChaosResult says `Fail` (failStep `[post-chaos]: failed in AUT status
    /// checks`, `probeSuccessPercentage` `0`).
    pub result_says_fail: bool,
    /// After the injection nothing more is written: the result stays `Running`/`Awaited`
    /// and the engine `initialized`, until the engine is stopped or deleted.
    pub stuck_awaited: bool,
}

impl Default for LitmusBehaviour {
    fn default() -> Self {
        LitmusBehaviour {
            chaos_time: Duration::from_millis(500),
            result_says_fail: false,
            stuck_awaited: false,
        }
    }
}

/// Starts a run for an engine that asks for one, and lets a finished engine being deleted go.
pub(crate) fn on_change(cluster: &Cluster, change: &Change) {
    if change.group != GROUP || change.plural != "chaosengines" || change.kind == "DELETED" {
        return;
    }
    let Some(engines) = cluster.resource(GROUP, "chaosengines") else {
        return;
    };
    let name = text(&change.object["metadata"]["name"]).to_owned();
    // Decided on the engine as stored now, not as the change carried it: the claim below is
    // written at once, so an older change still queued cannot start a second run.
    let key = (GROUP.to_owned(), "chaosengines".to_owned(), change.namespace.clone(), name.clone());
    let Some(engine) = cluster.store().get(&key).cloned() else {
        return;
    };
    let status = text(&engine["status"]["engineStatus"]);
    if !engine["metadata"]["deletionTimestamp"].is_null() {
        // A running engine is let go by its run, once aborted.
        if status != "initialized" {
            remove_finalizer(cluster, &engines, &change.namespace, &name);
        }
        return;
    }
    let state = engine["spec"]["engineState"].as_str().unwrap_or("active");
    // An engine created already initialized (restored mid-run) is run as well.
    let start = state == "active" && (status != "initialized" || change.kind == "ADDED");
    if !start {
        return;
    }
    let experiments: Vec<Experiment> = engine["spec"]["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let name = text(&e["name"]).to_owned();
            let job = format!("{name}-{}", run_id());
            Experiment {
                pod: format!("{job}-{}", crate::jobs::suffix()),
                job,
                name,
                spec: e["spec"].clone(),
            }
        })
        .collect();
    let entries: Vec<Value> = experiments
        .iter()
        .map(|e| {
            json!({"name": e.name, "runner": format!("{name}-runner"), "experimentPod": e.pod,
                   "status": "Running", "verdict": "Awaited", "lastUpdateTime": now()})
        })
        .collect();
    let Some(results) = cluster.resource(GROUP, "chaosresults") else {
        return;
    };
    let uid = text(&engine["metadata"]["uid"]).to_owned();
    let claimed = modify(cluster, &engines, &change.namespace, &name, &uid, |o| {
        let mut finalizers = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(FINALIZER.into());
        }
        o["metadata"]["finalizers"] = finalizers.into();
        o["spec"]["engineState"] = "active".into();
        if !o["status"].is_object() {
            o["status"] = json!({});
        }
        o["status"]["engineStatus"] = "initialized".into();
        o["status"]["experiments"] = entries.clone().into();
    });
    if claimed {
        let run = Run {
            cluster: cluster.clone(),
            engines,
            results,
            namespace: change.namespace.clone(),
            name,
            uid,
            experiments,
        };
        cluster.track(tokio::spawn(run.run()));
    }
}

/// Six lowercase letters, as chaos-runner names an experiment's job `<experiment>-<run id>`.
fn run_id() -> String {
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(6)
        .map(|b| char::from(b'a' + b % 26))
        .collect()
}

/// A read-modify-write retried on conflicts, as Litmus's controllers do; false when the
/// object (with this uid, unless empty) is gone or cannot be written.
fn modify(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str, uid: &str, change: impl Fn(&mut Value)) -> bool {
    let key = (
        resource.group.clone(),
        resource.plural.clone(),
        namespace.to_owned(),
        name.to_owned(),
    );
    for _ in 0..10 {
        let current = cluster.store().get(&key).cloned();
        let Some(mut object) = current.filter(|o| uid.is_empty() || o["metadata"]["uid"] == uid) else {
            return false;
        };
        change(&mut object);
        match http::update_object(cluster, resource, namespace, name, object) {
            Ok(_) => return true,
            Err(e) if e.code == 409 => continue,
            Err(e) => {
                eprintln!("kubesim: litmus: {} {namespace}/{name}: {}", resource.kind, e.message);
                return false;
            }
        }
    }
    false
}

fn remove_finalizer(cluster: &Cluster, engines: &Resource, namespace: &str, name: &str) {
    modify(cluster, engines, namespace, name, "", |o| {
        if let Some(finalizers) = o["metadata"]["finalizers"].as_array_mut() {
            finalizers.retain(|f| f != FINALIZER);
        }
    });
}

/// One `spec.experiments[]` entry of a run.
struct Experiment {
    name: String,
    /// The experiment job's name, `<experiment>-<run id>`.
    job: String,
    /// Its pod's name, as `status.experiments[].experimentPod` gives it.
    pod: String,
    spec: Value,
}

impl Experiment {
    fn env(&self, name: &str) -> Option<&str> {
        self.spec["components"]["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
    }

    fn probes(&self) -> Vec<Value> {
        self.spec["probe"].as_array().cloned().unwrap_or_default()
    }
}

/// What an experiment's probe came to.
struct ProbeOutcome {
    probe: Value,
    /// `Passed`, `Failed`, `N/A` or `Awaited`.
    verdict: &'static str,
    description: Option<String>,
}

impl ProbeOutcome {
    fn to_json(&self) -> Value {
        let mut status = json!({"verdict": self.verdict});
        if let Some(description) = &self.description {
            status["description"] = description.clone().into();
        }
        json!({"name": self.probe["name"], "type": self.probe["type"], "mode": self.probe["mode"], "status": status})
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Live,
    Stop,
    Deleting,
    Gone,
}

/// One run of an engine's experiments.
struct Run {
    cluster: Cluster,
    engines: Resource,
    results: Resource,
    namespace: String,
    name: String,
    uid: String,
    experiments: Vec<Experiment>,
}

impl Run {
    fn engine(&self) -> Option<Value> {
        let key = (
            GROUP.to_owned(),
            "chaosengines".to_owned(),
            self.namespace.clone(),
            self.name.clone(),
        );
        self.cluster
            .store()
            .get(&key)
            .filter(|o| o["metadata"]["uid"] == self.uid.as_str())
            .cloned()
    }

    fn state(&self) -> State {
        match self.engine() {
            None => State::Gone,
            Some(e) if !e["metadata"]["deletionTimestamp"].is_null() => State::Deleting,
            Some(e) if e["spec"]["engineState"] == "stop" => State::Stop,
            Some(_) => State::Live,
        }
    }

    /// Waits until `at` (forever when `None`) unless the engine is stopped, deleted or gone.
    async fn until(&self, at: Option<Instant>) -> State {
        crate::poll_while(|| self.state(), &State::Live, at, POLL).await
    }

    async fn run(self) {
        for (index, experiment) in self.experiments.iter().enumerate() {
            self.start_result(experiment);
            let behaviour = self.cluster.litmus_behaviour();
            let total = experiment
                .env("TOTAL_CHAOS_DURATION")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let chaos_time = total.map_or(behaviour.chaos_time, |t| t.min(behaviour.chaos_time));
            match self.until(Some(Instant::now() + chaos_time)).await {
                State::Gone => return,
                State::Stop | State::Deleting => return self.abort(experiment),
                State::Live => {}
            }
            let injected = self.inject(experiment);
            if self.cluster.litmus_behaviour().stuck_awaited {
                if self.until(None).await != State::Gone {
                    self.abort(experiment);
                }
                return;
            }
            let probes = match &injected {
                Ok(_) => evaluate(experiment.probes()).await,
                Err(_) => not_evaluated(experiment.probes()),
            };
            match self.state() {
                State::Gone => return,
                State::Stop | State::Deleting => return self.abort(experiment),
                State::Live => {}
            }
            let verdict = self.finish_result(experiment, &injected, &probes);
            self.finish_entry(index, verdict);
        }
        modify(&self.cluster, &self.engines, &self.namespace, &self.name, &self.uid, |o| {
            o["status"]["engineStatus"] = "completed".into();
            o["spec"]["engineState"] = "stop".into();
        });
    }

    fn result_name(&self, experiment: &Experiment) -> String {
        format!("{}-{}", self.name, experiment.name)
    }

    /// The experiment's ChaosResult at its start: created, or reset for this run with its
    /// history kept, as litmus-go's start-of-test update does.
    fn start_result(&self, experiment: &Experiment) {
        let name = self.result_name(experiment);
        let labels = json!({
            "app.kubernetes.io/component": "experiment-job", "app.kubernetes.io/part-of": "litmus",
            "name": experiment.name, "job-name": experiment.job, "chaosUID": self.uid,
        });
        let awaited: Vec<Value> = experiment
            .probes()
            .into_iter()
            .map(|probe| {
                ProbeOutcome {
                    probe,
                    verdict: "Awaited",
                    description: None,
                }
                .to_json()
            })
            .collect();
        let experiment_status = json!({"phase": "Running", "verdict": "Awaited",
                                       "probeSuccessPercentage": "Awaited", "failStep": "N/A"});
        let result = json!({
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosResult",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {"engine": self.name, "experiment": experiment.name},
            "status": {"experimentStatus": experiment_status, "probeStatuses": awaited,
                       "history": {"passedRuns": 0, "failedRuns": 0, "stoppedRuns": 0, "targets": []}},
        });
        match http::create_object(&self.cluster, &self.results, &self.namespace, result, "litmus-experiment") {
            Err(e) if e.code == 409 => {
                modify(&self.cluster, &self.results, &self.namespace, &name, "", |o| {
                    o["metadata"]["labels"] = labels.clone();
                    o["spec"]["engine"] = self.name.clone().into();
                    o["spec"]["experiment"] = experiment.name.clone().into();
                    if !o["status"].is_object() {
                        o["status"] = json!({});
                    }
                    o["status"]["experimentStatus"] = experiment_status.clone();
                    o["status"]["probeStatuses"] = awaited.clone().into();
                    if !o["status"]["history"].is_object() {
                        o["status"]["history"] = json!({"passedRuns": 0, "failedRuns": 0, "stoppedRuns": 0, "targets": []});
                    }
                });
            }
            Err(e) => eprintln!("kubesim: litmus: ChaosResult {}/{name}: {}", self.namespace, e.message),
            Ok(_) => {}
        }
    }

    /// The chaos itself, on the targets `spec.appinfo` selects: the names of the pods hit,
    /// or the failStep.
    fn inject(&self, experiment: &Experiment) -> Result<Vec<String>, String> {
        let name = experiment.name.as_str();
        if !(name.starts_with("pod-") || name.starts_with("container-")) {
            return Ok(Vec::new());
        }
        let Some(engine) = self.engine() else {
            return Err(NO_TARGETS_STEP.into());
        };
        let pods = targets(&self.cluster, &engine["spec"]["appinfo"], &self.namespace);
        let Some(first) = pods.first() else {
            return Err(NO_TARGETS_STEP.into());
        };
        let pod_name = |p: &Value| text(&p["metadata"]["name"]).to_owned();
        let pod_namespace = |p: &Value| text(&p["metadata"]["namespace"]).to_owned();
        match name {
            "pod-delete" => {
                let percent = experiment
                    .env("PODS_AFFECTED_PERC")
                    .and_then(|p| p.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let count = (pods.len() * percent.min(100) / 100).max(1);
                let resource = self.cluster.resource("", "pods").ok_or(NO_TARGETS_STEP)?;
                let mut hit = Vec::new();
                for pod in pods.iter().take(count) {
                    if http::delete_object(&self.cluster, &resource, &pod_namespace(pod), &pod_name(pod)).is_ok() {
                        hit.push(pod_name(pod));
                    }
                }
                if hit.is_empty() {
                    return Err(NO_TARGETS_STEP.into());
                }
                Ok(hit)
            }
            "container-kill" => {
                let pod = first;
                let container = experiment.env("TARGET_CONTAINER").filter(|c| !c.is_empty());
                crate::chaos_mesh::modify_pod(&self.cluster, &pod_namespace(pod), &pod_name(pod), |status| {
                    crate::chaos_mesh::kill_container(status, container)
                })
                .map_err(|_| NO_TARGETS_STEP.to_owned())?;
                Ok(vec![pod_name(pod)])
            }
            _ => Ok(vec![pod_name(first)]),
        }
    }

    /// The experiment's result at its end; returns the verdict its engine entry gets.
    fn finish_result(&self, experiment: &Experiment, injected: &Result<Vec<String>, String>, probes: &[ProbeOutcome]) -> &'static str {
        let passed = probes.iter().filter(|p| p.verdict == "Passed").count();
        let failed = probes.iter().find(|p| p.verdict == "Failed");
        let (verdict, fail_step) = match (injected, failed) {
            (Err(step), _) => ("Fail", step.clone()),
            (Ok(_), Some(probe)) => (
                "Fail",
                format!(
                    "{PROBE_STEP}: {{name: {}, type: {}, mode: {}}}: {}",
                    text(&probe.probe["name"]),
                    text(&probe.probe["type"]),
                    text(&probe.probe["mode"]),
                    probe.description.as_deref().unwrap_or_default()
                ),
            ),
            (Ok(_), None) => ("Pass", "N/A".to_owned()),
        };
        let share = if verdict == "Pass" {
            "100".to_owned()
        } else {
            (passed * 100).checked_div(probes.len()).unwrap_or(0).to_string()
        };
        let engine_verdict = verdict;
        let (verdict, fail_step, share) = if self.cluster.litmus_behaviour().result_says_fail {
            ("Fail", RESULT_SAYS_FAIL_STEP.to_owned(), "0".to_owned())
        } else {
            (verdict, fail_step, share)
        };
        let targets: Vec<Value> = injected
            .as_ref()
            .map(|pods| {
                pods.iter()
                    .map(|p| json!({"name": p, "kind": "pod", "chaosStatus": "injected"}))
                    .collect()
            })
            .unwrap_or_default();
        let statuses: Vec<Value> = probes.iter().map(ProbeOutcome::to_json).collect();
        let counter = if verdict == "Pass" { "passedRuns" } else { "failedRuns" };
        modify(
            &self.cluster,
            &self.results,
            &self.namespace,
            &self.result_name(experiment),
            "",
            |o| {
                o["status"]["experimentStatus"] = json!({"phase": "Completed", "verdict": verdict, "failStep": fail_step,
                                                      "probeSuccessPercentage": share});
                o["status"]["probeStatuses"] = statuses.clone().into();
                count_run(&mut o["status"]["history"], counter);
                o["status"]["history"]["targets"] = targets.clone().into();
            },
        );
        engine_verdict
    }

    /// The engine's `experiments[index]` once that experiment is over.
    fn finish_entry(&self, index: usize, verdict: &str) {
        modify(&self.cluster, &self.engines, &self.namespace, &self.name, &self.uid, |o| {
            if let Some(entry) = o["status"]["experiments"].get_mut(index) {
                entry["status"] = "Completed".into();
                entry["verdict"] = verdict.into();
                entry["lastUpdateTime"] = now().into();
            }
        });
    }

    /// The abort of a run while `experiment` is running: its result is written by the
    /// experiment's abort watcher, then the operator marks the engine stopped and lets it go.
    fn abort(&self, experiment: &Experiment) {
        let statuses: Vec<Value> = not_evaluated(experiment.probes()).iter().map(ProbeOutcome::to_json).collect();
        modify(
            &self.cluster,
            &self.results,
            &self.namespace,
            &self.result_name(experiment),
            "",
            |o| {
                o["status"]["experimentStatus"] = json!({"phase": "Completed", "verdict": "Stopped", "failStep": STOPPED_STEP,
                                                      "probeSuccessPercentage": "0"});
                o["status"]["probeStatuses"] = statuses.clone().into();
                count_run(&mut o["status"]["history"], "stoppedRuns");
            },
        );
        modify(&self.cluster, &self.engines, &self.namespace, &self.name, &self.uid, |o| {
            for entry in o["status"]["experiments"].as_array_mut().into_iter().flatten() {
                if entry["status"] == "Running" || entry["status"] == "Waiting for Job Creation" {
                    entry["status"] = "Forcefully Aborted".into();
                    entry["verdict"] = "Stopped".into();
                    entry["lastUpdateTime"] = now().into();
                }
            }
            o["status"]["engineStatus"] = "stopped".into();
            if let Some(finalizers) = o["metadata"]["finalizers"].as_array_mut() {
                finalizers.retain(|f| f != FINALIZER);
            }
        });
    }
}

/// Adds one run to a ChaosResult's `history` under `counter`.
fn count_run(history: &mut Value, counter: &str) {
    if !history.is_object() {
        *history = json!({"passedRuns": 0, "failedRuns": 0, "stoppedRuns": 0, "targets": []});
    }
    let runs = history[counter].as_i64().unwrap_or(0) + 1;
    history[counter] = runs.into();
}

/// The Running pods `appinfo` selects, by name.
fn targets(cluster: &Cluster, appinfo: &Value, namespace: &str) -> Vec<Value> {
    let label = text(&appinfo["applabel"]);
    // litmus-go refuses to pick pods without a label (or named targets, not simulated).
    if label.is_empty() {
        return Vec::new();
    }
    let Ok(selector) = Selector::parse(Some(label), None) else {
        return Vec::new();
    };
    let app_namespace = appinfo["appns"].as_str().filter(|n| !n.is_empty()).unwrap_or(namespace);
    let kind = text(&appinfo["appkind"]).to_ascii_lowercase();
    let mut pods: Vec<Value> = cluster
        .store()
        .list("", "pods", app_namespace)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running")
        .filter(|p| selector.matches(p))
        .filter(|p| {
            kind.is_empty()
                || p["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["controller"] == true && text(&r["kind"]).eq_ignore_ascii_case(&kind))
        })
        .collect();
    pods.sort_by(|a, b| text(&a["metadata"]["name"]).cmp(text(&b["metadata"]["name"])));
    pods
}

/// Probes that never ran, as litmus-go marks them after a failure or an abort.
fn not_evaluated(probes: Vec<Value>) -> Vec<ProbeOutcome> {
    probes
        .into_iter()
        .map(|probe| ProbeOutcome {
            probe,
            verdict: "N/A",
            description: Some("Either probe is not executed or not evaluated".into()),
        })
        .collect()
}

/// Runs each probe once: `httpProbe`s for real, every other type passes.
async fn evaluate(probes: Vec<Value>) -> Vec<ProbeOutcome> {
    let mut out = Vec::new();
    for probe in probes {
        let outcome = if probe["type"] == "httpProbe" {
            http_probe(&probe).await
        } else {
            Ok(())
        };
        let (verdict, description) = match outcome {
            Ok(()) => ("Passed", None),
            Err(why) => ("Failed", Some(why)),
        };
        out.push(ProbeOutcome {
            probe,
            verdict,
            description,
        });
    }
    out
}

/// An `httpProbe`: its request, and the response code held against its criteria.
async fn http_probe(probe: &Value) -> Result<(), String> {
    let inputs = &probe["httpProbe/inputs"];
    let url = text(&inputs["url"]);
    let post = &inputs["method"]["post"];
    let (method, verb, criteria) = if post.is_object() {
        ("POST", "Post", post)
    } else {
        ("GET", "Get", &inputs["method"]["get"])
    };
    let expected = criteria["responseCode"].as_str().unwrap_or("200");
    let comparison = criteria["criteria"].as_str().unwrap_or("==");
    let timeout = probe_timeout(&probe["runProperties"]["probeTimeout"]);
    let body = post["body"].as_str().unwrap_or_default();
    let content_type = post["contentType"].as_str().unwrap_or("application/json");
    let code = tokio::time::timeout(timeout, status_code(method, url, body, content_type))
        .await
        .map_err(|_| format!("{verb} \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))?
        .map_err(|e| format!("{verb} \"{url}\": {e}"))?;
    let matched = match comparison {
        "==" => code == expected,
        "!=" => code != expected,
        "oneOf" => expected.trim_matches(|c| c == '[' || c == ']').split(',').any(|c| c.trim() == code),
        other => return Err(format!("criteria '{other}' not supported in the http probe")),
    };
    if matched {
        Ok(())
    } else {
        Err(format!("Actual value: {code}, Expected value: {comparison} {expected}"))
    }
}

/// A probe's `probeTimeout`: a Go duration (`5s`, newer Litmus) or seconds (older), capped.
fn probe_timeout(value: &Value) -> Duration {
    let given = match value {
        Value::Number(n) => n.as_u64().map(Duration::from_secs),
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => crate::chaos_mesh::go_duration(s),
        },
        _ => None,
    };
    given.filter(|d| !d.is_zero()).unwrap_or(PROBE_TIMEOUT_CAP).min(PROBE_TIMEOUT_CAP)
}

/// An I/O error as Go's net package words the common ones.
fn go_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => e.to_string(),
    }
}

/// The response code of one plain HTTP/1.1 request to `url`.
async fn status_code(method: &str, url: &str, body: &str, content_type: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("unsupported protocol scheme (kubesim's probes speak plain http only)")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // `http://host?q` asks for `/?q`, as Go's client sends it.
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    let address = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(address.as_str())
        .await
        .map_err(|e| format!("dial tcp {address}: connect: {}", go_error(&e)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Go-http-client/1.1\r\nConnection: close\r\n");
    if method == "POST" {
        request.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(if method == "POST" { body } else { "" });
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write tcp {address}: {e}"))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let read = stream.read(&mut chunk).await.map_err(|e| format!("read tcp {address}: {e}"))?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default();
    match status_line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/") && code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((*code).to_owned())
        }
        _ => Err("malformed HTTP response".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_timeouts_are_capped() {
        assert_eq!(probe_timeout(&json!("1s")), Duration::from_secs(1));
        assert_eq!(probe_timeout(&json!(2)), Duration::from_secs(2));
        assert_eq!(probe_timeout(&json!("3")), Duration::from_secs(3));
        assert_eq!(probe_timeout(&json!("10m")), PROBE_TIMEOUT_CAP);
        assert_eq!(probe_timeout(&Value::Null), PROBE_TIMEOUT_CAP);
    }

    #[test]
    fn history_counts_runs() {
        let mut history = Value::Null;
        count_run(&mut history, "passedRuns");
        count_run(&mut history, "passedRuns");
        count_run(&mut history, "stoppedRuns");
        assert_eq!(history["passedRuns"], 2);
        assert_eq!(history["failedRuns"], 0);
        assert_eq!(history["stoppedRuns"], 1);
    }

    #[test]
    fn run_ids_are_lowercase() {
        let id = run_id();
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_lowercase()), "{id}");
    }
}

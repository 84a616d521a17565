//! The Job controller and a kubelet that really runs: a batch/v1 Job gets a Pod
//! (`<job>-<5 characters>`, labelled and owned as the real controller does), and the pod's
//! first container runs as a local process — its `command` and `args`, its `env` values on
//! top of kubesim's own environment, in its `workingDir` — with stdout and stderr together as
//! the pod's log (served at `pods/{name}/log`). Pods and Jobs move through their phases and
//! conditions as the real ones do, honouring `backoffLimit` (a new pod at once, without the
//! real exponential delay) and `activeDeadlineSeconds`. One pod at a time: `completions`
//! and `parallelism` above 1, `suspend` and pod failure policies are not simulated.
//!
//! A container without a `command` cannot run (its image's entrypoint is unknown here): the
//! pod fails with `ContainerCannotRun`. Other containers of the pod are not run. The
//! process runs in a process group of its own, killed whole when the pod is deleted, the
//! deadline passes, or serving stops.

use crate::http::ApiError;
use crate::now;
use crate::store::Change;
use crate::{Cluster, lock};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// What a pod's container wrote so far.
pub(crate) type Log = Arc<Mutex<Vec<u8>>>;

/// How often a running pod checks that it still exists.
const POLL: Duration = Duration::from_millis(100);

/// Starts a Job's controller loop when the Job is new.
pub fn on_change(cluster: &Cluster, change: &Change) {
    let fresh = change.object["status"]["startTime"].is_null() && change.object["status"]["conditions"].is_null();
    if change.group != "batch" || change.plural != "jobs" || change.kind != "ADDED" || !fresh {
        return;
    }
    let name = change.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let task = tokio::spawn(run_job(cluster.clone(), change.namespace.clone(), name));
    cluster.track(task);
}

fn key(plural: &str, namespace: &str, name: &str) -> crate::store::Key {
    let group = if plural == "jobs" { "batch" } else { "" };
    (group.into(), plural.into(), namespace.into(), name.into())
}

/// The counts and conditions the Job controller writes, with the fields it leaves out when
/// zero (`active`, `succeeded`, `failed` are omitempty).
struct JobStatus {
    start: String,
    active: i64,
    succeeded: i64,
    failed: i64,
    completion: Option<String>,
    conditions: Vec<Value>,
}

impl JobStatus {
    fn to_json(&self) -> Value {
        let mut status = json!({"startTime": self.start, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}});
        for (field, count) in [("active", self.active), ("succeeded", self.succeeded), ("failed", self.failed)] {
            if count > 0 {
                status[field] = count.into();
            }
        }
        if let Some(at) = &self.completion {
            status["completionTime"] = at.clone().into();
        }
        if !self.conditions.is_empty() {
            status["conditions"] = self.conditions.clone().into();
        }
        status
    }

    /// The condition pair Kubernetes 1.31+ writes at the end: the criterion, then the verdict.
    fn finish(&mut self, criterion: &str, verdict: &str, reason: &str, message: &str) {
        let at = now();
        for kind in [criterion, verdict] {
            self.conditions
                .push(json!({"type": kind, "status": "True", "reason": reason, "message": message,
                                        "lastProbeTime": at, "lastTransitionTime": at}));
        }
    }
}

/// Writes the Job's status; false when the Job (this one, by uid) is gone.
fn write_job(cluster: &Cluster, namespace: &str, name: &str, uid: &str, status: &JobStatus) -> bool {
    let Some(resource) = cluster.resource("batch", "jobs") else {
        return false;
    };
    let Some(mut job) = cluster.store().get(&key("jobs", namespace, name)).cloned() else {
        return false;
    };
    if job["metadata"]["uid"] != uid {
        return false;
    }
    job["status"] = status.to_json();
    crate::http::update_status(cluster, &resource, namespace, name, job).is_ok()
}

enum Outcome {
    Succeeded,
    Failed,
    DeadlineExceeded,
}

async fn run_job(cluster: Cluster, namespace: String, name: String) {
    let Some(job) = cluster.store().get(&key("jobs", &namespace, &name)).cloned() else {
        return;
    };
    let uid = job["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut status = JobStatus {
        start: now(),
        active: 0,
        succeeded: 0,
        failed: 0,
        completion: None,
        conditions: Vec::new(),
    };
    if !write_job(&cluster, &namespace, &name, &uid, &status) {
        return;
    }
    loop {
        let pod_name = format!("{name}-{}", suffix());
        let Some(pod_resource) = cluster.resource("", "pods") else { return };
        if crate::http::create_object(
            &cluster,
            &pod_resource,
            &namespace,
            pod_for(&job, &pod_name),
            "kube-controller-manager",
        )
        .is_err()
        {
            return;
        }
        status.active = 1;
        if !write_job(&cluster, &namespace, &name, &uid, &status) {
            return;
        }
        let outcome = run_pod(&cluster, &namespace, &pod_name, &job, deadline).await;
        status.active = 0;
        match outcome {
            Outcome::Succeeded => {
                status.succeeded += 1;
                status.completion = Some(now());
                status.finish(
                    "SuccessCriteriaMet",
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
            }
            Outcome::Failed if status.failed < backoff_limit => status.failed += 1,
            Outcome::Failed => {
                status.failed += 1;
                status.finish(
                    "FailureTarget",
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                );
            }
            Outcome::DeadlineExceeded => {
                status.failed += 1;
                status.finish(
                    "FailureTarget",
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                );
            }
        }
        if !write_job(&cluster, &namespace, &name, &uid, &status) || !status.conditions.is_empty() {
            return;
        }
    }
}

/// Five characters as Kubernetes' generateName picks them (no vowels, no look-alikes).
pub(crate) fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The Pod the Job controller creates for `job`.
fn pod_for(job: &Value, pod_name: &str) -> Value {
    let job_name = job["metadata"]["name"].as_str().unwrap_or_default();
    let uid = job["metadata"]["uid"].as_str().unwrap_or_default();
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("job-name", job_name),
        ("batch.kubernetes.io/job-name", job_name),
        ("controller-uid", uid),
        ("batch.kubernetes.io/controller-uid", uid),
    ] {
        labels.insert(k.into(), v.into());
    }
    let mut metadata = json!({
        "name": pod_name, "labels": labels,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
                             "controller": true, "blockOwnerDeletion": true}],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        metadata["annotations"] = annotations.clone().into();
    }
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
           "status": {"phase": "Pending", "qosClass": "BestEffort"}})
}

/// Writes a pod's status; false when the pod is gone.
fn write_pod(cluster: &Cluster, namespace: &str, name: &str, status: Value) -> bool {
    let Some(resource) = cluster.resource("", "pods") else {
        return false;
    };
    let Some(mut pod) = cluster.store().get(&key("pods", namespace, name)).cloned() else {
        return false;
    };
    pod["status"] = status;
    crate::http::update_status(cluster, &resource, namespace, name, pod).is_ok()
}

fn pod_exists(cluster: &Cluster, namespace: &str, name: &str) -> bool {
    cluster.store().get(&key("pods", namespace, name)).is_some()
}

/// `$(NAME)` references to variables defined before, as the kubelet expands them (`$$`
/// escapes; unknown references are left as written).
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(reference) = tail.strip_prefix("$(")
            && let Some(end) = reference.find(')')
            && let Some((_, value)) = env.iter().rev().find(|(k, _)| k == &reference[..end])
        {
            out.push_str(value);
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect())
}

/// Marks the pod Failed with its container unable to run (as the kubelet reports an exec
/// that fails), saying why.
fn cannot_start(cluster: &Cluster, (namespace, pod): (&str, &str), container: &Value, started: &str, message: String) -> Outcome {
    let at = now();
    let terminated = json!({"exitCode": 128, "reason": "ContainerCannotRun", "message": message, "startedAt": at, "finishedAt": at});
    write_pod(cluster, namespace, pod, terminated_status("Failed", container, started, terminated));
    Outcome::Failed
}

fn terminated_status(phase: &str, container: &Value, started: &str, terminated: Value) -> Value {
    json!({
        "phase": phase, "startTime": started, "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "False", "reason": "PodCompleted"},
                       {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}],
        "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "", "ready": false,
                               "started": false, "restartCount": 0, "state": {"terminated": terminated}}],
    })
}

/// Runs the pod's first container to its end.
async fn run_pod(cluster: &Cluster, namespace: &str, pod: &str, job: &Value, deadline: Option<Instant>) -> Outcome {
    let container = job["spec"]["template"]["spec"]["containers"][0].clone();
    let waiting = json!({
        "phase": "Pending", "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "", "ready": false,
                               "started": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}],
    });
    if !write_pod(cluster, namespace, pod, waiting) {
        return Outcome::Failed;
    }
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (var["name"].as_str(), var["value"].as_str()) {
            let value = expand(value, &env);
            env.push((name.to_owned(), value));
        }
    }
    let started = now();
    let argv: Vec<String> = match strings(&container["command"]) {
        Some(command) if !command.is_empty() => command
            .into_iter()
            .chain(strings(&container["args"]).unwrap_or_default())
            .map(|a| expand(&a, &env))
            .collect(),
        _ => {
            return cannot_start(
                cluster,
                (namespace, pod),
                &container,
                &started,
                format!(
                    "kubesim runs only containers with an explicit command: container {} has none (its image's entrypoint is not known here)",
                    container["name"]
                ),
            );
        }
    };
    let log: Log = Arc::default();
    let spawned = spawn(&argv, &env, container["workingDir"].as_str());
    let (mut child, group, output) = match spawned {
        Ok(parts) => parts,
        Err(e) => {
            return cannot_start(
                cluster,
                (namespace, pod),
                &container,
                &started,
                format!("failed to start container {}: exec {:?}: {e}", container["name"], argv[0]),
            );
        }
    };
    lock(&cluster.inner.pod_logs).insert((namespace.to_owned(), pod.to_owned()), log.clone());
    let reader = tokio::spawn(read_into(output, log));
    let running = json!({
        "phase": "Running", "startTime": started, "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
        "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "", "ready": true,
                               "started": true, "restartCount": 0, "state": {"running": {"startedAt": started}}}],
    });
    write_pod(cluster, namespace, pod, running);
    let mut poll = tokio::time::interval(POLL);
    let ended = loop {
        let deadline_passed = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break status.ok().map(|s| exit_code(&s)),
            _ = deadline_passed => break None,
            _ = poll.tick() => if !pod_exists(cluster, namespace, pod) { break None },
        }
    };
    // Whatever it left behind goes too: a shell's children keep the log pipe open otherwise.
    group.kill();
    let _ = child.kill().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    let timed_out = ended.is_none() && deadline.is_some_and(|d| Instant::now() >= d);
    let code = ended.unwrap_or(137);
    let terminated = json!({"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                            "startedAt": started, "finishedAt": now()});
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    write_pod(cluster, namespace, pod, terminated_status(phase, &container, &started, terminated));
    match (code, timed_out) {
        (_, true) => Outcome::DeadlineExceeded,
        (0, _) => Outcome::Succeeded,
        _ => Outcome::Failed,
    }
}

fn exit_code(status: &std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
        .unwrap_or(1)
}

/// A process group, killed whole when dropped (the task running the pod was aborted).
struct Group(Option<i32>);

impl Group {
    fn kill(mut self) {
        self.signal();
        self.0 = None;
    }

    fn signal(&self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal();
    }
}

type Spawned = (tokio::process::Child, Group, tokio::net::unix::pipe::Receiver);

/// Starts `argv` in a new process group, stdout and stderr into one pipe.
fn spawn(argv: &[String], env: &[(String, String)], dir: Option<&str>) -> std::io::Result<Spawned> {
    let (sender, receiver) = tokio::net::unix::pipe::pipe()?;
    let writer = sender.into_blocking_fd()?;
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = dir.filter(|d| !d.is_empty()) {
        command.current_dir(dir);
    }
    let child = command.spawn()?;
    // The command holds the pipe's write end: only the process may, or the log never ends.
    drop(command);
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    Ok((child, Group(pgid), receiver))
}

async fn read_into(mut output: tokio::net::unix::pipe::Receiver, log: Log) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = output.read(&mut buf).await {
        if n == 0 {
            break;
        }
        lock(&log).extend_from_slice(&buf[..n]);
    }
}

/// GET `pods/{name}/log`: the container's output so far, as text (`follow` is answered with
/// what is there, then the stream ends; `timestamps` is ignored).
pub(crate) fn log_response(cluster: &Cluster, namespace: &str, name: &str, query: &HashMap<String, String>) -> Result<Response, ApiError> {
    let pod = cluster
        .store()
        .get(&key("pods", namespace, name))
        .cloned()
        .ok_or_else(|| ApiError {
            details: json!({"name": name, "kind": "pods"}),
            ..ApiError::new(404, "NotFound", format!("pods \"{name}\" not found"))
        })?;
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
            ));
        }
    };
    if !containers.contains(&container) {
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!("container {container} is not valid for pod {name}"),
        ));
    }
    let log = (containers.first() == Some(&container))
        .then(|| lock(&cluster.inner.pod_logs).get(&(namespace.to_owned(), name.to_owned())).cloned())
        .flatten();
    let Some(log) = log else {
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"),
        ));
    };
    let mut text = lock(&log).clone();
    if let Some(tail) = query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        text = tail_lines(&text, tail).to_vec();
    }
    if let Some(limit) = query.get("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
        text.truncate(limit);
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
}

/// The last `n` lines of `text` (a final line without a newline counts).
fn tail_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

//! kubesim's simulated controllers through `kube::Client`: Deployments' and StatefulSets'
//! pods (scaled, replaced, deleted with their workload, left out of backups), Jobs whose
//! pods really run (logs, backoff, deadlines, deletion), and the simulated Velero's object
//! storage shared by a primary and a DR cluster, BackupStorageLocation sync and validation,
//! Schedules and DownloadRequests.

mod common;

use common::{client, eventually, start};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::io::Read;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn api(client: &Client, group: &str, kind: &str, plural: &str, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn object(kind: &str, group: &str, name: &str, body: Value) -> DynamicObject {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), "");
    DynamicObject::new(name, &ar).data(body)
}

/// The object once its `status` satisfies `done`.
async fn status_when(api: &Api<DynamicObject>, name: &str, secs: u64, done: impl Fn(&Value) -> bool) -> DynamicObject {
    eventually(secs, name, || async {
        let o = api.get_opt(name).await.unwrap()?;
        done(&o.data["status"]).then_some(o)
    })
    .await
}

fn finished_job(status: &Value) -> bool {
    status["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    })
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn job(name: &str, spec: Value, container: Value) -> DynamicObject {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [container]}});
    object("Job", "batch", name, json!({"spec": spec}))
}

async fn job_pods(client: &Client, job: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    list
}

#[tokio::test]
async fn a_job_runs_its_command_and_serves_the_log() {
    let (_cluster, _running, client) = start().await;
    let jobs = api(&client, "batch", "Job", "jobs", "default");
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().canonicalize().unwrap().display().to_string();
    let container = json!({"name": "check", "image": "busybox", "command": ["sh", "-c"],
        "args": ["echo checking; pwd; echo rows=$ROWS $(GREETING); exit 0"], "workingDir": workdir,
        "env": [{"name": "ROWS", "value": "42"}, {"name": "GREETING", "value": "ok"},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]});
    jobs.create(&PostParams::default(), &job("check", json!({}), container))
        .await
        .unwrap();
    let done = status_when(&jobs, "check", 20, finished_job).await;
    let status = &done.data["status"];
    assert_eq!(condition(status, "Complete")["status"], "True", "{status}");
    assert_eq!(condition(status, "SuccessCriteriaMet")["status"], "True", "{status}");
    assert_eq!(status["succeeded"], 1, "{status}");
    assert!(status["startTime"].is_string() && status["completionTime"].is_string(), "{status}");
    assert!(status.get("active").is_none() && status.get("failed").is_none(), "{status}");

    let pods = job_pods(&client, "check").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let name = pod.metadata.name.clone().unwrap();
    let suffix = name.strip_prefix("check-").unwrap();
    assert!(
        suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{name}"
    );
    let labels = pod.metadata.labels.clone().unwrap();
    let uid = done.metadata.uid.clone().unwrap();
    assert_eq!(labels["batch.kubernetes.io/job-name"], "check");
    assert_eq!(labels["controller-uid"], uid);
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Job", uid.as_str(), Some(true))
    );
    let pod_status = pod.status.clone().unwrap();
    assert_eq!(pod_status.phase.as_deref(), Some("Succeeded"));
    assert!(pod_status.start_time.is_some());
    let terminated = pod_status.container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (0, Some("Completed")));
    assert!(terminated.started_at.is_some() && terminated.finished_at.is_some());

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let log = pods.logs(&name, &LogParams::default()).await.unwrap();
    assert_eq!(log, format!("checking\n{workdir}\nrows=42 ok\n"));
    let tail = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "rows=42 ok\n");
    let limited = pods
        .logs(
            &name,
            &LogParams {
                limit_bytes: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited, "check");
    let wrong = pods
        .logs(
            &name,
            &LogParams {
                container: Some("other".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(&wrong, kube::Error::Api(s) if s.code == 400), "{wrong:?}");

    // batch/v1 Jobs orphan their pods unless told otherwise.
    jobs.delete("check", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt(&name).await.unwrap().is_some(), "the pod is orphaned, not deleted");

    // A pod nothing runs has no log yet.
    let idle: Pod =
        serde_json::from_value(json!({"metadata": {"name": "idle"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})).unwrap();
    pods.create(&PostParams::default(), &idle).await.unwrap();
    let waiting = pods.logs("idle", &LogParams::default()).await.unwrap_err();
    assert!(
        matches!(&waiting, kube::Error::Api(s) if s.code == 400 && s.message.contains("is waiting to start")),
        "{waiting:?}"
    );

    // Without a command kubesim cannot know what the image would run.
    let imageonly = json!({"name": "app", "image": "registry.example/app:1"});
    jobs.create(&PostParams::default(), &job("imageonly", json!({"backoffLimit": 0}), imageonly))
        .await
        .unwrap();
    let failed = status_when(&jobs, "imageonly", 20, finished_job).await;
    assert_eq!(condition(&failed.data["status"], "Failed")["reason"], "BackoffLimitExceeded");
    let pod = job_pods(&client, "imageonly").await.remove(0);
    let state = pod.status.unwrap().container_statuses.unwrap()[0].state.clone().unwrap();
    let terminated = state.terminated.unwrap();
    assert_eq!(terminated.reason.as_deref(), Some("ContainerCannotRun"));
    assert!(
        terminated
            .message
            .unwrap()
            .contains("kubesim runs only containers with an explicit command")
    );
}

#[tokio::test]
async fn failing_pods_are_retried_up_to_the_backoff_limit() {
    let (_cluster, _running, client) = start().await;
    let jobs = api(&client, "batch", "Job", "jobs", "default");
    let container = json!({"name": "fail", "image": "busybox", "command": ["sh", "-c", "echo boom >&2; exit 3"]});
    jobs.create(&PostParams::default(), &job("fail", json!({"backoffLimit": 1}), container))
        .await
        .unwrap();
    let done = status_when(&jobs, "fail", 20, finished_job).await;
    let status = &done.data["status"];
    let failed = condition(status, "Failed");
    assert_eq!(
        (failed["status"].as_str(), failed["reason"].as_str()),
        (Some("True"), Some("BackoffLimitExceeded")),
        "{status}"
    );
    assert_eq!(failed["message"], "Job has reached the specified backoff limit");
    assert_eq!(condition(status, "FailureTarget")["reason"], "BackoffLimitExceeded");
    assert_eq!(status["failed"], 2, "{status}");
    assert!(status.get("completionTime").is_none(), "{status}");
    let pods = job_pods(&client, "fail").await;
    assert_eq!(pods.len(), 2);
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for pod in pods {
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let terminated = status.container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
        assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (3, Some("Error")));
        let log = api
            .logs(pod.metadata.name.as_deref().unwrap(), &LogParams::default())
            .await
            .unwrap();
        assert_eq!(log, "boom\n", "stderr is in the log");
    }
}

#[tokio::test]
async fn the_active_deadline_kills_the_pod() {
    let (_cluster, _running, client) = start().await;
    let jobs = api(&client, "batch", "Job", "jobs", "default");
    let container = json!({"name": "slow", "image": "busybox", "command": ["sleep", "30"]});
    let started = std::time::Instant::now();
    jobs.create(&PostParams::default(), &job("slow", json!({"activeDeadlineSeconds": 1}), container))
        .await
        .unwrap();
    let done = status_when(&jobs, "slow", 10, finished_job).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let failed = condition(&done.data["status"], "Failed");
    assert_eq!(failed["reason"], "DeadlineExceeded", "{}", done.data["status"]);
    assert_eq!(failed["message"], "Job was active longer than specified deadline");
    let pod = job_pods(&client, "slow").await.remove(0);
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Failed"));
}

/// Starts a Job `long` whose process sleeps for 30 s; returns the process's pid.
async fn start_long_job(jobs: &Api<DynamicObject>) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // `$$` is Kubernetes' escape for `$`, as in `$$(NAME)`: the shell sees `$$`.
    let script = format!("echo $$$$ > {}; exec sleep 30", pidfile.display());
    let container = json!({"name": "long", "image": "busybox", "command": ["sh", "-c", script]});
    jobs.create(&PostParams::default(), &job("long", json!({}), container))
        .await
        .unwrap();
    eventually(10, "the process to start", || async {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .await
}

#[tokio::test]
async fn deleting_a_job_in_the_background_deletes_its_pods_and_kills_the_process() {
    let (_cluster, _running, client) = start().await;
    let jobs = api(&client, "batch", "Job", "jobs", "default");
    let pid = start_long_job(&jobs).await;
    let running = eventually(10, "the pod to run", || async {
        let pod = job_pods(&client, "long").await.into_iter().next()?;
        (pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(pod)
    })
    .await;
    let state = running.status.unwrap().container_statuses.unwrap()[0].state.clone().unwrap();
    assert!(state.running.unwrap().started_at.is_some());
    jobs.delete("long", &DeleteParams::background()).await.unwrap();
    eventually(5, "the pods to go", || async {
        job_pods(&client, "long").await.is_empty().then_some(())
    })
    .await;
    eventually(5, "the process to be killed", || async { ended(pid).then_some(()) }).await;
}

async fn download(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response[..split])
    );
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&response[split + 4..]).read_to_end(&mut text).unwrap();
    text
}

/// The file a DownloadRequest for `kind`/`name` points at, once processed.
async fn requested(client: &Client, kind: &str, name: &str) -> Vec<u8> {
    let requests = api(client, "velero.io", "DownloadRequest", "downloadrequests", "velero");
    let request_name = format!("{}-{kind}", name).to_lowercase();
    let request = object(
        "DownloadRequest",
        "velero.io",
        &request_name,
        json!({"spec": {"target": {"kind": kind, "name": name}}}),
    );
    requests.create(&PostParams::default(), &request).await.unwrap();
    let done = status_when(&requests, &request_name, 5, |s| s["phase"] == "Processed").await;
    let status = &done.data["status"];
    assert!(status["expiration"].is_string(), "{status}");
    download(status["downloadURL"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_dr_cluster_sharing_the_bucket_syncs_and_restores_the_primarys_backups() {
    let crds = kubesim::Cluster::crds_dir();
    let primary = kubesim::Cluster::new(Some(&crds)).unwrap();
    let dr = kubesim::Cluster::with_storage(Some(&crds), primary.velero_storage()).unwrap();
    let (primary_running, dr_running) = (primary.serve().await.unwrap(), dr.serve().await.unwrap());
    let (p, d) = (client(&primary_running), client(&dr_running));

    // Velero comes installed with its default location.
    let locations = api(&p, "velero.io", "BackupStorageLocation", "backupstoragelocations", "velero");
    let location = locations.get("default").await.unwrap();
    assert_eq!(location.data["spec"]["default"], true);
    assert_eq!(location.data["status"]["phase"], "Available");

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(p.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(p.clone(), "app");
    let cm = serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"mode": "production"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let backups = api(&p, "velero.io", "Backup", "backups", "velero");
    let backup = object("Backup", "velero.io", "b1", json!({"spec": {"includedNamespaces": ["app"]}}));
    backups.create(&PostParams::default(), &backup).await.unwrap();
    let done = status_when(&backups, "b1", 10, |s| s["phase"] == "Completed").await;
    assert_eq!(done.data["spec"]["storageLocation"], "default");
    assert_eq!(done.metadata.labels.as_ref().unwrap()["velero.io/storage-location"], "default");
    assert_eq!(primary.velero_storage().backups(), ["b1"]);

    // The DR cluster's sync finds it in the bucket, finished.
    let dr_backups = api(&d, "velero.io", "Backup", "backups", "velero");
    let synced = status_when(&dr_backups, "b1", 5, |s| s["phase"] == "Completed").await;
    assert_eq!(synced.metadata.labels.as_ref().unwrap()["velero.io/storage-location"], "default");
    assert_eq!(synced.data["status"]["progress"], done.data["status"]["progress"]);
    let dr_locations = api(&d, "velero.io", "BackupStorageLocation", "backupstoragelocations", "velero");
    assert!(dr_locations.get("default").await.unwrap().data["status"]["lastSyncedTime"].is_string());

    let restores = api(&d, "velero.io", "Restore", "restores", "velero");
    let restore = |name: &str, backup: &str| object("Restore", "velero.io", name, json!({"spec": {"backupName": backup}}));
    restores.create(&PostParams::default(), &restore("r1", "b1")).await.unwrap();
    let r1 = status_when(&restores, "r1", 10, |s| s["phase"] == "Completed").await;
    assert_eq!(r1.data["status"]["warnings"], 0, "{}", r1.data["status"]);
    let dr_cms: Api<ConfigMap> = Api::namespaced(d.clone(), "app");
    assert_eq!(dr_cms.get("settings").await.unwrap().data.unwrap()["mode"], "production");

    // Over a changed object, a restore warns as Velero does; the results say which.
    dr_cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mode": "drill"}})),
        )
        .await
        .unwrap();
    restores.create(&PostParams::default(), &restore("r2", "b1")).await.unwrap();
    let r2 = status_when(&restores, "r2", 10, |s| s["phase"] == "Completed").await;
    assert_eq!(r2.data["status"]["warnings"], 1, "{}", r2.data["status"]);
    let results: Value = serde_json::from_slice(&requested(&d, "RestoreResults", "r2").await).unwrap();
    assert_eq!(
        results["warnings"]["namespaces"]["app"],
        json!([
            "could not restore, ConfigMap \"settings\" already exists. Warning: the in-cluster version is different than the backed-up version"
        ]),
        "{results}"
    );
    assert_eq!(results["errors"], json!({}));
    let log = String::from_utf8(requested(&d, "RestoreLog", "r1").await).unwrap();
    assert!(log.contains("msg=\"Restored 1 items out of an estimated total of 2"), "{log}");
    let log = String::from_utf8(requested(&p, "BackupLog", "b1").await).unwrap();
    assert!(
        log.contains("level=info msg=\"Backed up 2 items out of an estimated total of 2"),
        "{log}"
    );
    let results: Value = serde_json::from_slice(&requested(&p, "BackupResults", "b1").await).unwrap();
    assert_eq!(results, json!({"errors": {}, "warnings": {}}));

    // A request for what the bucket does not hold is never processed.
    let requests = api(&d, "velero.io", "DownloadRequest", "downloadrequests", "velero");
    let unknown = object(
        "DownloadRequest",
        "velero.io",
        "nope",
        json!({"spec": {"target": {"kind": "RestoreLog", "name": "nope"}}}),
    );
    requests.create(&PostParams::default(), &unknown).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = &requests.get("nope").await.unwrap().data["status"];
    assert_eq!(status["phase"], "New", "{status}");
    assert!(status.get("downloadURL").is_none(), "{status}");

    // A restore of a backup the cluster does not have fails validation.
    restores.create(&PostParams::default(), &restore("r3", "missing")).await.unwrap();
    let r3 = status_when(&restores, "r3", 5, |s| s["phase"] == "FailedValidation").await;
    assert_eq!(
        r3.data["status"]["validationErrors"],
        json!(["Error retrieving backup: backup.velero.io \"missing\" not found"])
    );
}

#[tokio::test]
async fn backups_are_validated_against_their_storage_location() {
    let (_cluster, _running, client) = start().await;
    let backups = api(&client, "velero.io", "Backup", "backups", "velero");
    let locations = api(&client, "velero.io", "BackupStorageLocation", "backupstoragelocations", "velero");
    let archive = object(
        "BackupStorageLocation",
        "velero.io",
        "archive",
        json!({"spec": {"provider": "aws", "objectStorage": {"bucket": "archive"}, "accessMode": "ReadOnly"}}),
    );
    locations.create(&PostParams::default(), &archive).await.unwrap();
    let cases = [
        (
            "to-nowhere",
            json!({"storageLocation": "nowhere"}),
            "error getting backup storage location: backupstoragelocation.velero.io \"nowhere\" not found",
        ),
        (
            "to-archive",
            json!({"storageLocation": "archive"}),
            "backup can't be created because backup storage location archive is currently in read-only mode",
        ),
    ];
    for (name, spec, message) in &cases {
        backups
            .create(&PostParams::default(), &object("Backup", "velero.io", name, json!({"spec": spec})))
            .await
            .unwrap();
        let failed = status_when(&backups, name, 5, |s| s["phase"] == "FailedValidation").await;
        assert_eq!(failed.data["status"]["validationErrors"], json!([message]));
    }
    // A location kubesim did not install becomes Available when validated.
    let archive = status_when(&locations, "archive", 5, |s| s["phase"] == "Available").await;
    assert!(archive.data["status"]["lastSyncedTime"].is_string());

    locations.delete("default", &DeleteParams::default()).await.unwrap();
    backups
        .create(
            &PostParams::default(),
            &object("Backup", "velero.io", "no-default", json!({"spec": {}})),
        )
        .await
        .unwrap();
    let failed = status_when(&backups, "no-default", 5, |s| s["phase"] == "FailedValidation").await;
    assert_eq!(
        failed.data["status"]["validationErrors"],
        json!(["an existing backup storage location was not specified at backup creation time and the default 'default' was not found"])
    );
}

#[tokio::test]
async fn schedules_are_validated_and_run_by_the_test_hook() {
    let (cluster, _running, client) = start().await;
    let schedules = api(&client, "velero.io", "Schedule", "schedules", "velero");
    let nightly = object(
        "Schedule",
        "velero.io",
        "nightly",
        json!({"spec": {"schedule": "0 1 * * *", "template": {"includedNamespaces": ["default"], "ttl": "720h0m0s"}}}),
    );
    schedules.create(&PostParams::default(), &nightly).await.unwrap();
    status_when(&schedules, "nightly", 5, |s| s["phase"] == "Enabled").await;
    let bad = object(
        "Schedule",
        "velero.io",
        "bad",
        json!({"spec": {"schedule": "every night", "template": {}}}),
    );
    schedules.create(&PostParams::default(), &bad).await.unwrap();
    let bad = status_when(&schedules, "bad", 5, |s| s["phase"] == "FailedValidation").await;
    assert_eq!(
        bad.data["status"]["validationErrors"],
        json!(["invalid schedule: expected exactly 5 fields, found 2: every night"])
    );

    let name = cluster.run_schedule("velero", "nightly");
    let stamp = name.strip_prefix("nightly-").unwrap();
    assert!(stamp.len() == 14 && stamp.chars().all(|c| c.is_ascii_digit()), "{name}");
    let schedule = schedules.get("nightly").await.unwrap();
    assert!(schedule.data["status"]["lastBackup"].is_string(), "{}", schedule.data["status"]);
    let backups = api(&client, "velero.io", "Backup", "backups", "velero");
    let backup = status_when(&backups, &name, 10, |s| s["phase"] == "Completed").await;
    assert_eq!(backup.metadata.labels.as_ref().unwrap()["velero.io/schedule-name"], "nightly");
    assert_eq!(backup.data["spec"]["ttl"], "720h0m0s");

    cluster.backdate(
        "velero.io",
        "backups",
        "velero",
        &name,
        json!({"completionTimestamp": "2020-01-01T00:00:00Z"}),
    );
    let old = backups.get(&name).await.unwrap();
    assert_eq!(old.data["status"]["completionTimestamp"], "2020-01-01T00:00:00Z");
    assert_eq!(old.data["status"]["phase"], "Completed", "the rest of the status is kept");
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_running_process_is_killed_when_serving_stops() {
    let (_cluster, running, client) = start().await;
    let jobs = api(&client, "batch", "Job", "jobs", "default");
    let pid = start_long_job(&jobs).await;
    assert!(!ended(pid));
    drop(running);
    eventually(5, "the process to be killed", || async { ended(pid).then_some(()) }).await;
}

async fn pods_of(client: &Client, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
    list.sort_by_key(|p| p.metadata.name.clone());
    list
}

/// The pods of `app` once there are `count` of them, none being deleted.
async fn pods_when(client: &Client, app: &str, count: usize) -> Vec<Pod> {
    eventually(10, &format!("{count} pods of {app}"), || async {
        let pods = pods_of(client, app).await;
        (pods.len() == count && pods.iter().all(|p| p.metadata.deletion_timestamp.is_none())).then_some(pods)
    })
    .await
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
}

#[tokio::test]
async fn workloads_keep_their_pods() {
    let (_cluster, _running, client) = start().await;
    let template = |app: &str| json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": "nginx"}]}});
    let deployments = api(&client, "apps", "Deployment", "deployments", "default");
    let web = object(
        "Deployment",
        "apps",
        "web",
        json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
    );
    deployments.create(&PostParams::default(), &web).await.unwrap();
    let sets = api(&client, "apps", "StatefulSet", "statefulsets", "default");
    let claim =
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let db = object(
        "StatefulSet",
        "apps",
        "db",
        json!({"spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": template("db"), "volumeClaimTemplates": [claim]}}),
    );
    sets.create(&PostParams::default(), &db).await.unwrap();

    let web_pods = pods_when(&client, "web", 2).await;
    let hash = web_pods[0].metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    for name in names(&web_pods) {
        let suffix = name.strip_prefix(&format!("web-{hash}-")).unwrap_or_else(|| panic!("{name}"));
        assert!(
            suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}"
        );
    }
    let db_pods = pods_when(&client, "db", 2).await;
    assert_eq!(names(&db_pods), ["db-0", "db-1"]);
    let db0 = &db_pods[0];
    let owner = &db0.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("StatefulSet", "db", Some(true))
    );
    let spec = db0.spec.clone().unwrap();
    let volume = &spec.volumes.unwrap()[0];
    assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, "data-db-0");
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx"));
    assert_eq!(db0.status.clone().unwrap().phase.as_deref(), Some("Running"));

    // A deleted pod is replaced: a StatefulSet's under the same name, a Deployment's under a new one.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("db-0", &DeleteParams::default()).await.unwrap();
    let old_uid = db0.metadata.uid.clone();
    eventually(10, "db-0 again", || async {
        let pod = pods.get_opt("db-0").await.unwrap()?;
        (pod.metadata.uid != old_uid).then_some(())
    })
    .await;
    let killed = names(&web_pods)[0].clone();
    pods.delete(&killed, &DeleteParams::default()).await.unwrap();
    let replaced = eventually(10, "a new web pod", || async {
        let now = pods_of(&client, "web").await;
        (now.len() == 2 && !names(&now).contains(&killed)).then_some(now)
    })
    .await;
    assert!(names(&replaced).contains(&names(&web_pods)[1]));

    // Scaling adds and deletes pods; a StatefulSet's highest ordinals go first.
    let scale = |replicas: i64| Patch::Merge(json!({"spec": {"replicas": replicas}}));
    deployments.patch("web", &PatchParams::default(), &scale(3)).await.unwrap();
    pods_when(&client, "web", 3).await;
    deployments.patch("web", &PatchParams::default(), &scale(0)).await.unwrap();
    pods_when(&client, "web", 0).await;
    sets.patch("db", &PatchParams::default(), &scale(1)).await.unwrap();
    assert_eq!(names(&pods_when(&client, "db", 1).await), ["db-0"]);

    // A changed template replaces the pods.
    let before = pods_of(&client, "db").await[0].metadata.uid.clone();
    let image = Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "postgres"}]}}}}));
    sets.patch("db", &PatchParams::default(), &image).await.unwrap();
    let updated = eventually(10, "the new template's pod", || async {
        let pod = pods.get_opt("db-0").await.unwrap()?;
        (pod.metadata.uid != before).then_some(pod)
    })
    .await;
    assert_eq!(updated.spec.unwrap().containers[0].image.as_deref(), Some("postgres"));

    // A backup leaves the controllers' pods out: restoring the workload makes them again.
    let backups = api(&client, "velero.io", "Backup", "backups", "velero");
    let backup = object("Backup", "velero.io", "b", json!({"spec": {"includedNamespaces": ["default"]}}));
    backups.create(&PostParams::default(), &backup).await.unwrap();
    status_when(&backups, "b", 10, |s| s["phase"] == "Completed").await;
    let list: Value = serde_json::from_slice(&requested(&client, "BackupResourceList", "b").await).unwrap();
    assert!(list.get("v1/Pod").is_none(), "{list}");
    assert!(
        list["apps/v1/StatefulSet"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("default/db"))),
        "{list}"
    );

    // Deleting the workload deletes its pods.
    sets.delete("db", &DeleteParams::default()).await.unwrap();
    pods_when(&client, "db", 0).await;
}

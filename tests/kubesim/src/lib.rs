//! kubesim: a simulated Kubernetes API server for lifeboat's tests. It speaks the real REST
//! protocol over loopback HTTP — discovery, OpenAPI v3 for `kubectl apply`, CRUD, merge,
//! JSON and apply patches, list and watch with resourceVersions, bookmarks and 410 Gone,
//! finalizers, namespace deletion that cascades, deletion propagated to dependents through
//! ownerReferences — and validates custom resources against the openAPIV3Schema of the real
//! CRD files in `crds/` (a 422 as a real server answers).
//!
//! Simulated controllers move objects as the real ones do: Deployments and StatefulSets roll
//! out and keep exactly `spec.replicas` Running pods, replacing any that are deleted
//! (`controllers.rs`, `pods.rs`); Services get cluster IPs and EndpointSlices listing the
//! pods they select (`endpointslices.rs`); Jobs really run their pod's first container as a local
//! process, with its log served at `pods/{name}/log` (`jobs.rs`); with Velero's CRDs, a
//! simulated Velero server runs Backups, Restores, Schedules, DownloadRequests and the
//! BackupStorageLocation sync against a [`velero::ObjectStorage`] that two clusters (primary
//! and DR) may share (`velero.rs`), leaving controllers' pods out of backups; with Chaos
//! Mesh's CRDs, a simulated Chaos Mesh runs PodChaos, NetworkChaos, IOChaos, TimeChaos,
//! HTTPChaos and StressChaos experiments on those pods: selection, records and conditions,
//! core/v1 Events, and the effects a test can see on pods (killed, restarted, unready)
//! ([`chaos_mesh`]); with LitmusChaos's CRDs, a simulated chaos-operator, runner and
//! experiments run ChaosEngines into ChaosResults, deleting or restarting the target pods and
//! really calling HTTP probes ([`litmus`]); with Argo CD's CRD, a simulated application
//! controller syncs Applications on request or automatically ([`argocd`]).
//!
//! Fault hooks ([`Cluster::compact`], [`Cluster::drop_watches`], [`Cluster::forbid`],
//! [`Cluster::fail_requests`], [`Cluster::velero`], [`Cluster::chaos_mesh`],
//! [`Cluster::litmus`], [`Cluster::argocd`]) and test hooks
//! ([`Cluster::run_schedule`], [`Cluster::backdate`]) stand in for what a test cannot wait
//! for on a real cluster. Tests drive it only through `kube::Client` (and the official
//! `kubectl`), so they run unchanged against a real cluster.

pub mod argocd;
pub mod chaos_mesh;
mod controllers;
mod discovery;
mod endpointslices;
mod http;
mod jobs;
pub mod litmus;
mod pods;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod store;
mod table;
pub mod velero;
mod watch;

use resources::Resource;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::Store;
use tokio::sync::broadcast;

/// A timestamp as the API server writes them (RFC 3339, whole seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Polls `state` every `poll` until it is no longer `live` or `at` has passed (never, when
/// `None`); returns the state then. Simulated controllers wait this way for a deadline
/// unless someone deletes or stops what they work on.
pub(crate) async fn poll_while<S: PartialEq>(
    state: impl Fn() -> S,
    live: &S,
    at: Option<tokio::time::Instant>,
    poll: std::time::Duration,
) -> S {
    loop {
        let now = state();
        if now != *live || at.is_some_and(|at| tokio::time::Instant::now() >= at) {
            return now;
        }
        let nap = at.map_or(poll, |at| at.saturating_duration_since(tokio::time::Instant::now()).min(poll));
        tokio::time::sleep(nap).await;
    }
}

/// A JSON string's text, or "" when it is not one.
pub(crate) fn text(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The simulated cluster: its resource types and objects.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    resources: Vec<Resource>,
    store: Mutex<Store>,
    /// Ends every open watch when sent to (a dropped connection, as a real client sees it).
    drop_watches: broadcast::Sender<()>,
    /// `(verb, plural)` the client's identity may not use: answered 403 as RBAC would.
    forbidden: Mutex<Vec<(String, String)>>,
    /// `(verb, plural, times)`: the next `times` such requests answer 500.
    failing: Mutex<Vec<(String, String, u32)>>,
    velero: Mutex<velero::VeleroBehaviour>,
    /// The bucket behind the BackupStorageLocations, maybe shared with other clusters.
    storage: velero::ObjectStorage,
    /// Where the API is served, once it is: DownloadRequests hand out URLs under it.
    url: Mutex<Option<String>>,
    /// The gzipped bodies of processed DownloadRequests, by the id in their URL.
    downloads: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// What each pod's container wrote, by `(namespace, pod)`, from its start on.
    pod_logs: Mutex<std::collections::HashMap<(String, String), jobs::Log>>,
    /// Tasks running pods' processes: aborted (their processes killed) when serving stops.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    chaos_mesh: Mutex<chaos_mesh::ChaosMeshBehaviour>,
    litmus: Mutex<litmus::LitmusBehaviour>,
    argocd: Mutex<argocd::ArgoBehaviour>,
    /// Held while a workload's pods are reconciled, so that two reconciles never both fill
    /// one shortfall.
    workloads: Mutex<()>,
}

/// Locks a mutex, carrying on after a panic elsewhere: the data is still usable for a test.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// The CRDs shipped with kubesim (copied unchanged from their projects; see crds/README.md).
    pub fn crds_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
    }

    /// A cluster with the built-in kinds, the CRDs under `crds` and the namespaces
    /// `default`, `kube-system` and, with Velero's CRDs, `velero` with the
    /// BackupStorageLocation `default` on a bucket of its own.
    pub fn new(crds: Option<&Path>) -> Result<Cluster, String> {
        Cluster::with_storage(crds, velero::ObjectStorage::new())
    }

    /// As [`Cluster::new`], with Velero's object storage given: clusters built on clones of
    /// one storage share its backups, as a primary and a DR cluster sharing a bucket do.
    pub fn with_storage(crds: Option<&Path>, storage: velero::ObjectStorage) -> Result<Cluster, String> {
        let mut resources = resources::builtins();
        if let Some(dir) = crds {
            resources.extend(resources::load_crds(dir)?);
        }
        let cluster = Cluster {
            inner: Arc::new(Inner {
                resources,
                store: Mutex::new(Store::default()),
                drop_watches: broadcast::channel(16).0,
                forbidden: Mutex::new(Vec::new()),
                failing: Mutex::new(Vec::new()),
                velero: Mutex::new(velero::VeleroBehaviour::default()),
                storage,
                url: Mutex::new(None),
                downloads: Mutex::new(Default::default()),
                pod_logs: Mutex::new(Default::default()),
                tasks: Mutex::new(Vec::new()),
                chaos_mesh: Mutex::new(chaos_mesh::ChaosMeshBehaviour::default()),
                litmus: Mutex::new(litmus::LitmusBehaviour::default()),
                argocd: Mutex::new(argocd::ArgoBehaviour::default()),
                workloads: Mutex::new(()),
            }),
        };
        // With Velero's CRDs, Velero is installed: its namespace exists.
        let velero = cluster.inner.resources.iter().any(|r| r.group == "velero.io");
        for ns in ["default", "kube-system", "velero"]
            .into_iter()
            .filter(|ns| velero || *ns != "velero")
        {
            let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            http::create_object(
                &cluster,
                &cluster.resource("", "namespaces").expect("built in"),
                "",
                object,
                "kubesim",
            )
            .map_err(|e| e.message)?;
        }
        if velero {
            velero::install(&cluster)?;
        }
        Ok(cluster)
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.inner.store)
    }

    pub(crate) fn resources(&self) -> &[Resource] {
        &self.inner.resources
    }

    pub(crate) fn resource(&self, group: &str, plural: &str) -> Option<Resource> {
        self.inner
            .resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .cloned()
    }

    /// Fault hook: forgets the change history, so a watch resuming from an older
    /// resourceVersion gets 410 Gone and must list again.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Fault hook: ends every open watch stream, as a dropped connection would.
    pub fn drop_watches(&self) {
        let _ = self.inner.drop_watches.send(());
    }

    /// Fault hook: the client's identity may not `verb` (`get`, `list`, `watch`, `create`,
    /// `update`, `patch`, `delete`) the resource `plural`; answered 403 as RBAC would.
    pub fn forbid(&self, verb: &str, plural: &str) {
        self.inner
            .forbidden
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((verb.into(), plural.into()));
    }

    /// Fault hooks of the simulated Velero: slow phases, a backup stuck InProgress,
    /// PartiallyFailed backups.
    pub fn velero(&self, behaviour: velero::VeleroBehaviour) {
        *self.inner.velero.lock().unwrap_or_else(|p| p.into_inner()) = behaviour;
    }

    pub(crate) fn velero_behaviour(&self) -> velero::VeleroBehaviour {
        self.inner.velero.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fault hooks of the simulated Chaos Mesh: slow or stuck injection, a finalizer that is
    /// never removed. Experiments read it at each step, so a change applies to running ones.
    pub fn chaos_mesh(&self, behaviour: chaos_mesh::ChaosMeshBehaviour) {
        *lock(&self.inner.chaos_mesh) = behaviour;
    }

    pub(crate) fn chaos_mesh_behaviour(&self) -> chaos_mesh::ChaosMeshBehaviour {
        lock(&self.inner.chaos_mesh).clone()
    }

    /// Fault hooks of the simulated LitmusChaos: how long chaos lasts, a ChaosResult that
    /// contradicts its engine, a result that never leaves Awaited. Runs read it at each step,
    /// so a change applies to running ones.
    pub fn litmus(&self, behaviour: litmus::LitmusBehaviour) {
        *lock(&self.inner.litmus) = behaviour;
    }

    pub(crate) fn litmus_behaviour(&self) -> litmus::LitmusBehaviour {
        lock(&self.inner.litmus).clone()
    }

    /// Fault hooks of the simulated Argo CD: how long a sync takes, syncs that fail, and
    /// Applications that never settle. Read when each sync ends.
    pub fn argocd(&self, behaviour: argocd::ArgoBehaviour) {
        *lock(&self.inner.argocd) = behaviour;
    }

    pub(crate) fn argocd_behaviour(&self) -> argocd::ArgoBehaviour {
        lock(&self.inner.argocd).clone()
    }

    /// The object storage of this cluster's BackupStorageLocations.
    pub fn velero_storage(&self) -> velero::ObjectStorage {
        self.inner.storage.clone()
    }

    /// Fault hook: the next `times` requests that `verb` (`get`, `list`, `watch`, `create`,
    /// `update`, `patch`, `delete`) the resource `plural` answer 500 InternalError.
    pub fn fail_requests(&self, verb: &str, plural: &str, times: u32) {
        lock(&self.inner.failing).push((verb.into(), plural.into(), times));
    }

    /// Whether this request is one of those [`Cluster::fail_requests`] asked to fail (and
    /// counts it).
    pub(crate) fn take_failure(&self, verb: &str, plural: &str) -> bool {
        let mut failing = lock(&self.inner.failing);
        let Some(entry) = failing.iter_mut().find(|(v, p, n)| v == verb && p == plural && *n > 0) else {
            return false;
        };
        entry.2 -= 1;
        failing.retain(|(_, _, n)| *n > 0);
        true
    }

    /// Test hook: what Velero does when the cron of Schedule `namespace/name` fires (kubesim
    /// runs no cron): creates the Backup `<name>-<YYYYMMDDhhmmss>` from the schedule's
    /// template, labelled `velero.io/schedule-name`, and sets the schedule's
    /// `status.lastBackup`. Returns the backup's name; nothing is created when the schedule
    /// does not exist.
    pub fn run_schedule(&self, namespace: &str, name: &str) -> String {
        velero::run_schedule(self, namespace, name)
    }

    /// Test hook: merges `status_patch` into the status of an object (a JSON merge patch, as
    /// a controller's status update), e.g. to make a backup's `completionTimestamp` old.
    /// Watchers see the change; a missing object is reported on stderr and left alone.
    pub fn backdate(&self, group: &str, plural: &str, namespace: &str, name: &str, status_patch: serde_json::Value) {
        let Some(resource) = self.resource(group, plural) else {
            eprintln!("kubesim: backdate: no resource {plural}.{group}");
            return;
        };
        let key = (group.to_owned(), plural.to_owned(), namespace.to_owned(), name.to_owned());
        let Some(mut object) = self.store().get(&key).cloned() else {
            eprintln!("kubesim: backdate: no {plural}.{group} {namespace}/{name}");
            return;
        };
        if !object["status"].is_object() {
            object["status"] = serde_json::json!({});
        }
        json_patch::merge(&mut object["status"], &status_patch);
        if let Err(e) = http::update_status(self, &resource, namespace, name, object) {
            eprintln!("kubesim: backdate: {}", e.message);
        }
    }

    pub(crate) fn server_url(&self) -> Option<String> {
        lock(&self.inner.url).clone()
    }

    /// Runs `task` until it ends or serving stops, whichever is first.
    pub(crate) fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = lock(&self.inner.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }

    pub(crate) fn forbidden(&self, verb: &str, plural: &str) -> bool {
        self.inner
            .forbidden
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(v, p)| v == verb && p == plural)
    }

    /// Serves the API on a free loopback port, with the simulated controllers running,
    /// until the returned handle is dropped.
    pub async fn serve(&self) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        *lock(&self.inner.url) = Some(url.clone());
        let app = http::router(self.clone());
        let controllers = controllers::start(self);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Running {
            url,
            task,
            controllers,
            cluster: self.clone(),
        })
    }
}

/// A serving cluster; stops when dropped.
pub struct Running {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
    cluster: Cluster,
}

impl Running {
    /// A kubeconfig with one context, `kubesim`, pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {}\nusers:\n- name: tester\n  user:\n    token: kubesim-token\n\
             contexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: tester\n    namespace: default\ncurrent-context: kubesim\n",
            self.url
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.controllers.abort();
        // Aborting a pod's task drops its process handle, which kills the process.
        for task in lock(&self.cluster.inner.tasks).drain(..) {
            task.abort();
        }
    }
}

//! kubesim: a simulated Kubernetes API server for lifeboat's tests. It speaks the real REST
//! protocol over loopback HTTP — discovery, OpenAPI v3 for `kubectl apply`, CRUD, merge,
//! JSON and apply patches, list and watch with resourceVersions, bookmarks and 410 Gone,
//! finalizers, namespace deletion that cascades — and validates custom resources against
//! the openAPIV3Schema of the real CRD files in `crds/` (a 422 as a real server answers).
//! Tests drive it only through `kube::Client` (and the official `kubectl`), so they run
//! unchanged against a real cluster.

mod controllers;
mod discovery;
mod http;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod store;
pub mod velero;
mod watch;

use resources::Resource;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::Store;
use tokio::sync::broadcast;

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
    velero: Mutex<velero::VeleroBehaviour>,
    /// What each simulated Velero backup took, by backup name (its object storage).
    velero_backups: Mutex<std::collections::HashMap<String, Vec<serde_json::Value>>>,
}

impl Cluster {
    /// The CRDs shipped with kubesim (copied unchanged from their projects; see crds/README.md).
    pub fn crds_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
    }

    /// A cluster with the built-in kinds, the CRDs under `crds` and the namespaces
    /// `default`, `kube-system` and, with Velero's CRDs, `velero`.
    pub fn new(crds: Option<&Path>) -> Result<Cluster, String> {
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
                velero: Mutex::new(velero::VeleroBehaviour::default()),
                velero_backups: Mutex::new(Default::default()),
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
        Ok(cluster)
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
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

    pub(crate) fn keep_backup(&self, name: &str, items: Vec<serde_json::Value>) {
        self.inner
            .velero_backups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), items);
    }

    pub(crate) fn kept_backup(&self, name: &str) -> Option<Vec<serde_json::Value>> {
        self.inner
            .velero_backups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
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
        let app = http::router(self.clone());
        let controllers = controllers::start(self);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Running { url, task, controllers })
    }
}

/// A serving cluster; stops when dropped.
pub struct Running {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
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
    }
}

//! A simulated Argo CD application controller for Applications (`argoproj.io/v1alpha1`, in
//! any namespace). The Application has no status subresource: its status is written
//! through the main resource, as Argo CD does.
//!
//! - A new Application without a status gets `sync: {status: OutOfSync, revision: "",
//!   comparedTo}` and `health: {status: Missing}`: nothing is deployed until a sync.
//! - A sync is asked for by setting the top-level `operation` (`initiatedBy`, `sync:
//!   {revision, prune, syncStrategy, …}`), as `argocd app sync` does. The controller writes
//!   `status.operationState` (`operation`, `phase: Running`, `startedAt`) at once, and after
//!   [`ArgoBehaviour::sync_time`] ends it: `phase: Succeeded`, `message: successfully
//!   synced (all tasks run)`, `finishedAt`, `syncResult: {revision, source, resources}`;
//!   `sync: {status: Synced, revision, comparedTo}`, `health: {status: Healthy}`,
//!   `resources`, a `history` entry (`id`, `revision`, `deployStartedAt`, `deployedAt`,
//!   `source`, `initiatedBy`; at most `spec.revisionHistoryLimit`, default 10) and
//!   `reconciledAt`; and `operation` is removed, all in one update.
//! - The revision is the operation's `sync.revision`, else the source's `targetRevision`,
//!   else `HEAD`. A 40-hex commit sha is kept; a branch, tag or `HEAD` becomes a 40-hex sha
//!   derived from `repoURL` and the name ([`resolve_revision`]), the same each time, as a
//!   repository that does not move would answer; a Helm chart's version is kept as it is.
//! - kubesim cannot read Git, so what a sync deploys is declared on the Application: the
//!   annotation [`RESOURCES_ANNOTATION`] holds a JSON list of `{group, version, kind,
//!   namespace, name}`; without it the sync deploys nothing (`resources` empty). Nothing is
//!   applied to the cluster: the listed objects are only reported.
//! - With `spec.syncPolicy.automated` (and not `enabled: false`), the controller sets the
//!   `operation` itself (`initiatedBy: {automated: true}`, the resolved revision, `prune` from
//!   the policy) whenever the revision or source it would sync differs from the last
//!   sync attempted: on creation and on every `targetRevision` change. A failed attempt is
//!   not retried for the same revision, as Argo CD skips it.
//! - A Synced Application whose source or target revision changes (or that was synced to
//!   another revision than its target) is marked `OutOfSync`, as Argo CD's refresh finds it.
//! - Deleting an Application with the finalizer `resources-finalizer.argocd.argoproj.io`
//!   deletes the objects its `status.resources` lists that kubesim serves, then removes the
//!   finalizer.
//!
//! Not simulated: Git and rendering, projects, hooks and sync waves, retries, self-heal,
//! refresh annotations, multiple sources (the first is used), Events.
//!
//! Fault hooks ([`crate::Cluster::argocd`]): a sync that fails, and one that succeeds but
//! leaves the Application `OutOfSync` and `Progressing`.

use crate::resources::Resource;
use crate::store::Change;
use crate::{Cluster, http};
use crate::{now, text};
use serde_json::{Value, json};
use std::time::Duration;

const GROUP: &str = "argoproj.io";

/// The annotation listing, as JSON, what a sync of the Application deploys: kubesim's
/// stand-in for the manifests Argo CD would render from Git.
pub const RESOURCES_ANNOTATION: &str = "kubesim.lifeboat.dev/resources";

/// Argo CD's cascading-deletion finalizers (foreground, background).
const FINALIZERS: [&str; 2] = [
    "resources-finalizer.argocd.argoproj.io",
    "resources-finalizer.argocd.argoproj.io/background",
];

/// How the simulated Argo CD behaves; change it with [`crate::Cluster::argocd`].
#[derive(Debug, Clone)]
pub struct ArgoBehaviour {
    /// How long a sync operation runs.
    pub sync_time: Duration,
    /// Syncs succeed, but the Application stays `OutOfSync` and `Progressing`: it never
    /// settles.
    pub stays_out_of_sync: bool,
    /// Syncs end `Failed` with this message (e.g. `one or more objects failed to apply`).
    pub sync_fails: Option<String>,
}

impl Default for ArgoBehaviour {
    fn default() -> Self {
        ArgoBehaviour {
            sync_time: Duration::from_millis(300),
            stays_out_of_sync: false,
            sync_fails: None,
        }
    }
}

/// Moves an Application one step: initial status, auto-sync, start of a sync, deletion.
/// Each step is one write, whose change brings the next step here.
pub(crate) fn on_change(cluster: &Cluster, change: &Change) {
    if change.group != GROUP || change.plural != "applications" || change.kind == "DELETED" {
        return;
    }
    let Some(resource) = cluster.resource(GROUP, "applications") else {
        return;
    };
    let namespace = change.namespace.as_str();
    let name = text(&change.object["metadata"]["name"]).to_owned();
    // Decided on the Application as stored now: a change still queued may be stale.
    let key = (GROUP.to_owned(), "applications".to_owned(), namespace.to_owned(), name.clone());
    let Some(app) = cluster.store().get(&key).cloned() else {
        return;
    };
    let uid = text(&app["metadata"]["uid"]).to_owned();
    if !app["metadata"]["deletionTimestamp"].is_null() {
        delete_resources(cluster, &resource, namespace, &name, &app);
        return;
    }
    let status = &app["status"];
    if status["sync"].is_null() && status["operationState"].is_null() {
        let compared_to = compared_to(&app);
        modify(cluster, &resource, namespace, &name, &uid, |o| {
            if !o["status"].is_object() {
                o["status"] = json!({});
            }
            o["status"]["sync"] = json!({"status": "OutOfSync", "revision": "", "comparedTo": compared_to});
            o["status"]["health"] = json!({"status": "Missing"});
            o["status"]["reconciledAt"] = now().into();
        });
        return;
    }
    if app["operation"].is_object() {
        // An Application created mid-sync (restored) has its sync run again.
        let running = status["operationState"]["phase"] == "Running";
        if !running || change.kind == "ADDED" {
            start_sync(cluster, resource, namespace, &name, &uid, &app);
        }
        return;
    }
    if let Some(operation) = auto_sync(&app) {
        modify(cluster, &resource, namespace, &name, &uid, |o| {
            if o["operation"].is_null() {
                o["operation"] = operation.clone();
            }
        });
        return;
    }
    if drifted(&app) {
        let compared_to = compared_to(&app);
        modify(cluster, &resource, namespace, &name, &uid, |o| {
            o["status"]["sync"]["status"] = "OutOfSync".into();
            o["status"]["sync"]["comparedTo"] = compared_to.clone();
            o["status"]["reconciledAt"] = now().into();
        });
    }
}

/// Whether a Synced Application no longer matches what it should deploy (another source or
/// target revision), as Argo CD's refresh finds: it is then OutOfSync.
fn drifted(app: &Value) -> bool {
    let sync = &app["status"]["sync"];
    if sync["status"] != "Synced" {
        return false;
    }
    let source = source_of(app, &Value::Null);
    let target = resolve_revision(&source, text(&source["targetRevision"]));
    sync["comparedTo"] != compared_to(app) || sync["revision"] != target.as_str()
}

/// A read-modify-write retried on conflicts; false when the Application (with this uid) is
/// gone or cannot be written.
fn modify(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str, uid: &str, change: impl Fn(&mut Value)) -> bool {
    let key = (GROUP.to_owned(), "applications".to_owned(), namespace.to_owned(), name.to_owned());
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
                eprintln!("kubesim: argocd: Application {namespace}/{name}: {}", e.message);
                return false;
            }
        }
    }
    false
}

/// What the Application is compared with: its destination and source(s).
fn compared_to(app: &Value) -> Value {
    let spec = &app["spec"];
    let mut compared = json!({"destination": spec["destination"]});
    if spec["source"].is_object() {
        compared["source"] = spec["source"].clone();
    } else if spec["sources"].is_array() {
        compared["sources"] = spec["sources"].clone();
    }
    compared
}

/// The source a sync deploys: the operation's, else the Application's (the first of
/// several: kubesim does not merge multiple sources).
fn source_of(app: &Value, operation: &Value) -> Value {
    let candidates = [&operation["sync"]["source"], &app["spec"]["source"], &app["spec"]["sources"][0]];
    candidates
        .into_iter()
        .find(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"repoURL": ""}))
}

/// The commit a sync of `source` to `revision` deploys: a 40-hex sha stays as it is, a Helm
/// chart's version too; a branch, tag or `HEAD` becomes a sha derived from the repository
/// and the name, the same every time.
pub fn resolve_revision(source: &Value, revision: &str) -> String {
    let revision = if revision.is_empty() { "HEAD" } else { revision };
    let is_sha = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha {
        return revision.to_ascii_lowercase();
    }
    if source["chart"].as_str().is_some_and(|c| !c.is_empty()) {
        return revision.to_owned();
    }
    let repo = text(&source["repoURL"]);
    (0u8..5)
        .map(|part| {
            // FNV-1a, salted per part: stable across runs and Rust versions, unlike std's hasher.
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in [part].iter().chain(repo.as_bytes()).chain(&[0]).chain(revision.as_bytes()) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{:08x}", (hash ^ (hash >> 32)) as u32)
        })
        .collect()
}

/// The operation the automated sync policy asks for, if one is due.
fn auto_sync(app: &Value) -> Option<Value> {
    let policy = &app["spec"]["syncPolicy"];
    let automated = &policy["automated"];
    if !automated.is_object() || automated["enabled"] == false {
        return None;
    }
    let state = &app["status"]["operationState"];
    if state["phase"] == "Running" {
        return None;
    }
    let source = source_of(app, &Value::Null);
    let revision = resolve_revision(&source, text(&source["targetRevision"]));
    let last = &state["syncResult"];
    // Argo CD skips a revision it already tried, whether that sync succeeded or failed.
    if last["revision"] == revision.as_str() && last["source"] == source {
        return None;
    }
    let mut sync = json!({"revision": revision, "prune": automated["prune"] == true});
    if policy["syncOptions"].is_array() {
        sync["syncOptions"] = policy["syncOptions"].clone();
    }
    let mut operation = json!({"initiatedBy": {"automated": true}, "sync": sync});
    if policy["retry"].is_object() {
        operation["retry"] = policy["retry"].clone();
    }
    Some(operation)
}

/// The objects a sync of `app` deploys, from [`RESOURCES_ANNOTATION`].
fn declared_resources(app: &Value) -> Vec<Value> {
    let Some(list) = app["metadata"]["annotations"][RESOURCES_ANNOTATION].as_str() else {
        return Vec::new();
    };
    match serde_json::from_str::<Value>(list) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter(|i| i["kind"].is_string() && i["name"].is_string())
            .map(|i| {
                json!({"group": text(&i["group"]), "version": i["version"].as_str().unwrap_or("v1"),
                       "kind": i["kind"], "namespace": text(&i["namespace"]), "name": i["name"]})
            })
            .collect(),
        _ => {
            eprintln!("kubesim: argocd: {RESOURCES_ANNOTATION} is not a JSON list; the sync deploys nothing");
            Vec::new()
        }
    }
}

/// `deployment.apps/web`, `service/web`: how kubectl (and Argo CD's messages) name an object.
fn kubectl_name(resource: &Value) -> String {
    let kind = text(&resource["kind"]).to_ascii_lowercase();
    match text(&resource["group"]) {
        "" => format!("{kind}/{}", text(&resource["name"])),
        group => format!("{kind}.{group}/{}", text(&resource["name"])),
    }
}

/// Claims the operation (`phase: Running`) and runs it in the background.
fn start_sync(cluster: &Cluster, resource: Resource, namespace: &str, name: &str, uid: &str, app: &Value) {
    let operation = app["operation"].clone();
    let started = now();
    let mut state = json!({"operation": operation, "phase": "Running", "startedAt": started});
    if let Some(first) = declared_resources(app).first() {
        state["message"] = format!(
            "waiting for healthy state of {}/{}/{}",
            text(&first["group"]),
            text(&first["kind"]),
            text(&first["name"])
        )
        .into();
    }
    let claimed = modify(cluster, &resource, namespace, name, uid, |o| {
        if !o["status"].is_object() {
            o["status"] = json!({});
        }
        o["status"]["operationState"] = state.clone();
    });
    if !claimed {
        return;
    }
    let sync = Sync {
        cluster: cluster.clone(),
        resource,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        operation,
        started,
    };
    cluster.track(tokio::spawn(sync.run()));
}

/// One sync operation in flight.
struct Sync {
    cluster: Cluster,
    resource: Resource,
    namespace: String,
    name: String,
    uid: String,
    operation: Value,
    started: String,
}

impl Sync {
    async fn run(self) {
        tokio::time::sleep(self.cluster.argocd_behaviour().sync_time).await;
        let behaviour = self.cluster.argocd_behaviour();
        modify(&self.cluster, &self.resource, &self.namespace, &self.name, &self.uid, |app| {
            self.finish(app, &behaviour);
        });
    }

    /// The Application once the sync is over, as `behaviour` has it end.
    fn finish(&self, app: &mut Value, behaviour: &ArgoBehaviour) {
        let source = source_of(app, &self.operation);
        let requested = self.operation["sync"]["revision"]
            .as_str()
            .filter(|r| !r.is_empty())
            .or_else(|| source["targetRevision"].as_str())
            .unwrap_or("HEAD")
            .to_owned();
        let revision = resolve_revision(&source, &requested);
        let declared = declared_resources(app);
        let deployed_before: Vec<String> = app["status"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(kubectl_name)
            .collect();
        let finished = now();
        let failure = behaviour.sync_fails.clone();
        let results: Vec<Value> = declared
            .iter()
            .map(|r| {
                let mut result = r.clone();
                let object = kubectl_name(r);
                match &failure {
                    Some(message) => {
                        result["status"] = "SyncFailed".into();
                        result["message"] = message.clone().into();
                        result["hookPhase"] = "Failed".into();
                    }
                    None => {
                        let verb = if deployed_before.contains(&object) {
                            "configured"
                        } else {
                            "created"
                        };
                        result["status"] = "Synced".into();
                        result["message"] = format!("{object} {verb}").into();
                        result["hookPhase"] = "Running".into();
                    }
                }
                result["syncPhase"] = "Sync".into();
                result
            })
            .collect();
        let mut state = json!({
            "operation": self.operation, "startedAt": self.started, "finishedAt": finished,
            "syncResult": {"revision": revision, "source": source, "resources": results},
        });
        if let Some(object) = app.as_object_mut() {
            object.remove("operation");
        }
        if !app["status"].is_object() {
            app["status"] = json!({});
        }
        let compared_to = compared_to(app);
        let status = &mut app["status"];
        status["reconciledAt"] = finished.clone().into();
        if let Some(message) = failure {
            state["phase"] = "Failed".into();
            state["message"] = message.into();
            status["operationState"] = state;
            status["sync"] = json!({"status": "OutOfSync", "revision": revision, "comparedTo": compared_to});
            if status["health"].is_null() {
                status["health"] = json!({"status": "Missing"});
            }
            return;
        }
        state["phase"] = "Succeeded".into();
        state["message"] = "successfully synced (all tasks run)".into();
        status["operationState"] = state;
        let (sync_status, health) = if behaviour.stays_out_of_sync {
            ("OutOfSync", "Progressing")
        } else {
            ("Synced", "Healthy")
        };
        status["sync"] = json!({"status": sync_status, "revision": revision, "comparedTo": compared_to});
        status["health"] = json!({"status": health});
        status["resources"] = declared
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["status"] = sync_status.into();
                r["health"] = json!({"status": health});
                r
            })
            .collect::<Vec<_>>()
            .into();
        let mut history = status["history"].as_array().cloned().unwrap_or_default();
        let id = history.last().and_then(|h| h["id"].as_i64()).map_or(0, |id| id + 1);
        let mut entry = json!({"id": id, "revision": revision, "deployStartedAt": self.started,
                               "deployedAt": finished, "source": source});
        if self.operation["initiatedBy"].is_object() {
            entry["initiatedBy"] = self.operation["initiatedBy"].clone();
        }
        history.push(entry);
        let limit = app["spec"]["revisionHistoryLimit"].as_u64().unwrap_or(10);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let excess = history.len().saturating_sub(limit);
        history.drain(..excess);
        app["status"]["history"] = history.into();
    }
}

/// Argo CD's cascading deletion: the objects the Application deployed go, then its finalizer.
fn delete_resources(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str, app: &Value) {
    let finalizers: Vec<&str> = app["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !finalizers.iter().any(|f| FINALIZERS.contains(f)) {
        return;
    }
    for deployed in app["status"]["resources"].as_array().into_iter().flatten() {
        let (group, kind) = (text(&deployed["group"]), text(&deployed["kind"]));
        let served = cluster.resources().iter().find(|r| r.group == group && r.kind == kind).cloned();
        let Some(served) = served else { continue };
        let object_namespace = if served.namespaced { text(&deployed["namespace"]) } else { "" };
        match http::delete_object(cluster, &served, object_namespace, text(&deployed["name"])) {
            Ok(_) | Err(http::ApiError { code: 404, .. }) => {}
            Err(e) => eprintln!("kubesim: argocd: deleting {}: {}", kubectl_name(deployed), e.message),
        }
    }
    modify(cluster, resource, namespace, name, "", |o| {
        if let Some(finalizers) = o["metadata"]["finalizers"].as_array_mut() {
            finalizers.retain(|f| !f.as_str().is_some_and(|f| FINALIZERS.contains(&f)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_resolve_to_stable_shas() {
        let source = json!({"repoURL": "https://git.example/app.git"});
        let head = resolve_revision(&source, "HEAD");
        assert_eq!(head.len(), 40);
        assert!(head.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");
        assert_eq!(head, resolve_revision(&source, ""));
        assert_eq!(head, resolve_revision(&source, "HEAD"));
        assert_ne!(head, resolve_revision(&source, "main"));
        assert_ne!(head, resolve_revision(&json!({"repoURL": "https://git.example/other.git"}), "HEAD"));
        let sha = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(resolve_revision(&source, sha), sha.to_ascii_lowercase());
        assert_eq!(
            resolve_revision(&json!({"repoURL": "https://charts", "chart": "web"}), "1.2.3"),
            "1.2.3"
        );
    }

    #[test]
    fn automated_syncs_once_per_revision() {
        let mut app = json!({"spec": {"source": {"repoURL": "r", "targetRevision": "main"},
                                      "syncPolicy": {"automated": {"prune": true}}}});
        let operation = auto_sync(&app).unwrap();
        assert_eq!(operation["initiatedBy"]["automated"], true);
        assert_eq!(operation["sync"]["prune"], true);
        let revision = operation["sync"]["revision"].clone();
        app["status"] = json!({"operationState": {"phase": "Succeeded",
            "syncResult": {"revision": revision, "source": {"repoURL": "r", "targetRevision": "main"}}}});
        assert!(auto_sync(&app).is_none());
        app["spec"]["source"]["targetRevision"] = "v2".into();
        assert!(auto_sync(&app).is_some());
        app["spec"]["syncPolicy"]["automated"]["enabled"] = false.into();
        assert!(auto_sync(&app).is_none());
    }
}

//! kubesim's simulated Argo CD through `kube::Client`: Applications start OutOfSync and
//! Missing, a sync operation (as `argocd app sync` sets it) ends Succeeded, Synced and
//! Healthy with its revision, history and resources, auto-sync follows `targetRevision`,
//! and the fault hooks (a failing sync, an Application that never settles). Every object
//! read back is checked against the real CRD's schema.

mod common;

use common::{eventually, start as serve};

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kubesim::argocd::{ArgoBehaviour, RESOURCES_ANNOTATION, resolve_revision};
use serde_json::{Value, json};
use std::time::Duration;

const REPO: &str = "https://git.example.com/shop/deploy.git";

/// A served cluster with Argo CD's namespace.
async fn start() -> (kubesim::Cluster, kubesim::Running, Client) {
    let (cluster, running, client) = serve().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let argocd = serde_json::from_value(json!({"metadata": {"name": "argocd"}})).unwrap();
    namespaces.create(&PostParams::default(), &argocd).await.unwrap();
    (cluster, running, client)
}

fn ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"), "applications")
}

fn apps(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "argocd", &ar())
}

fn assert_valid(object: &DynamicObject) {
    static CRDS: std::sync::OnceLock<Vec<kubesim::resources::Resource>> = std::sync::OnceLock::new();
    let crds = CRDS.get_or_init(|| kubesim::resources::load_crds(&kubesim::Cluster::crds_dir()).unwrap());
    let crd = crds.iter().find(|r| r.plural == "applications").unwrap();
    let mut value = serde_json::to_value(object).unwrap();
    let outcome = kubesim::schema::validate(&mut value, crd.schema.as_ref().unwrap());
    assert!(outcome.causes.is_empty(), "{:?}", outcome.causes);
    assert!(outcome.unknown.is_empty(), "pruned {:?}", outcome.unknown);
}

/// Creates the Application `name` deploying `shop/` at `revision`, declaring a Deployment
/// and a Service, with `sync_policy`.
async fn create_app(client: &Client, name: &str, revision: &str, sync_policy: Value) {
    let resources = json!([
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
        {"group": "", "version": "v1", "kind": "Service", "namespace": "shop", "name": "web"},
    ]);
    let mut app = DynamicObject::new(name, &ar()).data(json!({"spec": {
        "project": "default",
        "source": {"repoURL": REPO, "path": "shop", "targetRevision": revision},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
        "syncPolicy": sync_policy,
    }}));
    app.metadata.annotations = Some([(RESOURCES_ANNOTATION.to_owned(), resources.to_string())].into());
    apps(client).create(&PostParams::default(), &app).await.unwrap();
}

/// What `argocd app sync --revision <revision>` asks for.
async fn request_sync(client: &Client, name: &str, revision: &str) {
    let operation = json!({"operation": {"initiatedBy": {"username": "admin"},
                                         "sync": {"revision": revision, "prune": true, "syncStrategy": {"hook": {}}}}});
    apps(client)
        .patch(name, &PatchParams::default(), &Patch::Merge(operation))
        .await
        .unwrap();
}

async fn app_when(client: &Client, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> DynamicObject {
    eventually(10, what, || async {
        let app = apps(client).get_opt(name).await.unwrap()?;
        done(&app.data).then_some(app)
    })
    .await
}

fn phase(app: &Value) -> &str {
    app["status"]["operationState"]["phase"].as_str().unwrap_or("none")
}

fn summary(app: &Value) -> [&str; 3] {
    fn s(v: &Value) -> &str {
        v.as_str().unwrap_or("missing")
    }
    [
        phase(app),
        s(&app["status"]["sync"]["status"]),
        s(&app["status"]["health"]["status"]),
    ]
}

fn history(app: &Value) -> Vec<Value> {
    app["status"]["history"].as_array().cloned().unwrap_or_default()
}

fn revision_of(branch: &str) -> String {
    resolve_revision(&json!({"repoURL": REPO}), branch)
}

#[tokio::test]
async fn a_sync_operation_ends_synced_and_healthy() {
    let (cluster, _running, client) = start().await;
    cluster.argocd(ArgoBehaviour {
        sync_time: Duration::from_millis(800),
        ..ArgoBehaviour::default()
    });
    create_app(&client, "shop", "main", json!({})).await;
    let app = app_when(&client, "shop", "the first status", |a| a["status"]["sync"].is_object()).await;
    assert_valid(&app);
    assert_eq!(summary(&app.data), ["none", "OutOfSync", "Missing"]);
    assert_eq!(app.data["status"]["sync"]["revision"], "");

    request_sync(&client, "shop", "main").await;
    let app = app_when(&client, "shop", "the sync to run", |a| phase(a) == "Running").await;
    assert_valid(&app);
    let state = &app.data["status"]["operationState"];
    assert_eq!(state["operation"]["initiatedBy"]["username"], "admin");
    assert!(state["startedAt"].is_string() && state["finishedAt"].is_null());

    let app = app_when(&client, "shop", "the sync to end", |a| phase(a) == "Succeeded").await;
    assert_valid(&app);
    let sha = revision_of("main");
    assert_eq!(sha.len(), 40);
    let data = &app.data;
    assert!(data.get("operation").is_none_or(Value::is_null), "operation cleared: {data}");
    assert_eq!(summary(data), ["Succeeded", "Synced", "Healthy"]);
    let status = &data["status"];
    assert_eq!(status["sync"]["revision"], sha.as_str());
    assert_eq!(status["sync"]["comparedTo"]["source"]["targetRevision"], "main");
    let state = &status["operationState"];
    assert_eq!(state["message"], "successfully synced (all tasks run)");
    assert!(state["finishedAt"].is_string());
    assert_eq!(state["syncResult"]["revision"], sha.as_str());
    assert_eq!(state["syncResult"]["source"]["repoURL"], REPO);
    let synced = state["syncResult"]["resources"].as_array().unwrap();
    assert_eq!(synced.len(), 2);
    assert_eq!(
        [&synced[0]["status"], &synced[0]["message"]],
        ["Synced", "deployment.apps/web created"]
    );
    assert_eq!(synced[1]["message"], "service/web created");
    let resources = status["resources"].as_array().unwrap();
    assert_eq!(
        [&resources[0]["kind"], &resources[0]["health"]["status"]],
        ["Deployment", "Healthy"]
    );
    let entries = history(data);
    assert_eq!(entries.len(), 1);
    assert_eq!([&entries[0]["id"], &entries[0]["revision"]], [&json!(0), &json!(sha)]);
    assert!(status["reconciledAt"].is_string());

    // A sync to a commit other than the target: deployed, then OutOfSync with its target.
    let pinned = "0123456789abcdef0123456789abcdef01234567";
    request_sync(&client, "shop", pinned).await;
    let app = app_when(&client, "shop", "the pinned sync", |a| history(a).len() == 2).await;
    assert_eq!(history(&app.data)[1]["revision"], pinned);
    assert_eq!(history(&app.data)[1]["id"], 1);
    let synced = &app.data["status"]["operationState"]["syncResult"]["resources"];
    assert_eq!(synced[0]["message"], "deployment.apps/web configured");
    let app = app_when(&client, "shop", "OutOfSync", |a| a["status"]["sync"]["status"] == "OutOfSync").await;
    assert_valid(&app);
    assert_eq!(app.data["status"]["sync"]["revision"], pinned);
}

#[tokio::test]
async fn auto_sync_follows_the_target_revision() {
    let (_cluster, _running, client) = start().await;
    create_app(&client, "auto", "main", json!({"automated": {"prune": true, "selfHeal": true}})).await;
    let app = app_when(&client, "auto", "the automated sync", |a| phase(a) == "Succeeded").await;
    assert_valid(&app);
    assert_eq!(summary(&app.data), ["Succeeded", "Synced", "Healthy"]);
    let state = &app.data["status"]["operationState"];
    assert_eq!(state["operation"]["initiatedBy"]["automated"], true);
    assert_eq!(state["operation"]["sync"]["prune"], true);
    assert_eq!(app.data["status"]["sync"]["revision"], revision_of("main").as_str());

    apps(&client)
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"source": {"targetRevision": "v2"}}})),
        )
        .await
        .unwrap();
    let app = app_when(&client, "auto", "the sync of v2", |a| {
        a["status"]["sync"]["revision"] == revision_of("v2").as_str() && a["status"]["sync"]["status"] == "Synced"
    })
    .await;
    assert_valid(&app);
    assert_eq!(history(&app.data).len(), 2);
    assert_eq!(history(&app.data)[1]["initiatedBy"]["automated"], true);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        history(&apps(&client).get("auto").await.unwrap().data).len(),
        2,
        "one sync per revision"
    );

    // Without automated, a new target only makes it OutOfSync.
    apps(&client)
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"syncPolicy": {"automated": null}}})),
        )
        .await
        .unwrap();
    apps(&client)
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"source": {"targetRevision": "v3"}}})),
        )
        .await
        .unwrap();
    let app = app_when(&client, "auto", "OutOfSync", |a| a["status"]["sync"]["status"] == "OutOfSync").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let app_now = apps(&client).get("auto").await.unwrap();
    assert_eq!(history(&app_now.data).len(), 2, "no sync without automated");
    assert_eq!(app.data["status"]["sync"]["revision"], revision_of("v2").as_str());
}

#[tokio::test]
async fn a_failing_sync_is_failed_and_not_retried() {
    let (cluster, _running, client) = start().await;
    let message = "one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid";
    cluster.argocd(ArgoBehaviour {
        sync_fails: Some(message.into()),
        sync_time: Duration::from_millis(100),
        ..ArgoBehaviour::default()
    });
    create_app(&client, "broken", "main", json!({"automated": {}})).await;
    let app = app_when(&client, "broken", "the failed sync", |a| phase(a) == "Failed").await;
    assert_valid(&app);
    let data = &app.data;
    assert_eq!(summary(data), ["Failed", "OutOfSync", "Missing"]);
    assert_eq!(data["status"]["operationState"]["message"], message);
    assert!(data.get("operation").is_none_or(Value::is_null));
    assert!(history(data).is_empty());
    let synced = &data["status"]["operationState"]["syncResult"]["resources"];
    assert_eq!(synced[0]["status"], "SyncFailed");
    let started = data["status"]["operationState"]["startedAt"].clone();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = apps(&client).get("broken").await.unwrap();
    assert_eq!(again.data["status"]["operationState"]["startedAt"], started, "not retried");

    // A manual sync once the fault is gone works.
    cluster.argocd(ArgoBehaviour::default());
    request_sync(&client, "broken", "main").await;
    let app = app_when(&client, "broken", "the manual sync", |a| phase(a) == "Succeeded").await;
    assert_eq!(summary(&app.data), ["Succeeded", "Synced", "Healthy"]);
}

#[tokio::test]
async fn stays_out_of_sync_never_settles() {
    let (cluster, _running, client) = start().await;
    cluster.argocd(ArgoBehaviour {
        stays_out_of_sync: true,
        ..ArgoBehaviour::default()
    });
    create_app(&client, "restless", "main", json!({"automated": {"prune": false}})).await;
    let app = app_when(&client, "restless", "the sync", |a| phase(a) == "Succeeded").await;
    assert_valid(&app);
    assert_eq!(summary(&app.data), ["Succeeded", "OutOfSync", "Progressing"]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let app = apps(&client).get("restless").await.unwrap();
    assert_eq!(summary(&app.data), ["Succeeded", "OutOfSync", "Progressing"]);
    assert_eq!(history(&app.data).len(), 1, "auto-sync does not loop");
}

#[tokio::test]
async fn deleting_with_the_resources_finalizer_cascades() {
    let (_cluster, _running, client) = start().await;
    create_app(&client, "gone", "main", json!({"automated": {}})).await;
    app_when(&client, "gone", "the sync", |a| phase(a) == "Succeeded").await;
    apps(&client)
        .patch(
            "gone",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io"]}})),
        )
        .await
        .unwrap();
    apps(&client).delete("gone", &DeleteParams::default()).await.unwrap();
    eventually(10, "the Application to go", || async {
        apps(&client).get_opt("gone").await.unwrap().is_none().then_some(())
    })
    .await;
}

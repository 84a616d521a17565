//! kubesim through `kube::Client`, as lifeboat will use it: CRUD, patches, validation
//! against the real CRD schemas, list and watch with 410 Gone and dropped streams,
//! finalizers and namespace deletion.

mod common;

use common::start;

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;

fn backups(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Backup"), "backups");
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn namespace(client: &Client, name: &str) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
}

#[tokio::test]
async fn crud_and_patches_answer_as_an_api_server_does() {
    let (_cluster, _running, client) = start().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = serde_json::from_value(json!({"metadata": {"name": "c1", "labels": {"app": "web"}}, "data": {"a": "1"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let again = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(&again, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );

    // A stale resourceVersion is a conflict.
    let mut stale = created.clone();
    let merged = cms
        .patch("c1", &PatchParams::default(), &Patch::Merge(json!({"data": {"b": "2"}})))
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap()["b"], "2");
    stale.data = Some([("a".to_owned(), "3".to_owned())].into());
    let conflict = cms.replace("c1", &PostParams::default(), &stale).await.unwrap_err();
    assert!(
        matches!(&conflict, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{conflict:?}"
    );

    // JSON patch and server-side apply.
    let patch: json_patch::Patch = serde_json::from_value(json!([{"op": "replace", "path": "/data/a", "value": "9"}])).unwrap();
    let patched = cms.patch("c1", &PatchParams::default(), &Patch::Json::<()>(patch)).await.unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["a"], "9");
    let applied = cms
        .patch(
            "c2",
            &PatchParams::apply("lifeboat").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"x": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["x"], "1");

    // Label selectors and 404s.
    let listed = cms.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let missing = cms.get("nope").await.unwrap_err();
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"nope\" not found"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn custom_resources_are_validated_against_the_real_crd_schema() {
    let (_cluster, _running, client) = start().await;
    // With Velero's CRDs, kubesim has Velero's namespace, as an installed Velero does.
    let api = backups(&client, "velero");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Backup"), "backups");
    let bad = DynamicObject::new("b1", &ar)
        .within("velero")
        .data(json!({"spec": {"ttl": 720, "includedNamespaces": "app"}}));
    let refused = api.create(&PostParams::default(), &bad).await.unwrap_err();
    let kube::Error::Api(status) = refused else { panic!("{refused:?}") };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.starts_with("Backup.velero.io \"b1\" is invalid: ["),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("spec.ttl in body must be of type string: \"integer\""),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("spec.includedNamespaces in body must be of type array"),
        "{}",
        status.message
    );

    let good = DynamicObject::new("b1", &ar)
        .within("velero")
        .data(json!({"spec": {"ttl": "720h0m0s", "includedNamespaces": ["app"], "notAField": 1}}));
    let created = api.create(&PostParams::default(), &good).await.unwrap();
    assert!(created.data["spec"].get("notAField").is_none(), "unknown fields are pruned");
    // An enum the schema does not allow.
    let phase = api
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Exploded"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&phase, kube::Error::Api(s) if s.code == 422 && s.message.contains("Unsupported value: \"Exploded\"")),
        "{phase:?}"
    );
    let ok = api
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "InProgress"}})),
        )
        .await
        .unwrap();
    assert_eq!(ok.data["status"]["phase"], "InProgress");
}

#[tokio::test]
async fn watches_survive_410_gone_and_dropped_streams() {
    let (cluster, _running, client) = start().await;
    let api = backups(&client, "velero");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Backup"), "backups");
    api.create(
        &PostParams::default(),
        &DynamicObject::new("b1", &ar).within("velero").data(json!({"spec": {}})),
    )
    .await
    .unwrap();
    let phases = watcher::watch_object(api.clone(), "b1")
        .filter_map(|o| async move { o.ok().flatten().and_then(|o| o.data["status"]["phase"].as_str().map(str::to_owned)) });
    let mut phases = Box::pin(phases);
    let mut seen = Vec::new();
    let driver = {
        let api = api.clone();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            for (i, phase) in ["New", "InProgress", "Completed"].iter().enumerate() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if i == 1 {
                    cluster.drop_watches();
                }
                if i == 2 {
                    cluster.compact();
                    cluster.drop_watches();
                }
                api.patch("b1", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": phase}})))
                    .await
                    .unwrap();
            }
        })
    };
    while seen.last().map(String::as_str) != Some("Completed") {
        let phase = tokio::time::timeout(Duration::from_secs(20), phases.next())
            .await
            .expect("the watch went quiet")
            .unwrap();
        if seen.last() != Some(&phase) {
            seen.push(phase);
        }
    }
    driver.await.unwrap();
    assert_eq!(seen.last().map(String::as_str), Some("Completed"), "{seen:?}");

    // A raw watch from a compacted version gets 410 as an ERROR event.
    cluster.compact();
    let events: Vec<_> = api
        .watch(&kube::api::WatchParams::default().timeout(1), "1001")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(events.first(), Some(kube::api::WatchEvent::Error(s)) if s.code == 410),
        "{events:?}"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_and_namespaces_cascade() {
    let (_cluster, _running, client) = start().await;
    namespace(&client, "app").await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "app");
    for name in ["plain", "held"] {
        let mut cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        if name == "held" {
            cm.metadata.finalizers = Some(vec!["lifeboat.dev/test".into()]);
        }
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces.delete("app", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ns = namespaces.get("app").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(cms.get_opt("plain").await.unwrap().is_none());
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some(), "a finalizer holds it");
    let refused = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(s) if s.code == 403), "{refused:?}");
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        if namespaces.get_opt("app").await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the namespace was never removed");
}

#[tokio::test]
async fn injected_failures_answer_500_the_times_asked() {
    let (cluster, _running, client) = start().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c1"}})).unwrap(),
    )
    .await
    .unwrap();
    cluster.fail_requests("get", "configmaps", 1);
    let failed = cms.get("c1").await.unwrap_err();
    assert!(
        matches!(&failed, kube::Error::Api(s) if s.code == 500 && s.reason == "InternalError" && s.message == "kubesim: injected failure"),
        "{failed:?}"
    );
    // Only the verb asked for, and only as many times.
    cms.list(&ListParams::default()).await.unwrap();
    cms.get("c1").await.unwrap();
}

//! What every kubesim test starts with: a served cluster with the CRDs, a client that does
//! not retry (a test sees exactly what the server answered), and polling for a condition.
#![allow(dead_code)]

use futures::Future;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Client, Config};
use serde_json::json;
use std::time::Duration;

pub fn client(running: &kubesim::Running) -> Client {
    let mut config = Config::new(running.url.parse().unwrap());
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

/// A cluster with every CRD in `crds/`, served on loopback.
pub async fn start() -> (kubesim::Cluster, kubesim::Running, Client) {
    let cluster = kubesim::Cluster::new(Some(&kubesim::Cluster::crds_dir())).unwrap();
    let running = cluster.serve().await.unwrap();
    let client = client(&running);
    (cluster, running, client)
}

/// Polls `check` until it gives a value, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn dynamic(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Creates the Deployment `web` (containers `web` and `sidecar`, label `app: web`) and
/// waits for its Running pods.
pub async fn web(client: &Client, replicas: usize) -> Vec<Pod> {
    let deployments = Api::namespaced_with(client.clone(), "default", &dynamic("apps", "v1", "Deployment", "deployments"));
    let deployment = DynamicObject::new("web", &dynamic("apps", "v1", "Deployment", "")).data(json!({"spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}]}},
    }}));
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    eventually(10, "web's pods", || async {
        let pods = running(client).await;
        (pods.len() == replicas).then_some(pods)
    })
    .await
}

/// The Running pods of `web`, by name.
pub async fn running(client: &Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut list: Vec<Pod> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    list.sort_by_key(|p| p.metadata.name.clone());
    list
}

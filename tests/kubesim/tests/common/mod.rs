//! What every kubesim test starts with: a served cluster with the CRDs, a client that does
//! not retry (a test sees exactly what the server answered), and polling for a condition.
#![allow(dead_code)]

use futures::Future;
use kube::api::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
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

//! kubesim's EndpointSlice controller through `kube::Client`: a Service's managed slice
//! follows the pods its selector matches (replaced pods, a changed selector), goes with the
//! Service or its selector, and leaves slices that users write alone.

mod common;

use common::{eventually, start};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const MANAGED: &str = "endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io";

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx",
                                                       "ports": [{"name": "http", "containerPort": 8080}]}]}}},
    }))
    .unwrap()
}

fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"tier": "front"}}, "spec": spec})).unwrap()
}

/// The managed slices of Service `name`.
async fn managed_slices(slices: &Api<EndpointSlice>, name: &str) -> Vec<EndpointSlice> {
    let selector = format!("{MANAGED},kubernetes.io/service-name={name}");
    slices.list(&ListParams::default().labels(&selector)).await.unwrap().items
}

/// `(pod name, uid, IP)` of the running pods labelled `app`.
async fn pods_of(pods: &Api<Pod>, app: &str) -> BTreeSet<(String, String, String)> {
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap();
    list.items
        .into_iter()
        .map(|p| {
            let ip = p.status.and_then(|s| s.pod_ip).unwrap_or_default();
            (p.metadata.name.unwrap(), p.metadata.uid.unwrap(), ip)
        })
        .collect()
}

/// `(pod name, uid, address)` of a slice's endpoints.
fn endpoints_of(slice: &EndpointSlice) -> BTreeSet<(String, String, String)> {
    slice
        .endpoints
        .iter()
        .map(|e| {
            let target = e.target_ref.clone().unwrap();
            (target.name.unwrap(), target.uid.unwrap(), e.addresses[0].clone())
        })
        .collect()
}

/// The one managed slice of `service` once its endpoints are exactly the pods of `app`.
async fn slice_listing(slices: &Api<EndpointSlice>, pods: &Api<Pod>, service: &str, app: &str, count: usize) -> EndpointSlice {
    eventually(10, &format!("the slice of {service} listing the pods of {app}"), || async {
        let expected = pods_of(pods, app).await;
        let [slice] = <[EndpointSlice; 1]>::try_from(managed_slices(slices, service).await).ok()?;
        (expected.len() == count && endpoints_of(&slice) == expected).then_some(slice)
    })
    .await
}

#[tokio::test]
async fn a_service_lists_its_deployments_ready_pods_and_follows_replacements() {
    let (_cluster, _running, client) = start().await;
    let groups = client.list_api_groups().await.unwrap();
    assert!(
        groups.groups.iter().any(|g| g.name == "discovery.k8s.io"),
        "discovery serves discovery.k8s.io"
    );
    let resources = client.list_api_group_resources("discovery.k8s.io/v1").await.unwrap();
    assert!(resources.resources.iter().any(|r| r.name == "endpointslices" && r.namespaced));

    let (deployments, services, pods, slices): (Api<Deployment>, Api<Service>, Api<Pod>, Api<EndpointSlice>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
    );
    deployments.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    let spec = json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
    let created = services.create(&PostParams::default(), &service("web", spec)).await.unwrap();
    let cluster_ip = created.spec.as_ref().and_then(|s| s.cluster_ip.clone()).unwrap();
    assert!(cluster_ip.starts_with("10.96."), "{cluster_ip}");

    let slice = slice_listing(&slices, &pods, "web", "web", 2).await;
    let name = slice.metadata.name.clone().unwrap();
    let suffix = name.strip_prefix("web-").unwrap();
    assert!(
        suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{name}"
    );
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/service-name"], "web");
    assert_eq!(labels["tier"], "front", "the Service's labels are copied");
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    assert_eq!(Some(&owner.uid), created.metadata.uid.as_ref());
    assert_eq!(slice.address_type, "IPv4");
    for endpoint in &slice.endpoints {
        let conditions = endpoint.conditions.clone().unwrap();
        assert_eq!(
            (conditions.ready, conditions.serving, conditions.terminating),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(endpoint.target_ref.as_ref().unwrap().kind.as_deref(), Some("Pod"));
        assert_eq!(endpoint.node_name.as_deref(), Some("kubesim-node"));
    }
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP"))
    );

    // A deleted pod is replaced; the slice follows, under the same name.
    let (gone, gone_uid, _) = pods_of(&pods, "web").await.into_iter().next().unwrap();
    pods.delete(&gone, &DeleteParams::default()).await.unwrap();
    let slice = eventually(10, "the replacement pod in the slice", || async {
        let slice = slice_listing(&slices, &pods, "web", "web", 2).await;
        endpoints_of(&slice).iter().all(|(_, uid, _)| *uid != gone_uid).then_some(slice)
    })
    .await;
    assert_eq!(slice.metadata.name.as_deref(), Some(name.as_str()), "the slice's name is stable");

    // A service's slices go with it.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(10, "the slice deleted with its service", || async {
        slices.get_opt(&name).await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_slice_follows_the_selector_and_goes_with_it() {
    let (_cluster, _running, client) = start().await;
    let (deployments, services, pods, slices): (Api<Deployment>, Api<Service>, Api<Pod>, Api<EndpointSlice>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
    );
    for (name, replicas) in [("blue", 2), ("green", 1)] {
        deployments
            .create(&PostParams::default(), &deployment(name, replicas))
            .await
            .unwrap();
    }
    let spec = json!({"selector": {"app": "blue"}, "ports": [{"port": 80, "targetPort": "http"}]});
    services.create(&PostParams::default(), &service("web", spec)).await.unwrap();
    let blue = slice_listing(&slices, &pods, "web", "blue", 2).await;
    assert_eq!(
        blue.ports.as_ref().unwrap()[0].port,
        Some(8080),
        "a named targetPort is the pods' port"
    );

    let patch = |value| Patch::Merge(value);
    services
        .patch(
            "web",
            &PatchParams::default(),
            &patch(json!({"spec": {"selector": {"app": "green"}}})),
        )
        .await
        .unwrap();
    let green = slice_listing(&slices, &pods, "web", "green", 1).await;
    assert_eq!(green.metadata.name, blue.metadata.name, "the same slice, with other endpoints");

    let external = json!({"spec": {"type": "ExternalName", "externalName": "web.example.com", "selector": null, "ports": null}});
    let switched = services.patch("web", &PatchParams::default(), &patch(external)).await.unwrap();
    assert_eq!(switched.spec.unwrap().cluster_ip, None, "an ExternalName Service has no cluster IP");
    // The real controller leaves the slice, stale (kubernetes/kubernetes#91072).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(managed_slices(&slices, "web").await.len(), 1, "left as it was");

    let back = json!({"spec": {"type": "ClusterIP", "externalName": null, "selector": {"app": "blue"}, "ports": [{"port": 80}]}});
    let back = services.patch("web", &PatchParams::default(), &patch(back)).await.unwrap();
    assert!(back.spec.unwrap().cluster_ip.is_some_and(|ip| ip.starts_with("10.96.")));
    let again = slice_listing(&slices, &pods, "web", "blue", 2).await;
    assert_eq!(again.metadata.name, blue.metadata.name, "the stale slice, kept up to date again");
    assert_eq!(again.ports.as_ref().unwrap()[0].port, Some(80), "no targetPort: the Service's port");
}

#[tokio::test]
async fn a_slice_written_for_a_service_without_a_selector_is_left_alone() {
    let (_cluster, _running, client) = start().await;
    let (deployments, services, slices): (Api<Deployment>, Api<Service>, Api<EndpointSlice>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client.clone()),
    );
    // Pods that a selector could match, to show that none is looked for.
    deployments.create(&PostParams::default(), &deployment("db", 1)).await.unwrap();
    services
        .create(&PostParams::default(), &service("db", json!({"ports": [{"port": 5432}]})))
        .await
        .unwrap();
    let written: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-external", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": true}}],
        "ports": [{"port": 5432, "protocol": "TCP"}],
    }))
    .unwrap();
    let written = slices.create(&PostParams::default(), &written).await.unwrap();
    // Long enough for the deployment to roll out and the controller to see every change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = slices.get("db-external").await.unwrap();
    assert_eq!(now.metadata.resource_version, written.metadata.resource_version, "untouched");
    assert!(managed_slices(&slices, "db").await.is_empty(), "no managed slice");
    let all = slices.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 1, "only the written slice: {all:?}");
}

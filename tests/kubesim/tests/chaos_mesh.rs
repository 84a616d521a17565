//! kubesim's simulated Chaos Mesh through `kube::Client`: a Deployment's pods as targets,
//! PodChaos pod-kill, container-kill and pod-failure with what they do to pods, records and
//! conditions as Chaos Mesh writes them, Events, recovery on delete and after a duration,
//! and the fault hooks (injection stuck, finalizer stuck).

mod common;

use common::{dynamic, eventually, running, start, web};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

fn chaos_api(client: &Client, kind: &str) -> Api<DynamicObject> {
    let plural = kind.to_lowercase();
    Api::namespaced_with(client.clone(), "default", &dynamic("chaos-mesh.org", "v1alpha1", kind, &plural))
}

async fn create_chaos(client: &Client, kind: &str, name: &str, spec: Value) {
    let ar = dynamic("chaos-mesh.org", "v1alpha1", kind, "");
    let object = DynamicObject::new(name, &ar).data(json!({"spec": spec}));
    chaos_api(client, kind).create(&PostParams::default(), &object).await.unwrap();
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap()
}

fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
}

fn condition(status: &Value, kind: &str) -> String {
    let found = status["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == kind));
    found.map_or_else(|| "missing".into(), |c| c["status"].as_str().unwrap_or_default().to_owned())
}

fn records(status: &Value) -> Vec<Value> {
    status["experiment"]["containerRecords"].as_array().cloned().unwrap_or_default()
}

/// The chaos object once its status satisfies `done`.
async fn chaos_when(client: &Client, kind: &str, name: &str, done: impl Fn(&Value) -> bool) -> DynamicObject {
    let api = chaos_api(client, kind);
    eventually(10, name, || async {
        let o = api.get_opt(name).await.unwrap()?;
        done(&o.data["status"]).then_some(o)
    })
    .await
}

fn injected(status: &Value) -> bool {
    let records = records(status);
    !records.is_empty() && records.iter().all(|r| r["phase"] == "Injected")
}

/// The Events about chaos object `name`, oldest first.
async fn events(client: &Client, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut list: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect();
    list.sort_by_key(|e| e.metadata.name.clone());
    list
}

async fn gone(client: &Client, kind: &str, name: &str) {
    let api = chaos_api(client, kind);
    eventually(10, "the chaos to go", || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn pod_kill_deletes_a_pod_its_deployment_replaces() {
    let (_cluster, _running, client) = start().await;
    let before = web(&client, 2).await;
    for pod in &before {
        let pod_name = name(pod);
        let parts: Vec<&str> = pod_name.split('-').collect();
        assert!(
            parts.len() == 3 && parts[1].len() == 10 && parts[2].len() == 5,
            "<deployment>-<hash>-<suffix>: {pod_name}"
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Deployment", "web", Some(true))
        );
        let status = pod.status.clone().unwrap();
        assert!(status.pod_ip.unwrap().starts_with("10.") && status.start_time.is_some());
        assert!(ready(pod));
        let containers = status.container_statuses.unwrap();
        assert_eq!(containers.len(), 2);
        assert!(
            containers
                .iter()
                .all(|c| c.ready && c.restart_count == 0 && c.state.clone().unwrap().running.is_some())
        );
    }

    create_chaos(
        &client,
        "PodChaos",
        "kill",
        json!({"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "web"}}}),
    )
    .await;
    let chaos = chaos_when(&client, "PodChaos", "kill", injected).await;
    assert_eq!(chaos.metadata.finalizers.clone().unwrap(), ["chaos-mesh/records"]);
    let status = &chaos.data["status"];
    let killed = name(&before[0]);
    let record = &records(status)[0];
    assert_eq!(record["id"], format!("default/{killed}"), "{status}");
    assert_eq!(
        (record["selectorKey"].as_str(), record["injectedCount"].as_i64()),
        (Some("."), Some(1))
    );
    assert_eq!(
        (record["events"][0]["type"].as_str(), record["events"][0]["operation"].as_str()),
        (Some("Succeeded"), Some("Apply"))
    );
    assert_eq!(status["experiment"]["desiredPhase"], "Run");
    assert_eq!(
        [
            condition(status, "Selected"),
            condition(status, "AllInjected"),
            condition(status, "Paused")
        ],
        ["True", "True", "False"]
    );
    // A one-shot action stays Injected until the experiment is deleted, as in Chaos Mesh.
    assert_eq!(condition(status, "AllRecovered"), "False");

    let after = eventually(10, "the replacement pod", || async {
        let pods = running(&client).await;
        (pods.len() == 2 && pods.iter().all(|p| name(p) != killed)).then_some(pods)
    })
    .await;
    let old_uids: Vec<String> = before.iter().map(uid).collect();
    assert!(after.iter().any(|p| !old_uids.contains(&uid(p))), "a new pod");
    assert!(after.iter().any(|p| name(p) == name(&before[1])), "the other pod is untouched");

    let applied = events(&client, "kill").await;
    let applied = applied
        .iter()
        .find(|e| e.reason.as_deref() == Some("Applied"))
        .expect("an Applied event");
    assert_eq!(
        applied.message.as_deref(),
        Some(format!("Successfully apply chaos for default/{killed}").as_str())
    );
    assert_eq!(applied.involved_object.kind.as_deref(), Some("PodChaos"));

    chaos_api(&client, "PodChaos")
        .delete("kill", &DeleteParams::default())
        .await
        .unwrap();
    gone(&client, "PodChaos", "kill").await;
}

#[tokio::test]
async fn container_kill_restarts_the_container() {
    let (_cluster, _running, client) = start().await;
    let before = web(&client, 1).await;
    create_chaos(
        &client,
        "PodChaos",
        "restart",
        json!({"action": "container-kill", "mode": "all", "containerNames": ["sidecar"], "selector": {"namespaces": ["default"], "labelSelectors": {"app": "web"}}}),
    )
    .await;
    let chaos = chaos_when(&client, "PodChaos", "restart", injected).await;
    let pod = name(&before[0]);
    assert_eq!(records(&chaos.data["status"])[0]["id"], format!("default/{pod}/sidecar"));
    let after = running(&client).await;
    assert_eq!(uid(&after[0]), uid(&before[0]), "the same pod");
    let statuses = after[0].status.clone().unwrap().container_statuses.unwrap();
    let sidecar = statuses.iter().find(|c| c.name == "sidecar").unwrap();
    assert_eq!(sidecar.restart_count, 1);
    let terminated = sidecar.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (137, Some("Error")));
    assert_eq!(statuses.iter().find(|c| c.name == "web").unwrap().restart_count, 0);
}

#[tokio::test]
async fn pod_failure_makes_a_pod_unready_until_the_chaos_is_deleted() {
    let (_cluster, _running, client) = start().await;
    let pods = web(&client, 2).await;
    let target = name(&pods[1]);
    create_chaos(
        &client,
        "PodChaos",
        "failure",
        json!({"action": "pod-failure", "mode": "fixed", "value": "1", "selector": {"pods": {"default": [target]}}}),
    )
    .await;
    chaos_when(&client, "PodChaos", "failure", injected).await;
    let now = running(&client).await;
    assert!(ready(&now[0]) && !ready(&now[1]), "only {target} is unready");
    let statuses = now[1].status.clone().unwrap().container_statuses.unwrap();
    assert!(statuses.iter().all(|c| !c.ready));

    chaos_api(&client, "PodChaos")
        .delete("failure", &DeleteParams::default())
        .await
        .unwrap();
    gone(&client, "PodChaos", "failure").await;
    let now = running(&client).await;
    assert!(now.iter().all(ready), "ready again");
    assert_eq!(uid(&now[1]), uid(&pods[1]));
    let recovered = events(&client, "failure").await;
    assert!(
        recovered.iter().any(|e| e.reason.as_deref() == Some("Recovered")
            && e.message.as_deref() == Some(format!("Successfully recover chaos for default/{target}").as_str())),
        "{recovered:?}"
    );
}

#[tokio::test]
async fn nothing_selected_is_reported() {
    let (_cluster, _running, client) = start().await;
    web(&client, 1).await;
    create_chaos(
        &client,
        "PodChaos",
        "nobody",
        json!({"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "none"}}}),
    )
    .await;
    let chaos = chaos_when(&client, "PodChaos", "nobody", |s| condition(s, "Selected") == "False").await;
    let status = &chaos.data["status"];
    assert_eq!(
        [condition(status, "AllInjected"), condition(status, "AllRecovered")],
        ["False", "False"]
    );
    assert!(status["experiment"].get("containerRecords").is_none(), "{status}");
    let failed = eventually(5, "the Failed event", || async {
        events(&client, "nobody")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Failed"))
    })
    .await;
    assert_eq!(failed.message.as_deref(), Some("Failed to select targets: no pod is selected"));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(running(&client).await.len(), 1, "nothing was killed");
    chaos_api(&client, "PodChaos")
        .delete("nobody", &DeleteParams::default())
        .await
        .unwrap();
    gone(&client, "PodChaos", "nobody").await;
}

#[tokio::test]
async fn a_stuck_injection_stays_not_injected() {
    let (cluster, _running, client) = start().await;
    cluster.chaos_mesh(kubesim::chaos_mesh::ChaosMeshBehaviour {
        stuck_not_injected: true,
        ..Default::default()
    });
    web(&client, 1).await;
    create_chaos(
        &client,
        "PodChaos",
        "stuck",
        json!({"action": "pod-failure", "mode": "all", "selector": {"labelSelectors": {"app": "web"}}}),
    )
    .await;
    chaos_when(&client, "PodChaos", "stuck", |s| condition(s, "Selected") == "True").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = chaos_api(&client, "PodChaos").get("stuck").await.unwrap().data["status"].clone();
    assert_eq!(records(&status)[0]["phase"], "Not Injected", "{status}");
    assert_eq!(records(&status)[0]["injectedCount"], 0);
    assert_eq!(condition(&status, "AllInjected"), "False");
    assert!(running(&client).await.iter().all(ready), "nothing injected");
    chaos_api(&client, "PodChaos")
        .delete("stuck", &DeleteParams::default())
        .await
        .unwrap();
    gone(&client, "PodChaos", "stuck").await;
}

#[tokio::test]
async fn a_stuck_finalizer_keeps_the_deleted_chaos() {
    let (cluster, _running, client) = start().await;
    cluster.chaos_mesh(kubesim::chaos_mesh::ChaosMeshBehaviour {
        finalizer_stuck: true,
        ..Default::default()
    });
    web(&client, 1).await;
    create_chaos(
        &client,
        "PodChaos",
        "sticky",
        json!({"action": "pod-failure", "mode": "one", "selector": {"labelSelectors": {"app": "web"}}}),
    )
    .await;
    chaos_when(&client, "PodChaos", "sticky", injected).await;
    chaos_api(&client, "PodChaos")
        .delete("sticky", &DeleteParams::default())
        .await
        .unwrap();
    let failed = chaos_when(&client, "PodChaos", "sticky", |s| {
        records(s)
            .first()
            .is_some_and(|r| r["events"].as_array().is_some_and(|e| e.iter().any(|e| e["type"] == "Failed")))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = chaos_api(&client, "PodChaos").get("sticky").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_some());
    assert_eq!(kept.metadata.finalizers.clone().unwrap(), ["chaos-mesh/records"]);
    let status = &kept.data["status"];
    assert_eq!(condition(status, "AllRecovered"), "False", "{status}");
    assert_eq!(records(status)[0]["phase"], "Injected");
    assert_eq!(failed.data["status"]["experiment"]["desiredPhase"], "Stop");
    assert!(!running(&client).await.iter().any(ready), "not recovered");

    // Once the daemon answers again, recovery goes through and the chaos goes.
    cluster.chaos_mesh(kubesim::chaos_mesh::ChaosMeshBehaviour::default());
    gone(&client, "PodChaos", "sticky").await;
    assert!(running(&client).await.iter().all(ready));
}

#[tokio::test]
async fn network_chaos_with_a_duration_recovers_by_itself() {
    let (_cluster, _running, client) = start().await;
    let pods = web(&client, 1).await;
    create_chaos(
        &client,
        "NetworkChaos",
        "slow",
        json!({"action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "web"}},
               "delay": {"latency": "10ms"}, "duration": "500ms"}),
    )
    .await;
    // Injected in between: the record's events say so (polling could miss the moment).
    // Before the injection all records are Not Injected too (AllRecovered True, as in Chaos
    // Mesh): the end is desiredPhase Stop.
    let done = chaos_when(&client, "NetworkChaos", "slow", |s| s["experiment"]["desiredPhase"] == "Stop").await;
    let status = &done.data["status"];
    assert_eq!(condition(status, "AllRecovered"), "True");
    assert_eq!(condition(status, "AllInjected"), "False");
    let record = &records(status)[0];
    assert_eq!(record["id"], format!("default/{}", name(&pods[0])));
    assert_eq!(
        (
            record["phase"].as_str(),
            record["injectedCount"].as_i64(),
            record["recoveredCount"].as_i64()
        ),
        (Some("Not Injected"), Some(1), Some(1))
    );
    let operations: Vec<&str> = record["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["Apply", "Recover"]);
    // The experiment stays, finished, until deleted.
    chaos_api(&client, "NetworkChaos")
        .delete("slow", &DeleteParams::default())
        .await
        .unwrap();
    gone(&client, "NetworkChaos", "slow").await;
}

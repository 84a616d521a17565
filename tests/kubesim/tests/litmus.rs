//! kubesim's simulated LitmusChaos through `kube::Client`: ChaosEngines run into
//! ChaosResults as chaos-operator and litmus-go write them, pod-delete and container-kill on
//! a Deployment's pods, HTTP probes really called, an abort through `engineState: stop`,
//! and the fault hooks (a result contradicting its engine, a result stuck Awaited). Every
//! object read back is checked against the real CRDs' schemas.

mod common;

use common::{dynamic, eventually, running, start, web};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kubesim::litmus::LitmusBehaviour;
use serde_json::{Value, json};
use std::time::Duration;

fn engines(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &dynamic("litmuschaos.io", "v1alpha1", "ChaosEngine", "chaosengines"),
    )
}

fn results(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &dynamic("litmuschaos.io", "v1alpha1", "ChaosResult", "chaosresults"),
    )
}

/// Asserts that `object` is valid for the real CRD of `plural` and that its schema keeps
/// every field (nothing a real API server would prune).
fn assert_valid(object: &DynamicObject, plural: &str) {
    static CRDS: std::sync::OnceLock<Vec<kubesim::resources::Resource>> = std::sync::OnceLock::new();
    let crds = CRDS.get_or_init(|| kubesim::resources::load_crds(&kubesim::Cluster::crds_dir()).unwrap());
    let crd = crds.iter().find(|r| r.plural == plural).unwrap();
    let mut value = serde_json::to_value(object).unwrap();
    let outcome = kubesim::schema::validate(&mut value, crd.schema.as_ref().unwrap());
    assert!(outcome.causes.is_empty(), "{plural}: {:?}", outcome.causes);
    assert!(outcome.unknown.is_empty(), "{plural}: pruned {:?}", outcome.unknown);
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap()
}

/// Creates the ChaosEngine `name` running `experiment` (with `probes` and `env`) against
/// the pods labelled `label`.
async fn create_engine(client: &Client, name: &str, label: &str, experiment: &str, probes: Value, env: Value) {
    let ar = dynamic("litmuschaos.io", "v1alpha1", "ChaosEngine", "");
    let engine = DynamicObject::new(name, &ar).data(json!({"spec": {
        "engineState": "active",
        "appinfo": {"appns": "default", "applabel": label, "appkind": "deployment"},
        "chaosServiceAccount": "pod-delete-sa",
        "jobCleanUpPolicy": "retain",
        "experiments": [{"name": experiment, "spec": {"components": {"env": env}, "probe": probes}}],
    }}));
    engines(client).create(&PostParams::default(), &engine).await.unwrap();
}

/// An httpProbe GETting `url`, passing on a 200.
fn http_probe(name: &str, url: &str) -> Value {
    json!([{"name": name, "type": "httpProbe", "mode": "EOT",
            "httpProbe/inputs": {"url": url, "insecureSkipVerify": false,
                                 "method": {"get": {"criteria": "==", "responseCode": "200"}}},
            "runProperties": {"probeTimeout": "2s", "interval": "1s", "retry": 1}}])
}

async fn engine_when(client: &Client, name: &str, done: impl Fn(&Value) -> bool) -> DynamicObject {
    let api = engines(client);
    eventually(10, &format!("engine {name}"), || async {
        let o = api.get_opt(name).await.unwrap()?;
        done(&o.data).then_some(o)
    })
    .await
}

async fn result_when(client: &Client, name: &str, done: impl Fn(&Value) -> bool) -> DynamicObject {
    let api = results(client);
    eventually(10, &format!("result {name}"), || async {
        let o = api.get_opt(name).await.unwrap()?;
        done(&o.data["status"]).then_some(o)
    })
    .await
}

fn completed(status: &Value) -> bool {
    status["experimentStatus"]["phase"] == "Completed"
}

fn experiment_status(status: &Value) -> [&str; 4] {
    let e = &status["experimentStatus"];
    fn s(v: &Value) -> &str {
        v.as_str().unwrap_or("missing")
    }
    [s(&e["phase"]), s(&e["verdict"]), s(&e["probeSuccessPercentage"]), s(&e["failStep"])]
}

/// A loopback HTTP server answering every request with `code`.
async fn http_server(code: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let reply = format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{address}/healthz")
}

#[tokio::test]
async fn pod_delete_replaces_a_pod_and_passes() {
    let (cluster, _running, client) = start().await;
    // Long enough to see the run before its end.
    cluster.litmus(LitmusBehaviour {
        chaos_time: Duration::from_millis(1500),
        ..LitmusBehaviour::default()
    });
    let before = web(&client, 2).await;
    create_engine(
        &client,
        "web-chaos",
        "app=web",
        "pod-delete",
        json!([]),
        json!([{"name": "TOTAL_CHAOS_DURATION", "value": "30"}]),
    )
    .await;

    let engine = engine_when(&client, "web-chaos", |e| e["status"]["engineStatus"] == "initialized").await;
    assert_valid(&engine, "chaosengines");
    assert_eq!(
        engine.metadata.finalizers.clone().unwrap(),
        ["chaosengine.litmuschaos.io/finalizer"]
    );
    let entry = &engine.data["status"]["experiments"][0];
    assert_eq!(
        [&entry["name"], &entry["runner"], &entry["status"], &entry["verdict"]],
        ["pod-delete", "web-chaos-runner", "Running", "Awaited"]
    );
    let pod = entry["experimentPod"].as_str().unwrap();
    let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
    assert!(
        pod.starts_with("pod-delete-") && parts[0].len() == 5 && parts[1].len() == 6,
        "{pod}"
    );
    assert!(entry["lastUpdateTime"].is_string());

    let result = result_when(&client, "web-chaos-pod-delete", |s| s["experimentStatus"]["phase"].is_string()).await;
    assert_valid(&result, "chaosresults");
    assert_eq!(result.data["spec"], json!({"engine": "web-chaos", "experiment": "pod-delete"}));
    let labels = result.metadata.labels.clone().unwrap();
    assert_eq!(labels["chaosUID"], engine.metadata.uid.clone().unwrap());
    assert_eq!(labels["app.kubernetes.io/component"], "experiment-job");
    assert_eq!(experiment_status(&result.data["status"]), ["Running", "Awaited", "Awaited", "N/A"]);

    let result = result_when(&client, "web-chaos-pod-delete", completed).await;
    assert_valid(&result, "chaosresults");
    let status = &result.data["status"];
    assert_eq!(experiment_status(status), ["Completed", "Pass", "100", "N/A"]);
    assert_eq!(
        [
            &status["history"]["passedRuns"],
            &status["history"]["failedRuns"],
            &status["history"]["stoppedRuns"]
        ],
        [1, 0, 0]
    );
    let deleted = before[0].metadata.name.clone().unwrap();
    assert_eq!(status["history"]["targets"][0]["name"], deleted.as_str());

    let engine = engine_when(&client, "web-chaos", |e| e["status"]["engineStatus"] == "completed").await;
    assert_valid(&engine, "chaosengines");
    assert_eq!(engine.data["spec"]["engineState"], "stop", "the operator stops a completed engine");
    let entry = &engine.data["status"]["experiments"][0];
    assert_eq!([&entry["status"], &entry["verdict"]], ["Completed", "Pass"]);

    let old: Vec<String> = before.iter().map(uid).collect();
    let after = eventually(10, "the replacement pod", || async {
        let pods = running(&client).await;
        let gone = pods.iter().all(|p| p.metadata.name.as_deref() != Some(deleted.as_str()));
        (pods.len() == 2 && gone).then_some(pods)
    })
    .await;
    assert!(after.iter().any(|p| !old.contains(&uid(p))), "a pod with a new uid");
    assert!(after.iter().any(|p| uid(p) == uid(&before[1])), "the other pod is untouched");

    // Active again: a second run, counted in the same result's history.
    engines(&client)
        .patch(
            "web-chaos",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "active"}})),
        )
        .await
        .unwrap();
    let result = result_when(&client, "web-chaos-pod-delete", |s| s["history"]["passedRuns"] == 2).await;
    assert_eq!(experiment_status(&result.data["status"])[..2], ["Completed", "Pass"]);
    engine_when(&client, "web-chaos", |e| e["status"]["engineStatus"] == "completed").await;

    // A finished engine keeps its finalizer until it is deleted, then goes.
    engines(&client).delete("web-chaos", &DeleteParams::default()).await.unwrap();
    eventually(10, "the engine to go", || async {
        engines(&client).get_opt("web-chaos").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        results(&client).get_opt("web-chaos-pod-delete").await.unwrap().is_some(),
        "results outlive engines"
    );
}

#[tokio::test]
async fn container_kill_restarts_a_container() {
    let (_cluster, _running, client) = start().await;
    let before = web(&client, 1).await;
    let env = json!([{"name": "TARGET_CONTAINER", "value": "sidecar"}]);
    create_engine(&client, "restart", "app=web", "container-kill", json!([]), env).await;
    let result = result_when(&client, "restart-container-kill", completed).await;
    assert_eq!(experiment_status(&result.data["status"])[..2], ["Completed", "Pass"]);
    let after = running(&client).await;
    assert_eq!(uid(&after[0]), uid(&before[0]), "the same pod");
    let statuses = after[0].status.clone().unwrap().container_statuses.unwrap();
    let restarts = |name: &str| statuses.iter().find(|c| c.name == name).unwrap().restart_count;
    assert_eq!((restarts("sidecar"), restarts("web")), (1, 0));
}

#[tokio::test]
async fn http_probes_are_really_called() {
    let (_cluster, _running, client) = start().await;
    web(&client, 1).await;
    let up = http_server(200).await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/healthz", listener.local_addr().unwrap())
    };
    let unhappy = http_server(503).await;
    // An experiment without a visible effect, so that the three runs do not compete for
    // the one pod.
    let experiment = "pod-network-latency";
    create_engine(&client, "up", "app=web", experiment, http_probe("web-up", &up), json!([])).await;
    create_engine(&client, "down", "app=web", experiment, http_probe("web-down", &closed), json!([])).await;
    create_engine(&client, "sick", "app=web", experiment, http_probe("web-sick", &unhappy), json!([])).await;

    let result = result_when(&client, "up-pod-network-latency", completed).await;
    assert_valid(&result, "chaosresults");
    let status = &result.data["status"];
    assert_eq!(experiment_status(status), ["Completed", "Pass", "100", "N/A"]);
    let probe = &status["probeStatuses"][0];
    assert_eq!([&probe["name"], &probe["type"], &probe["mode"]], ["web-up", "httpProbe", "EOT"]);
    assert_eq!(probe["status"]["verdict"], "Passed");

    for (engine, probe_name, why) in [("down", "web-down", "connect"), ("sick", "web-sick", "Actual value: 503")] {
        let result = result_when(&client, &format!("{engine}-{experiment}"), completed).await;
        assert_valid(&result, "chaosresults");
        let status = &result.data["status"];
        let [phase, verdict, share, step] = experiment_status(status);
        assert_eq!([phase, verdict, share], ["Completed", "Fail", "0"], "{status}");
        assert!(step.contains(probe_name) && step.contains(why), "{step}");
        assert_eq!(status["probeStatuses"][0]["status"]["verdict"], "Failed");
        assert_eq!(status["history"]["failedRuns"], 1);
        let engine = engine_when(&client, engine, |e| e["status"]["engineStatus"] == "completed").await;
        assert_eq!(engine.data["status"]["experiments"][0]["verdict"], "Fail");
    }
}

#[tokio::test]
async fn no_target_pod_fails_the_experiment() {
    let (_cluster, _running, client) = start().await;
    web(&client, 1).await;
    create_engine(
        &client,
        "nobody",
        "app=nothing",
        "pod-delete",
        http_probe("p", "http://127.0.0.1:1/"),
        json!([]),
    )
    .await;
    let result = result_when(&client, "nobody-pod-delete", completed).await;
    let status = &result.data["status"];
    assert_eq!(
        experiment_status(status),
        ["Completed", "Fail", "0", "[chaos]: failed to get the target pod list"]
    );
    assert_eq!(status["probeStatuses"][0]["status"]["verdict"], "N/A", "probes never ran");
    assert_eq!(running(&client).await.len(), 1);
}

#[tokio::test]
async fn engine_state_stop_aborts_the_run() {
    let (cluster, _running, client) = start().await;
    cluster.litmus(LitmusBehaviour {
        chaos_time: Duration::from_secs(30),
        ..LitmusBehaviour::default()
    });
    let before = web(&client, 2).await;
    create_engine(&client, "halt", "app=web", "pod-delete", json!([]), json!([])).await;
    result_when(&client, "halt-pod-delete", |s| s["experimentStatus"]["phase"] == "Running").await;
    engines(&client)
        .patch(
            "halt",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
        )
        .await
        .unwrap();

    let result = result_when(&client, "halt-pod-delete", completed).await;
    assert_valid(&result, "chaosresults");
    let status = &result.data["status"];
    assert_eq!(experiment_status(status), ["Completed", "Stopped", "0", "Chaos injection stopped!"]);
    assert_eq!(status["history"]["stoppedRuns"], 1);
    let engine = engine_when(&client, "halt", |e| e["status"]["engineStatus"] == "stopped").await;
    assert_valid(&engine, "chaosengines");
    let entry = &engine.data["status"]["experiments"][0];
    assert_eq!([&entry["status"], &entry["verdict"]], ["Forcefully Aborted", "Stopped"]);
    assert!(
        engine.metadata.finalizers.clone().unwrap_or_default().is_empty(),
        "finalizer removed"
    );
    let after: Vec<String> = running(&client).await.iter().map(uid).collect();
    assert_eq!(after, before.iter().map(uid).collect::<Vec<_>>(), "no pod was deleted");

    // Deleting a running engine aborts it too, and lets it go.
    create_engine(&client, "gone", "app=web", "pod-delete", json!([]), json!([])).await;
    result_when(&client, "gone-pod-delete", |s| s["experimentStatus"]["phase"] == "Running").await;
    engines(&client).delete("gone", &DeleteParams::default()).await.unwrap();
    let result = result_when(&client, "gone-pod-delete", completed).await;
    assert_eq!(experiment_status(&result.data["status"])[1], "Stopped");
    eventually(10, "the engine to go", || async {
        engines(&client).get_opt("gone").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn result_says_fail_contradicts_the_engine() {
    let (cluster, _running, client) = start().await;
    cluster.litmus(LitmusBehaviour {
        result_says_fail: true,
        chaos_time: Duration::from_millis(100),
        ..LitmusBehaviour::default()
    });
    web(&client, 2).await;
    create_engine(&client, "liar", "app=web", "pod-delete", json!([]), json!([])).await;
    let engine = engine_when(&client, "liar", |e| e["status"]["engineStatus"] == "completed").await;
    let entry = &engine.data["status"]["experiments"][0];
    assert_eq!([&entry["status"], &entry["verdict"]], ["Completed", "Pass"]);
    let result = result_when(&client, "liar-pod-delete", completed).await;
    assert_valid(&result, "chaosresults");
    let [phase, verdict, share, step] = experiment_status(&result.data["status"]);
    assert_eq!([phase, verdict, share], ["Completed", "Fail", "0"]);
    assert_ne!(step, "N/A");
    assert_eq!(result.data["status"]["history"]["failedRuns"], 1);
}

#[tokio::test]
async fn stuck_awaited_never_ends_until_stopped() {
    let (cluster, _running, client) = start().await;
    cluster.litmus(LitmusBehaviour {
        stuck_awaited: true,
        chaos_time: Duration::from_millis(100),
        ..LitmusBehaviour::default()
    });
    web(&client, 2).await;
    create_engine(&client, "stuck", "app=web", "pod-delete", json!([]), json!([])).await;
    result_when(&client, "stuck-pod-delete", |s| s["experimentStatus"]["phase"] == "Running").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let result = results(&client).get("stuck-pod-delete").await.unwrap();
    assert_eq!(experiment_status(&result.data["status"]), ["Running", "Awaited", "Awaited", "N/A"]);
    let engine = engines(&client).get("stuck").await.unwrap();
    assert_eq!(engine.data["status"]["engineStatus"], "initialized");
    assert_eq!(engine.data["status"]["experiments"][0]["verdict"], "Awaited");

    engines(&client)
        .patch(
            "stuck",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
        )
        .await
        .unwrap();
    let result = result_when(&client, "stuck-pod-delete", completed).await;
    assert_eq!(experiment_status(&result.data["status"])[1], "Stopped");
    engine_when(&client, "stuck", |e| e["status"]["engineStatus"] == "stopped").await;
}

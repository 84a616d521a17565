//! `chaos_mesh.experiment` and `litmus.experiment` against kubesim's simulated Chaos Mesh
//! and LitmusChaos, through `kube::Client`. A Chaos Mesh experiment counts as injected only
//! when its status and the pods prove it, is recovered when the run is done with it, and
//! every way Chaos Mesh can leave a fault behind (nothing selected, records stuck, a
//! finalizer that never clears) is reported. A Litmus engine is judged by its ChaosResults,
//! not by its own status, and is stopped when the run aborts.

mod support;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use lifeboat::journal::RunStatus;
use std::time::Duration;
use support::cluster::{APP, Sim, indented, passing_drill, report_step, sim, why_not};
use support::{events, first_error, outputs_of, plan, run};

/// The app, rolled out, then `steps` (YAML, indented for `steps:`).
fn with_app(sim: &Sim, steps: &str) -> String {
    guarded_app(sim, "", steps)
}

/// [`with_app`] with `guards` (YAML, indented for `spec:`).
fn guarded_app(sim: &Sim, guards: &str, steps: &str) -> String {
    plan(
        "chaos",
        &format!(
            "  objectives: {{ rto: 1m }}\n{guards}{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: rolled_out\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: Deployment, name: web, namespace: app }}\n{steps}",
            sim.clusters(),
            indented(APP, 10)
        ),
    )
}

async fn experiment(sim: &Sim, kind: &str, name: &str) -> Option<serde_json::Value> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("chaos-mesh.org", "v1alpha1", kind),
        &kind.to_ascii_lowercase(),
    );
    let api: Api<DynamicObject> = Api::namespaced_with(sim.client(), "app", &ar);
    api.get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
}

async fn ready_web_pods(sim: &Sim) -> usize {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(sim.client(), "app");
    pods.list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs.iter().all(|c| c.ready))
        })
        .count()
}

/// Closes `listener` (the endpoint a guard watches goes down) once the experiment `name`
/// exists in namespace `app`.
fn close_once_created(
    sim: &Sim,
    (group, kind, plural): (&'static str, &'static str, &'static str),
    name: &'static str,
    listener: std::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let client = sim.client();
    tokio::spawn(async move {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client, "app", &ar);
        while api.get_opt(name).await.ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(listener);
    })
}

async fn faults(j: &support::TestJournal, run_id: &str) -> Vec<lifeboat::drill::measure::FaultReport> {
    lifeboat::drill::measure::measure(&j.journal, run_id).await.unwrap().faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_kill_is_proven_from_the_records_and_the_pods_and_starts_the_rto_clock() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let source = with_app(
        &sim,
        "    - id: kill\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      mark: disaster\n      with:\n        kind: PodChaos\n        name: kill-web\n        namespace: app\n        spec: { action: pod-kill, mode: one, selector: { labelSelectors: { app: web } } }\n\
         \x20   - id: back\n      kind: k8s.wait\n      needs: [kill]\n      mark: recovered\n      with: { api_version: apps/v1, kind: Deployment, name: web, namespace: app, jsonpath: '{.status.readyReplicas}', value: 2 }\n",
    );
    let report = run(&j.journal, &source).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let kill = outputs_of(&ev, "kill");
    // The evidence is in the outputs, beside the injection's times.
    let evidence = &kill;
    assert_eq!(evidence["observed"]["action"], "pod-kill", "{kill:?}");
    assert_eq!(evidence["observed"]["pods"].as_array().unwrap().len(), 1, "mode one: {kill:?}");
    assert_eq!(evidence["records"][0]["injected_count"], 1, "{kill:?}");
    assert!(
        evidence["recovery"]
            .as_str()
            .unwrap()
            .contains("one-shot pod-kill: nothing to recover"),
        "{kill:?}"
    );
    assert!(
        kill["injected_at"].as_str().unwrap() > evidence["created_at"].as_str().unwrap(),
        "timed from the observed injection, not the object's creation: {kill:?}"
    );
    assert!(
        experiment(&sim, "PodChaos", "kill-web").await.is_none(),
        "a one-shot experiment is cleaned up"
    );
    let drill = lifeboat::drill::measure::measure(&j.journal, &report.run_id).await.unwrap();
    assert!(drill.rto_ms.is_some(), "RTO from the kill to two ready replicas again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_fault_is_recovered_at_the_runs_end_and_a_stuck_finalizer_is_reported() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let failure = |extra: &str| {
        with_app(
            &sim,
            &format!(
                "    - id: fail\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      with:\n        kind: PodChaos\n        name: fail-web\n        namespace: app\n        recover_timeout: 2s\n        spec: {{ action: pod-failure, mode: all, selector: {{ labelSelectors: {{ app: web }} }} }}\n{extra}\
                 \x20   - id: soak\n      kind: sleep\n      needs: [fail]\n      with: {{ duration: 300ms }}\n"
            ),
        )
    };
    let report = run(&j.journal, &failure("")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(outputs_of(&ev, "fail")["observed"]["pods"].as_array().unwrap().len(), 2);
    let f = faults(&j, &report.run_id).await;
    let revert = f[0].revert.as_ref().expect("reverted");
    assert_eq!(revert.reason, "the run ended");
    assert!(revert.error.is_none(), "{revert:?}");
    assert!(experiment(&sim, "PodChaos", "fail-web").await.is_none(), "recovered and gone");
    let mut ready = 0;
    for _ in 0..50 {
        ready = ready_web_pods(&sim).await;
        if ready == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 2, "the failed pods are ready again");

    // A finalizer Chaos Mesh never clears: the revert fails saying so, and the object stays.
    sim.cluster.chaos_mesh(kubesim::chaos_mesh::ChaosMeshBehaviour {
        finalizer_stuck: true,
        ..Default::default()
    });
    let report = run(&j.journal, &failure("")).await;
    let f = faults(&j, &report.run_id).await;
    let error = f[0].revert.as_ref().and_then(|r| r.error.clone()).unwrap_or_default();
    assert!(
        error.contains("did not recover within 2s")
            && error.contains("chaos-mesh/records finalizer is still set")
            && error.contains("force_finalizer_removal"),
        "{error}"
    );
    let stuck = experiment(&sim, "PodChaos", "fail-web").await.expect("still there");
    assert!(stuck["metadata"]["deletionTimestamp"].is_string(), "{stuck}");

    // Asked to, lifeboat lets go of it and says what may be left behind.
    let report = run(&j.journal, &failure("        force_finalizer_removal: true\n")).await;
    let f = faults(&j, &report.run_id).await;
    let observed = f[0].revert.as_ref().and_then(|r| r.observed.clone()).unwrap_or_default();
    assert_eq!(observed["forced"], true, "{f:?}");
    assert!(observed["note"].as_str().unwrap().contains("may still be applied"), "{observed:?}");
    assert!(experiment(&sim, "PodChaos", "fail-web").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_selected_and_records_never_injected_are_failures_not_silent_no_ops() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let one = |name: &str, labels: &str| {
        with_app(
            &sim,
            &format!(
                "    - id: chaos\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      with:\n        kind: PodChaos\n        name: {name}\n        namespace: app\n        inject_timeout: 1s\n        spec: {{ action: pod-failure, mode: one, selector: {{ labelSelectors: {{ {labels} }} }} }}\n"
            ),
        )
    };
    let report = run(&j.journal, &one("nobody", "app: nothing-here")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("PodChaos app/nobody selected nothing") && error.contains("nothing-here"),
        "{error}"
    );
    assert!(experiment(&sim, "PodChaos", "nobody").await.is_none(), "not left in the cluster");

    sim.cluster.chaos_mesh(kubesim::chaos_mesh::ChaosMeshBehaviour {
        stuck_not_injected: true,
        ..Default::default()
    });
    let report = run(&j.journal, &one("stuck", "app: web")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("PodChaos app/stuck was not injected within 1s") && error.contains("Not Injected"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_fault_is_held_for_its_duration_then_recovered() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let source = with_app(
        &sim,
        "    - id: delay\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      with:\n        kind: NetworkChaos\n        namespace: app\n        duration: 1s\n        wait: true\n        spec: { action: delay, mode: all, selector: { labelSelectors: { app: web } }, delay: { latency: 100ms } }\n",
    );
    let report = run(&j.journal, &source).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let delay = outputs_of(&ev, "delay");
    assert!(
        delay["observed"].as_str().unwrap().contains("no independent check of NetworkChaos"),
        "{delay:?}"
    );
    assert_eq!(delay["records"].as_array().unwrap().len(), 2, "{delay:?}");
    assert!(delay["reverted_at"].is_string(), "recovered after its duration: {delay:?}");
    assert!(delay["revert"]["observed"]["recovered_at"].is_string(), "{delay:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_a_killed_engine_left_is_recovered_by_the_resume() {
    let sim = sim(true).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let plan_file = dir.path().join("plan.yaml");
    std::fs::write(
        &plan_file,
        with_app(
            &sim,
            "    - id: chaos\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      with:\n        kind: PodChaos\n        name: left-behind\n        namespace: app\n        spec: { action: pod-failure, mode: all, selector: { labelSelectors: { app: web } } }\n\
             \x20   - id: soak\n      kind: sleep\n      needs: [chaos]\n      with: { duration: 1s }\n",
        ),
    )
    .unwrap();
    let lifeboat = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.arg("--state").arg(&state).args(args);
        c
    };
    let mut first = lifeboat(&["run", plan_file.to_str().unwrap()]).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let injected = experiment(&sim, "PodChaos", "left-behind").await.is_some_and(|o| {
            o["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "AllInjected" && c["status"] == "True"))
        });
        if injected {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the experiment was never injected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await.unwrap();
    assert!(
        experiment(&sim, "PodChaos", "left-behind").await.is_some(),
        "the experiment outlives the killed engine"
    );
    let journal = lifeboat::journal::Journal::open(&state.display().to_string()).await.unwrap();
    let run_id = journal.runs(None, 1).await.unwrap().remove(0).id;
    let resumed = lifeboat(&["resume", &run_id]).output().await.unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(
        experiment(&sim, "PodChaos", "left-behind").await.is_none(),
        "the run, resumed, recovered the experiment"
    );
    let fault = &lifeboat::drill::measure::measure(&journal, &run_id).await.unwrap().faults[0];
    assert!(fault.reverted_at.is_some() && !fault.left_active, "{fault:?}");
    let records = lifeboat::evidence::read::<lifeboat::evidence::fault::FaultRecord>(&journal, &run_id, "chaos")
        .await
        .unwrap();
    let by_resume = fault.revert.as_ref().unwrap().reason.contains("resumed after a crash")
        || records
            .iter()
            .any(|r| matches!(r, lifeboat::evidence::fault::FaultRecord::UndoneAfterCrash(u) if u.note.contains("recovered")));
    assert!(by_resume, "the resume recovered what the dead engine left: {fault:?} {records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breached_guard_recovers_the_experiment_before_the_run_ends() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let source = guarded_app(
        &sim,
        &format!(
            "  guards:\n    - id: checkout-up\n      kind: validation.tcp_probe\n      interval: 100ms\n      failure_threshold: 2\n      with: {{ address: \"127.0.0.1:{port}\" }}\n"
        ),
        "    - id: chaos\n      kind: chaos_mesh.experiment\n      needs: [rolled_out]\n      with:\n        kind: PodChaos\n        name: guarded\n        namespace: app\n        spec: { action: pod-failure, mode: all, selector: { labelSelectors: { app: web } } }\n\
         \x20   - id: soak\n      kind: sleep\n      needs: [chaos]\n      with: { duration: 30s }\n",
    );
    // The guarded endpoint goes down once the fault is in.
    let closer = close_once_created(&sim, ("chaos-mesh.org", "PodChaos", "podchaos"), "guarded", listener);
    let started = std::time::Instant::now();
    let report = run(&j.journal, &source).await;
    closer.await.unwrap();
    assert_eq!(report.status, RunStatus::Aborted);
    assert!(started.elapsed() < Duration::from_secs(20), "the abort cancelled the 30 s soak");
    let f = faults(&j, &report.run_id).await;
    let revert = f[0].revert.as_ref().expect("reverted");
    assert!(revert.error.is_none(), "{revert:?}");
    assert!(experiment(&sim, "PodChaos", "guarded").await.is_none(), "recovered and gone");
}

/// A pod-delete engine `name` against the app's web pods, with `probes` (YAML flow list)
/// and `extra` options.
fn litmus(sim: &Sim, name: &str, probes: &str, extra: &str) -> String {
    with_app(
        sim,
        &format!(
            "    - id: chaos\n      kind: litmus.experiment\n      needs: [rolled_out]\n      mark: disaster\n      with:\n        name: {name}\n        namespace: app\n{extra}\
             \x20       spec:\n          appinfo: {{ appns: app, applabel: app=web, appkind: deployment }}\n          chaosServiceAccount: litmus-admin\n\
             \x20         experiments: [{{ name: pod-delete, spec: {{ probe: {probes} }} }}]\n\
             \x20   - id: back\n      kind: k8s.wait\n      needs: [chaos]\n      mark: recovered\n      with: {{ api_version: apps/v1, kind: Deployment, name: web, namespace: app, jsonpath: '{{.status.readyReplicas}}', value: 2 }}\n"
        ),
    )
}

fn http_probe(url: &str) -> String {
    format!(
        "[{{ name: checkout, type: httpProbe, mode: Continuous, runProperties: {{ probeTimeout: 1s, interval: 1s }}, \"httpProbe/inputs\": {{ url: \"{url}\", method: {{ get: {{ criteria: ==, responseCode: \"200\" }} }} }} }}]"
    )
}

async fn chaos_result(sim: &Sim, name: &str) -> Option<serde_json::Value> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("litmuschaos.io", "v1alpha1", "ChaosResult"), "chaosresults");
    let api: Api<DynamicObject> = Api::namespaced_with(sim.client(), "app", &ar);
    api.get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_litmus_pod_delete_is_judged_by_its_chaos_result_and_times_the_disaster() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    // A service the probe checks, up throughout.
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", up.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in up.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let report = run(&j.journal, &litmus(&sim, "web-chaos", &http_probe(&url), "")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let chaos = outputs_of(&ev, "chaos");
    let result = &chaos["results"][0];
    assert_eq!(
        (result["verdict"].as_str(), result["probe_success_percentage"].as_str()),
        (Some("Pass"), Some("100")),
        "{chaos:?}"
    );
    assert_eq!(chaos["observed"], "a target pod was killed, replaced or restarted", "{chaos:?}");
    let drill = lifeboat::drill::measure::measure(&j.journal, &report.run_id).await.unwrap();
    assert!(drill.rto_ms.is_some(), "RTO from the observed pod kill to two ready replicas");

    // The probe's endpoint down: the experiment fails, and so does the step.
    let closed = format!("http://127.0.0.1:{}/healthz", support::servers::free_port());
    let report = run(&j.journal, &litmus(&sim, "probe-fails", &http_probe(&closed), "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("the ChaosResult says probe-fails-pod-delete verdict Fail"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_result_counts_not_the_engine_and_a_verdict_that_never_comes_stops_the_engine() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    sim.cluster.litmus(kubesim::litmus::LitmusBehaviour {
        result_says_fail: true,
        ..Default::default()
    });
    let report = run(&j.journal, &litmus(&sim, "says-fail", "[]", "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("verdict Fail") && error.contains("the result is what counts"),
        "{error}"
    );

    sim.cluster.litmus(kubesim::litmus::LitmusBehaviour {
        stuck_awaited: true,
        ..Default::default()
    });
    let report = run(
        &j.journal,
        &litmus(&sim, "stuck", "[]", "        timeout: 1s\n        stop_timeout: 5s\n"),
    )
    .await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(error.contains("ChaosEngine app/stuck: no final verdict within 1s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_run_stops_the_litmus_engine() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    sim.cluster.litmus(kubesim::litmus::LitmusBehaviour {
        chaos_time: Duration::from_secs(30),
        ..Default::default()
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let guards = format!(
        "  guards:\n    - id: checkout-up\n      kind: validation.tcp_probe\n      interval: 100ms\n      failure_threshold: 2\n      with: {{ address: \"127.0.0.1:{port}\" }}\n"
    );
    let source = guarded_app(
        &sim,
        &guards,
        "    - id: chaos\n      kind: litmus.experiment\n      needs: [rolled_out]\n      with:\n        name: aborted\n        namespace: app\n        spec: { appinfo: { appns: app, applabel: app=web, appkind: deployment }, chaosServiceAccount: litmus-admin, experiments: [{ name: pod-delete }] }\n",
    );
    let closer = close_once_created(&sim, ("litmuschaos.io", "ChaosEngine", "chaosengines"), "aborted", listener);
    let started = std::time::Instant::now();
    let report = run(&j.journal, &source).await;
    closer.await.unwrap();
    assert_eq!(report.status, RunStatus::Aborted);
    assert!(started.elapsed() < Duration::from_secs(25), "not waited out");
    let result = chaos_result(&sim, "aborted-pod-delete").await.expect("a result");
    assert_eq!(
        result["status"]["experimentStatus"]["verdict"], "Stopped",
        "the abort stopped the engine: {result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_litmus_pod_delete_plan_passes_as_a_drill() {
    let sim = sim(true).await;
    let dir = tempfile::tempdir().unwrap();
    let report = passing_drill(
        (&sim, "kubeconfig"),
        "plans/litmus-pod-delete-drill.yaml",
        &["deploy_app=true".into()],
        dir.path(),
    )
    .await;
    assert_eq!(report["disaster"]["step"], "pod_delete");
    let chaos = report_step(&report, "pod_delete");
    assert_eq!(chaos["outputs"]["results"][0]["verdict"], "Pass", "{chaos}");
    assert_eq!(
        chaos["outputs"]["observed"], "a target pod was killed, replaced or restarted",
        "{chaos}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k8s_region_failover_plan_passes_as_a_drill_with_no_write_lost() {
    let primary = sim(true).await;
    let dr = support::cluster::sim_sharing(&primary).await;
    dr.cluster.velero(kubesim::velero::VeleroBehaviour {
        sync_period: Duration::from_millis(300),
        ..Default::default()
    });
    // Argo CD manages the app in the DR cluster, syncing it by itself.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(dr.client());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "argocd"}})).unwrap();
    namespaces.create(&Default::default(), &ns).await.unwrap();
    let apps_ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"), "applications");
    let apps: Api<DynamicObject> = Api::namespaced_with(dr.client(), "argocd", &apps_ar);
    let app: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "checkout", "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example/checkout.git", "targetRevision": "main", "path": "dr"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "checkout"},
                 "syncPolicy": {"automated": {"selfHeal": true}}},
    }))
    .unwrap();
    apps.create(&Default::default(), &app).await.unwrap();
    let dir = support::servers::shared_tempdir();
    let params = [
        format!("dr_kubeconfig={}", dr.kubeconfig),
        format!("workdir={}", dir.path().join("drill").display()),
        "argocd_application=checkout".to_owned(),
    ];
    let report = passing_drill(
        (&primary, "primary_kubeconfig"),
        "plans/k8s-region-failover.yaml",
        &params,
        dir.path(),
    )
    .await;
    assert_eq!(report["disaster"]["step"], "app_down");
    assert_eq!(report["rows_lost"], 0, "{report}");
    // The database branch runs from detecting the loss to the endpoint's switch.
    let (restore, detect, switch) = (
        report_step(&report, "app_restore"),
        report_step(&report, "detect"),
        report_step(&report, "db_switch"),
    );
    assert!(
        restore["started_at"].as_str() < switch["finished_at"].as_str() && detect["started_at"].as_str() < restore["finished_at"].as_str(),
        "the app's restore and the database's failover ran in parallel: {restore} / {detect} / {switch}"
    );
    let synced = report_step(&report, "gitops_synced");
    assert_eq!(
        (synced["outputs"]["sync_status"].as_str(), synced["outputs"]["health"].as_str()),
        (Some("Synced"), Some("Healthy")),
        "{synced}"
    );
    assert_eq!(
        apps.get("checkout").await.unwrap().data["spec"]["syncPolicy"]["automated"],
        serde_json::json!({"selfHeal": true}),
        "the automated sync held off for the drill is back"
    );
    let service = report_step(&report, "db_service");
    assert_eq!(
        service["outputs"]["endpoints"][0]["addresses"],
        serde_json::json!(["127.0.0.1"]),
        "{service}"
    );
    assert!(!dir.path().join("drill").exists(), "finally removed the databases");
}

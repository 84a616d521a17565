//! Kubernetes step kinds through `kube::Client` against kubesim (tests/kubesim): the real
//! REST protocol, CRDs validated against their schemas. The same plans run against a real
//! cluster by pointing `spec.clusters` at its kubeconfig.

mod support;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use lifeboat::journal::RunStatus;
use support::{events, first_error, outputs_of, plan, run};

struct Sim {
    cluster: kubesim::Cluster,
    running: kubesim::Running,
    _dir: tempfile::TempDir,
    kubeconfig: String,
}

async fn sim(crds: bool) -> Sim {
    let dir = kubesim::Cluster::crds_dir();
    let cluster = kubesim::Cluster::new(crds.then_some(dir.as_path())).unwrap();
    let running = cluster.serve().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig").display().to_string();
    std::fs::write(&kubeconfig, running.kubeconfig()).unwrap();
    Sim {
        cluster,
        running,
        _dir: tmp,
        kubeconfig,
    }
}

impl Sim {
    fn clusters(&self) -> String {
        format!(
            "  clusters:\n    sim: {{ kubeconfig: \"{}\", context: kubesim }}\n",
            self.kubeconfig
        )
    }

    fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.running.url.parse().unwrap());
        config.default_retry = false;
        kube::Client::try_from(config).unwrap()
    }

    async fn replicas(&self, kind: &str, plural: &str, name: &str) -> i64 {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client(), "app", &ar);
        api.get(name).await.unwrap().data["spec"]["replicas"].as_i64().unwrap()
    }
}

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: { name: app }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings, namespace: app }
data: { mode: production }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: app }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, image: nginx }] }
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, namespace: app }
spec:
  serviceName: db
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec: { containers: [{ name: db, image: postgres }] }
"#;

fn indented(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_applied_rolled_out_scaled_and_deleted_on_the_named_cluster() {
    let sim = sim(false).await;
    let j = support::sqlite().await;
    let source = plan(
        "workloads",
        &format!(
            "{}  steps:\n    - id: apply\n      kind: k8s.apply\n      cluster: sim\n      with:\n        manifests: |\n{}\
             \x20   - id: web_rolled_out\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: Deployment, name: web, namespace: app, timeout: 30s }}\n\
             \x20   - id: db_rolled_out\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: StatefulSet, name: db, namespace: app, timeout: 30s }}\n\
             \x20   - id: scale_down\n      kind: k8s.scale\n      needs: [web_rolled_out]\n      with: {{ kind: Deployment, name: web, namespace: app, replicas: 0 }}\n\
             \x20   - id: scaled\n      kind: k8s.wait\n      needs: [scale_down]\n      with: {{ api_version: apps/v1, kind: Deployment, name: web, namespace: app, jsonpath: '{{.status.replicas}}', value: 0, timeout: 30s }}\n\
             \x20   - id: available\n      kind: k8s.wait\n      needs: [db_rolled_out]\n      with: {{ api_version: apps/v1, kind: StatefulSet, name: db, namespace: app, jsonpath: '{{.status.readyReplicas}}', value: 1 }}\n\
             \x20   - id: delete_namespace\n      kind: k8s.delete\n      needs: [scaled, available]\n      with: {{ kind: Namespace, name: app, timeout: 30s }}\n",
            sim.clusters(),
            indented(APP, 10)
        ),
    );
    let report = run(&j.journal, &source).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{}",
        if report.status == RunStatus::Succeeded {
            String::new()
        } else {
            first_error(&ev)
        }
    );
    let applied = outputs_of(&ev, "apply");
    assert_eq!(applied["count"], 4);
    assert_eq!(applied["applied"][2]["kind"], "Deployment");
    assert!(
        outputs_of(&ev, "web_rolled_out")["observed"]
            .as_str()
            .unwrap()
            .contains("2 of 2 updated replicas available")
    );
    assert_eq!(outputs_of(&ev, "scale_down")["previous_replicas"], 2);
    let deleted = outputs_of(&ev, "delete_namespace");
    assert_eq!(deleted["existed"], true);
    assert!(deleted["injected_at"].is_string(), "a deletion is timed as a disaster: {deleted:?}");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sim.client());
    assert!(
        namespaces.get_opt("app").await.unwrap().is_none(),
        "the namespace and all in it are gone"
    );

    // The same plan again: applying is idempotent, deleting what is gone succeeds.
    let again = run(&j.journal, &source).await;
    assert_eq!(again.status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_scale_puts_the_replicas_back() {
    let sim = sim(false).await;
    let j = support::sqlite().await;
    let source = plan(
        "scale-back",
        &format!(
            "{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: scale_down\n      kind: k8s.scale\n      needs: [apply]\n      with: {{ kind: Deployment, name: web, namespace: app, replicas: 0 }}\n\
             \x20     compensate:\n        kind: k8s.scale\n        with: {{ kind: Deployment, name: web, namespace: app, replicas: \"${{{{ steps.scale_down.outputs.previous_replicas }}}}\" }}\n\
             \x20   - id: fails\n      kind: exec\n      needs: [scale_down]\n      on_failure: rollback\n      with: {{ command: [\"false\"] }}\n",
            sim.clusters(),
            indented(APP, 10)
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_ne!(report.status, RunStatus::Succeeded);
    assert_eq!(
        sim.replicas("Deployment", "deployments", "web").await,
        2,
        "the compensation restored the replicas"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_errors_say_what_to_do() {
    let sim = sim(false).await;
    let j = support::sqlite().await;
    let one = |kind: &str, with: &str, cluster: &str| {
        plan(
            "errors",
            &format!(
                "{cluster}  steps:\n    - id: s\n      kind: {kind}\n      retry: {{ attempts: 2, backoff: 100ms }}\n      with: {with}\n"
            ),
        )
    };
    // RBAC refuses: terminal, naming identity, verb, resource and namespace.
    sim.cluster.forbid("patch", "configmaps");
    let report = run(
        &j.journal,
        &one(
            "k8s.apply",
            "{ manifests: [{ apiVersion: v1, kind: ConfigMap, metadata: { name: c, namespace: default } }] }",
            &sim.clusters(),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    let error = first_error(&ev);
    assert!(
        error.contains("cluster `sim`")
            && error.contains("identity system:serviceaccount:lifeboat:runner may not patch configmaps in namespace default"),
        "{error}"
    );
    assert_eq!(support::started(&ev).len(), 1, "a refusal is not retried");

    // A kind the cluster does not serve (Velero not installed).
    let report = run(
        &j.journal,
        &one(
            "k8s.wait",
            "{ api_version: velero.io/v1, kind: Backup, name: b, namespace: velero, jsonpath: '{.status.phase}', value: Completed }",
            &sim.clusters(),
        ),
    )
    .await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(error.contains("does not serve Backup in velero.io/v1"), "{error}");

    // An API server that does not answer: retryable.
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead");
    std::fs::write(
        &dead,
        sim.running
            .kubeconfig()
            .replace(&sim.running.url, &format!("http://127.0.0.1:{}", support::servers::free_port())),
    )
    .unwrap();
    let report = run(
        &j.journal,
        &one(
            "k8s.delete",
            "{ kind: Namespace, name: x, timeout: 1s }",
            &format!("  clusters:\n    sim: {{ kubeconfig: \"{}\" }}\n", dead.display()),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    let error = first_error(&ev);
    assert!(error.contains("unreachable"), "{error}");
    assert_eq!(support::started(&ev).len(), 2, "an unreachable API server is retried");

    // Plans that name clusters wrongly do not compile.
    let two = "  clusters:\n    primary: { context: a }\n    dr: { context: b }\n";
    let bad = plan(
        "bad",
        &format!(
            "{two}  steps:\n    - id: a\n      kind: k8s.delete\n      cluster: drr\n      with: {{ kind: Namespace, name: x }}\n    - id: b\n      kind: k8s.delete\n      with: {{ kind: Namespace, name: x }}\n    - id: c\n      kind: sleep\n      cluster: dr\n      with: {{ duration: 0s }}\n"
        ),
    );
    let diagnostics = lifeboat::plan::compile("bad.yaml", &bad, lifeboat::steps::catalog()).unwrap_err();
    let text = lifeboat::plan::diagnostic::render_all(&diagnostics, &bad);
    assert!(
        text.contains("step `a` uses unknown cluster `drr`") && text.contains("`dr`"),
        "{text}"
    );
    assert!(text.contains("step `b` does not say which cluster it works on"), "{text}");
    assert!(text.contains("`sleep` steps do not work on a Kubernetes cluster"), "{text}");
}

/// A namespace restore drill: back up, delete the namespace (the disaster), restore it
/// under another name, wait for the rollouts (recovered).
fn restore_drill(sim: &Sim, backup_with: &str, restore_with: &str) -> String {
    plan(
        "namespace-restore",
        &format!(
            "  objectives: {{ rto: 1m }}\n{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: velero_ns\n      kind: k8s.apply\n      with: {{ manifests: [{{ apiVersion: v1, kind: Namespace, metadata: {{ name: velero }} }}] }}\n\
             \x20   - id: rolled_out\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: Deployment, name: web, namespace: app }}\n\
             \x20   - id: backup\n      kind: velero.backup\n      needs: [rolled_out, velero_ns]\n      with: {{ included_namespaces: [app], ttl: 720h0m0s{backup_with} }}\n\
             \x20   - id: disaster\n      kind: k8s.delete\n      needs: [backup]\n      mark: disaster\n      with: {{ kind: Namespace, name: app, timeout: 30s }}\n\
             \x20   - id: restore\n      kind: velero.restore\n      needs: [disaster]\n      with: {{ backup: \"${{{{ steps.backup.outputs.name }}}}\", namespace_mapping: {{ app: app-drill }}{restore_with} }}\n\
             \x20   - id: recovered\n      kind: k8s.rollout_wait\n      needs: [restore]\n      mark: recovered\n      with: {{ kind: Deployment, name: web, namespace: app-drill }}\n",
            sim.clusters(),
            indented(APP, 10)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_velero_namespace_restore_drill_measures_its_rto() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let report = run(&j.journal, &restore_drill(&sim, "", "")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{}",
        if report.status == RunStatus::Succeeded {
            String::new()
        } else {
            first_error(&ev)
        }
    );
    let backup = outputs_of(&ev, "backup");
    assert_eq!(backup["phase"], "Completed");
    assert_eq!(
        backup["items"], 4,
        "the namespace, the ConfigMap, the Deployment and the StatefulSet: {backup:?}"
    );
    let restore = outputs_of(&ev, "restore");
    assert_eq!(
        (restore["phase"].as_str(), restore["items"].as_i64()),
        (Some("Completed"), Some(4)),
        "{restore:?}"
    );
    assert_eq!(restore["backup"], backup["name"]);
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(sim.client(), "app-drill");
    let settings = cms.get("settings").await.unwrap();
    assert_eq!(settings.data.unwrap()["mode"], "production", "restored into the mapped namespace");
    let drill = lifeboat::drill::measure::measure(&j.journal, &report.run_id).await.unwrap();
    assert!(
        drill.rto_ms.is_some_and(|ms| ms > 0),
        "RTO from the observed deletion to the rollout: {:?}",
        drill.rto_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn velero_phases_are_judged_and_never_taken_for_done() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    // PartiallyFailed fails the step unless the plan accepts it.
    sim.cluster.velero(kubesim::velero::VeleroBehaviour {
        partial_errors: 2,
        ..Default::default()
    });
    let report = run(&j.journal, &restore_drill(&sim, "", "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("PartiallyFailed with 2 errors") && error.contains("partially_failed: warn"),
        "{error}"
    );
    let report = run(&j.journal, &restore_drill(&sim, ", name: accepted, partially_failed: warn", "")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(outputs_of(&ev, "backup")["errors"], 2);

    // A backup stuck InProgress is waited for, never reported done.
    sim.cluster.velero(kubesim::velero::VeleroBehaviour {
        stuck: true,
        ..Default::default()
    });
    let report = run(&j.journal, &restore_drill(&sim, ", name: stuck, timeout: 2s", "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("did not meet the wait within 2s") && error.contains("InProgress"),
        "{error}"
    );

    // Without Velero's CRDs the cluster says so.
    let bare = self::sim(false).await;
    let report = run(&j.journal, &restore_drill(&bare, "", "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("cluster `sim`: Velero is not installed (no backups.velero.io)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_restore_plan_passes_as_a_drill_against_kubesim() {
    let sim = sim(true).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args([
            "drill",
            "plans/k8s-namespace-restore.yaml",
            "--param",
            &format!("kubeconfig={}", sim.kubeconfig),
        ])
        .arg("--report")
        .arg(&report)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["rto_ms"].as_i64().unwrap() > 0);
    assert_eq!(report["disaster"]["step"], "namespace_deleted");
    let restore = report["steps"].as_array().unwrap().iter().find(|s| s["id"] == "restore").unwrap();
    assert_eq!(
        restore["outputs"]["items"], 6,
        "namespace, ConfigMap, Secret, Service, Deployment, StatefulSet: {restore}"
    );
}

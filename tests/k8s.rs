//! Kubernetes step kinds through `kube::Client` against kubesim (tests/kubesim): the real
//! REST protocol, CRDs validated against their schemas. Tests that need no fault hook run
//! against a real cluster instead when `LIFEBOAT_TEST_KUBECONFIG` names its kubeconfig
//! (see `support::cluster::target`).

mod support;

use kube::api::Api;
use lifeboat::journal::RunStatus;
use std::time::Duration;
use support::cluster::{APP, Sim, indented, passing_drill, report_step, sim, target, why_not};
use support::{events, first_error, outputs_of, plan, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_applied_rolled_out_scaled_and_deleted_on_the_named_cluster() {
    let sim = target(false).await;
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
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
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
    let sim = target(false).await;
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
    let sim = target(true).await;
    let j = support::sqlite().await;
    let report = run(&j.journal, &restore_drill(&sim, "", "")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let backup = outputs_of(&ev, "backup");
    assert_eq!(backup["phase"], "Completed");
    let restore = outputs_of(&ev, "restore");
    assert_eq!(restore["phase"], "Completed", "{restore:?}");
    // A real Velero also takes what controllers made (pods, replica sets, endpoints).
    let expected = sim.exactly_or_more(4);
    assert!(
        expected(backup["items"].as_i64().unwrap()) && expected(restore["items"].as_i64().unwrap()),
        "the namespace, the ConfigMap, the Deployment and the StatefulSet: {backup:?} {restore:?}"
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
async fn the_namespace_restore_plan_passes_as_a_drill() {
    let sim = target(true).await;
    let dir = tempfile::tempdir().unwrap();
    let report = passing_drill((&sim, "kubeconfig"), "plans/k8s-namespace-restore.yaml", &[], dir.path()).await;
    assert_eq!(report["disaster"]["step"], "namespace_deleted");
    let restore = report_step(&report, "restore");
    assert!(
        sim.exactly_or_more(7)(restore["outputs"]["items"].as_i64().unwrap()),
        "namespace, ConfigMap, Secret, Service, Deployment, StatefulSet and its volume claim: {restore}"
    );
    let back = report_step(&report, "every_object_back");
    assert_eq!(
        back["outputs"]["matched"], 6,
        "ConfigMap, Secret, Service, Deployment, StatefulSet and its volume claim: {back}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_its_exit_status_and_log_tail_and_is_not_started_twice() {
    let sim = target(false).await;
    let j = support::sqlite().await;
    let job = |with: &str| {
        plan(
            "job",
            &format!(
                "{}  steps:\n    - id: check\n      kind: k8s.job\n      with: {{ namespace: default, image: busybox, {with} }}\n",
                sim.clusters()
            ),
        )
    };
    let report = run(
        &j.journal,
        &job(r#"command: [sh, -c, "echo checking; echo rows=42"], tail_lines: 1"#),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let out = outputs_of(&ev, "check");
    assert_eq!(
        (out["exit_code"].as_i64(), out["succeeded"].as_bool(), out["reason"].as_str()),
        (Some(0), Some(true), Some("Complete")),
        "{out:?}"
    );
    assert_eq!(out["log_tail"].as_str().unwrap().trim(), "rows=42", "{out:?}");

    let report = run(
        &j.journal,
        &job(r#"command: [sh, -c, "echo 'only 41 rows' >&2; exit 3"], backoff_limit: 1"#),
    )
    .await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("BackoffLimitExceeded") && error.contains("its last pod exited 3") && error.contains("only 41 rows"),
        "{error}"
    );

    // A Job the first attempt started is waited for, not started again (the count is kept
    // in a local file, which only kubesim's Jobs, run as local processes, can write).
    if std::env::var_os("LIFEBOAT_TEST_KUBECONFIG").is_some() {
        return;
    }
    let marks = tempfile::tempdir().unwrap();
    let counter = marks.path().join("runs");
    let command = format!(r#"command: [sh, -c, "echo run >> {}; sleep 1"], name: precheck"#, counter.display());
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(sim.client(), "default");
    let first: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "precheck"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "check", "image": "busybox", "command": ["sh", "-c", format!("echo run >> {}; sleep 1", counter.display())]}
        ]}}}
    }))
    .unwrap();
    jobs.create(&kube::api::PostParams::default(), &first).await.unwrap();
    let report = run(&j.journal, &job(&command)).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(outputs_of(&ev, "check")["created"], false);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n", "the command ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_names_what_is_missing_changed_or_extra() {
    let sim = target(false).await;
    let j = support::sqlite().await;
    let record = plan(
        "record",
        &format!(
            "{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: before\n      kind: validation.k8s_inventory\n      needs: [apply]\n      with: {{ namespaces: [app] }}\n",
            sim.clusters(),
            indented(APP, 10)
        ),
    );
    let report = run(&j.journal, &record).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let before = outputs_of(&ev, "before");
    assert_eq!(before["count"], 3, "ConfigMap, Deployment, StatefulSet: {before:?}");
    let recorded = before["objects"].to_string();
    let compare = |extra: &str| {
        plan(
            "compare",
            &format!(
                "{}  steps:\n    - id: after\n      kind: validation.k8s_inventory\n      with: {{ namespaces: [app], compare_with: '{recorded}'{extra} }}\n",
                sim.clusters()
            ),
        )
    };
    let report = run(&j.journal, &compare("")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(outputs_of(&ev, "after")["matched"], 3);

    // Status changes (the rollouts) are not changes; a changed ConfigMap, a deleted
    // StatefulSet and a new Secret are.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(sim.client(), "app");
    cms.patch(
        "settings",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"data": {"mode": "maintenance"}})),
    )
    .await
    .unwrap();
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(sim.client(), "app");
    sts.delete("db", &Default::default()).await.unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(sim.client(), "app");
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "stray"}, "stringData": {"k": "v"}})).unwrap();
    secrets.create(&Default::default(), &secret).await.unwrap();
    let report = run(&j.journal, &compare("")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("1 of 3 recorded objects came back as recorded")
            && error.contains("missing: StatefulSet app/db")
            && error.contains("changed: ConfigMap app/settings")
            && error.contains("extra: Secret app/stray"),
        "{error}"
    );
    let report = run(&j.journal, &compare(", allow_extra: true")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(!error.contains("extra"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_ride_out_dropped_watches_410s_and_500s_and_slow_phases_are_waited_for() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    sim.cluster.velero(kubesim::velero::VeleroBehaviour {
        phase_delay: Duration::from_millis(700),
        ..Default::default()
    });
    // While the backup is in flight: its watch is dropped, history compacted (410 on the
    // re-watch), and lists and watches of backups answered 500 a few times.
    let faults = {
        let cluster = sim.cluster.clone();
        tokio::spawn(async move {
            for round in 0..10 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                match round % 3 {
                    0 => cluster.drop_watches(),
                    1 => cluster.compact(),
                    _ => {
                        cluster.fail_requests("list", "backups", 1);
                        cluster.fail_requests("watch", "backups", 1);
                    }
                }
            }
        })
    };
    let backup = plan(
        "flaky",
        &format!(
            "{}  steps:\n    - id: backup\n      kind: velero.backup\n      with: {{ included_namespaces: [default], timeout: 30s }}\n",
            sim.clusters()
        ),
    );
    let report = run(&j.journal, &backup).await;
    faults.await.unwrap();
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(outputs_of(&ev, "backup")["phase"], "Completed");

    // A 500 on a plain request is retryable: the step's retry gets through.
    sim.cluster.fail_requests("patch", "configmaps", 1);
    let apply = plan(
        "apply-500",
        &format!(
            "{}  steps:\n    - id: apply\n      kind: k8s.apply\n      retry: {{ attempts: 3, backoff: 100ms }}\n      with: {{ manifests: [{{ apiVersion: v1, kind: ConfigMap, metadata: {{ name: c, namespace: default }} }}] }}\n",
            sim.clusters()
        ),
    );
    let report = run(&j.journal, &apply).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(support::started(&ev).len(), 2, "one 500, then success");

    // Phases slower than the step's timeout are not taken for done.
    sim.cluster.velero(kubesim::velero::VeleroBehaviour {
        phase_delay: Duration::from_secs(3),
        ..Default::default()
    });
    let slow = plan(
        "slow",
        &format!(
            "{}  steps:\n    - id: backup\n      kind: velero.backup\n      with: {{ included_namespaces: [default], timeout: 1s }}\n",
            sim.clusters()
        ),
    );
    let report = run(&j.journal, &slow).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(error.contains("did not meet the wait within 1s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_and_database_restore_plan_passes_as_a_drill() {
    let sim = sim(true).await;
    let dir = support::servers::shared_tempdir();
    let workdir = format!("workdir={}", dir.path().join("drill").display());
    let report = passing_drill((&sim, "kubeconfig"), "plans/app-and-database-restore.yaml", &[workdir], dir.path()).await;
    assert_eq!(report["disaster"]["step"], "namespace_deleted");
    let step = |id: &str| report_step(&report, id);
    let job = step("orders_visible_to_the_app");
    assert!(
        job["outputs"]["log_tail"].as_str().unwrap().contains("orders=1500"),
        "the app's side sees every order committed before the incident: {job}"
    );
    assert_eq!(
        step("every_object_back")["outputs"]["matched"],
        3,
        "the ConfigMap, Service and Deployment: {}",
        step("every_object_back")
    );
    assert_eq!(step("database_restore")["outputs"]["target"], "restore point `before_incident`");
    // The two recovery branches overlapped in time.
    let (velero, pitr) = (step("app_restore"), step("database_restore"));
    assert!(
        velero["started_at"].as_str() < pitr["finished_at"].as_str() && pitr["started_at"].as_str() < velero["finished_at"].as_str(),
        "velero {velero} / pitr {pitr}"
    );
    assert!(!dir.path().join("drill").exists(), "finally removed the drill's directory");
}

/// An Argo CD Application `shop` (automated sync with prune and self-heal) and the `argocd`
/// namespace it lives in.
async fn argocd_application(sim: &Sim) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sim.client());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "argocd"}})).unwrap();
    namespaces.create(&Default::default(), &ns).await.unwrap();
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        "applications",
    );
    let apps: Api<kube::api::DynamicObject> = Api::namespaced_with(sim.client(), "argocd", &ar);
    let app: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example/shop.git", "targetRevision": "main", "path": "deploy"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                 "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}},
    }))
    .unwrap();
    apps.create(&Default::default(), &app).await.unwrap();
}

fn argocd_failover(sim: &Sim, sync_with: &str) -> String {
    plan(
        "gitops",
        &format!(
            "{}  steps:\n    - id: hold\n      kind: argocd.auto_sync\n      with: {{ application: shop, enabled: false }}\n\
             \x20   - id: sync\n      kind: argocd.sync\n      needs: [hold]\n      with: {{ application: shop, revision: dr-cutover, prune: true{sync_with} }}\n\
             \x20 finally:\n    - id: release\n      kind: argocd.auto_sync\n      with: {{ application: shop, enabled: true, policy: \"${{{{ steps.hold.outputs.previous_policy }}}}\" }}\n",
            sim.clusters()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_syncs_with_auto_sync_held_off_and_put_back_and_says_when_it_does_not_settle() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    argocd_application(&sim).await;
    let report = run(&j.journal, &argocd_failover(&sim, "")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let sync = outputs_of(&ev, "sync");
    assert_eq!(
        (
            sync["sync_status"].as_str(),
            sync["health"].as_str(),
            sync["operation_phase"].as_str()
        ),
        (Some("Synced"), Some("Healthy"), Some("Succeeded")),
        "{sync:?}"
    );
    let revision = sync["revision"].as_str().unwrap();
    assert!(
        revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "the branch resolved to the commit synced: {sync:?}"
    );
    assert_eq!(
        outputs_of(&ev, "hold")["previous_policy"],
        serde_json::json!({"prune": true, "selfHeal": true})
    );
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        "applications",
    );
    let apps: Api<kube::api::DynamicObject> = Api::namespaced_with(sim.client(), "argocd", &ar);
    assert_eq!(
        apps.get("shop").await.unwrap().data["spec"]["syncPolicy"]["automated"],
        serde_json::json!({"prune": true, "selfHeal": true}),
        "finally put the automated policy back as it was"
    );

    sim.cluster.argocd(kubesim::argocd::ArgoBehaviour {
        sync_fails: Some("one or more objects failed to apply".into()),
        ..Default::default()
    });
    let report = run(&j.journal, &argocd_failover(&sim, "")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("Application shop: the sync operation ended Failed: one or more objects failed to apply"),
        "{error}"
    );

    sim.cluster.argocd(kubesim::argocd::ArgoBehaviour {
        stays_out_of_sync: true,
        ..Default::default()
    });
    let report = run(&j.journal, &argocd_failover(&sim, ", timeout: 1s")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("Application shop did not become Synced and Healthy") && error.contains("OutOfSync"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_pointed_at_the_standby_pods_an_external_address_or_a_dns_name() {
    let sim = sim(false).await;
    let j = support::sqlite().await;
    let app = r#"
apiVersion: v1
kind: Namespace
metadata: { name: app }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: primary, namespace: app }
spec:
  replicas: 2
  selector: { matchLabels: { role: primary } }
  template:
    metadata: { labels: { role: primary } }
    spec: { containers: [{ name: api, image: api }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: standby, namespace: app }
spec:
  replicas: 1
  selector: { matchLabels: { role: standby } }
  template:
    metadata: { labels: { role: standby } }
    spec: { containers: [{ name: api, image: api }] }
---
apiVersion: v1
kind: Service
metadata: { name: checkout, namespace: app }
spec: { selector: { role: primary }, ports: [{ port: 80 }] }
"#;
    let source = plan(
        "switch",
        &format!(
            "{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: primary_up\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: Deployment, name: primary, namespace: app }}\n\
             \x20   - id: standby_up\n      kind: k8s.rollout_wait\n      needs: [apply]\n      with: {{ kind: Deployment, name: standby, namespace: app }}\n\
             \x20   - id: to_standby\n      kind: traffic.k8s_service\n      needs: [primary_up, standby_up]\n      with: {{ service: checkout, namespace: app, selector: {{ role: standby }} }}\n\
             \x20   - id: to_external\n      kind: traffic.k8s_service\n      needs: [to_standby]\n      with: {{ service: checkout, namespace: app, addresses: [10.20.30.40], port: 5432 }}\n\
             \x20   - id: to_name\n      kind: traffic.k8s_service\n      needs: [to_external]\n      with: {{ service: checkout, namespace: app, external_name: checkout.dr.example }}\n",
            sim.clusters(),
            indented(app, 10)
        ),
    );
    let report = run(&j.journal, &source).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let standby = outputs_of(&ev, "to_standby");
    let endpoints = standby["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{standby:?}");
    assert!(endpoints[0]["pod"].as_str().unwrap().starts_with("standby-"), "{standby:?}");
    assert_eq!(standby["previous_selector"], serde_json::json!({"role": "primary"}));
    let external = outputs_of(&ev, "to_external");
    assert_eq!(
        external["endpoints"][0]["addresses"],
        serde_json::json!(["10.20.30.40"]),
        "{external:?}"
    );
    assert_eq!(external["previous_selector"], serde_json::json!({"role": "standby"}));
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(sim.client(), "app");
    let spec = services.get("checkout").await.unwrap().spec.unwrap();
    assert_eq!(
        (spec.type_.as_deref(), spec.external_name.as_deref()),
        (Some("ExternalName"), Some("checkout.dr.example"))
    );
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> = Api::namespaced(sim.client(), "app");
    assert!(
        slices.get_opt("checkout-lifeboat").await.unwrap().is_none(),
        "the slice lifeboat wrote for the external address went with it"
    );
}

//! Velero across clusters and over time, as plan steps against kubesim: a DR cluster that
//! shares the primary's bucket restores a backup once its storage location synced it (the
//! location set ReadOnly meanwhile and put back after), a schedule's freshness checked
//! against the RPO, and a restore's item-by-item results fetched through a DownloadRequest.

mod support;

use kube::api::{Api, DynamicObject, PostParams};
use lifeboat::journal::RunStatus;
use std::time::Duration;
use support::cluster::{APP, indented, sim, sim_sharing, target, why_not};
use support::{events, first_error, outputs_of, plan, run, run_with};

fn fast_sync() -> kubesim::velero::VeleroBehaviour {
    kubesim::velero::VeleroBehaviour {
        sync_period: Duration::from_millis(300),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dr_cluster_plan_restores_a_backup_once_synced_with_its_location_read_only_meanwhile() {
    let primary = sim(true).await;
    let dr = sim_sharing(&primary).await;
    dr.cluster.velero(fast_sync());
    let j = support::sqlite().await;
    // The application lives in the primary.
    let setup = plan(
        "app",
        &format!(
            "  clusters:\n{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}",
            primary.cluster_entry("primary"),
            indented(APP, 10)
        ),
    );
    assert_eq!(run(&j.journal, &setup).await.status, RunStatus::Succeeded);
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/k8s-dr-cluster-restore.yaml")).unwrap();
    let report = run_with(
        &j.journal,
        &source,
        &[
            ("kubeconfig", &primary.kubeconfig),
            ("dr_kubeconfig", &dr.kubeconfig),
            ("namespace", "app"),
            ("restore_into", "app-dr"),
        ],
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    assert_eq!(outputs_of(&ev, "read_only")["previous_mode"], "ReadWrite");
    let synced = outputs_of(&ev, "synced");
    assert_eq!(synced["phase"], "Completed", "{synced:?}");
    assert_eq!(synced["name"], outputs_of(&ev, "backup")["name"]);
    assert_eq!(outputs_of(&ev, "restore")["phase"], "Completed");
    assert_eq!(
        outputs_of(&ev, "every_object_back")["matched"],
        3,
        "the primary's ConfigMap, Deployment and StatefulSet, in the DR cluster"
    );
    let location = dr
        .velero_object("backupstoragelocations", "BackupStorageLocation", "default")
        .await
        .unwrap();
    assert_eq!(
        location["spec"]["accessMode"], "ReadWrite",
        "finally put the location back: {location}"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(dr.client(), "app-dr");
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["mode"], "production");

    // While the location is ReadOnly, Velero refuses to back up into it, and so does the step.
    let refused = plan(
        "read-only",
        &format!(
            "  clusters:\n{}  steps:\n    - id: read_only\n      kind: velero.storage_location\n      with: {{ access_mode: ReadOnly }}\n\
             \x20   - id: backup\n      kind: velero.backup\n      needs: [read_only]\n      with: {{ included_namespaces: [app-dr] }}\n",
            dr.cluster_entry("dr")
        ),
    );
    let report = run(&j.journal, &refused).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(error.contains("FailedValidation") && error.contains("read-only"), "{error}");

    // A backup the DR cluster never syncs is waited for, then reported with what to check.
    dr.cluster.velero(kubesim::velero::VeleroBehaviour {
        sync_period: Duration::from_secs(3600),
        ..Default::default()
    });
    let never = plan(
        "never-synced",
        &format!(
            "  clusters:\n{}  steps:\n    - id: synced\n      kind: velero.wait_backup_sync\n      with: {{ backup: not-there, timeout: 1s }}\n",
            dr.cluster_entry("dr")
        ),
    );
    let report = run(&j.journal, &never).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains("did not meet the wait within 1s") && error.contains("backup storage location"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_whose_newest_backup_is_older_than_the_rpo_fails_the_preflight() {
    let sim = sim(true).await;
    let j = support::sqlite().await;
    let schedules: Api<DynamicObject> = Api::namespaced_with(
        sim.client(),
        "velero",
        &kube::api::ApiResource::from_gvk_with_plural(&kube::api::GroupVersionKind::gvk("velero.io", "v1", "Schedule"), "schedules"),
    );
    let schedule: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": "nightly", "namespace": "velero"},
        "spec": {"schedule": "0 3 * * *", "template": {"includedNamespaces": ["default"]}},
    }))
    .unwrap();
    schedules.create(&PostParams::default(), &schedule).await.unwrap();
    let check = |with: &str| {
        plan(
            "preflight",
            &format!(
                "  objectives: {{ rpo: 1h }}\n  clusters:\n{}  steps:\n    - id: check\n      kind: velero.check_schedule\n      with: {{ schedule: nightly{with} }}\n",
                sim.cluster_entry("sim")
            ),
        )
    };

    let report = run(&j.journal, &check("")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(error.contains("schedule nightly has no Completed backup"), "{error}");

    let taken = sim.cluster.run_schedule("velero", "nightly");
    let done = plan(
        "taken",
        &format!(
            "  clusters:\n{}  steps:\n    - id: done\n      kind: k8s.wait\n      with: {{ api_version: velero.io/v1, kind: Backup, name: {taken}, namespace: velero, jsonpath: '{{.status.phase}}', value: Completed, timeout: 30s }}\n",
            sim.cluster_entry("sim")
        ),
    );
    assert_eq!(run(&j.journal, &done).await.status, RunStatus::Succeeded);
    let report = run(&j.journal, &check("")).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let fresh = outputs_of(&ev, "check");
    assert_eq!(fresh["last_completed"], taken.as_str());
    assert!(fresh["age_seconds"].as_f64().unwrap() < 60.0, "{fresh:?}");
    assert_eq!(fresh["max_age_seconds"], 3600.0, "the plan's RPO objective: {fresh:?}");

    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    sim.cluster.backdate(
        "velero.io",
        "backups",
        "velero",
        &taken,
        serde_json::json!({"completionTimestamp": two_hours_ago}),
    );
    let report = run(&j.journal, &check("")).await;
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert!(
        error.contains(&format!("newest Completed backup {taken} is 2h"))
            && error.contains("older than the allowed 1h: the RPO cannot be met"),
        "{error}"
    );
    let report = run(&j.journal, &check(", max_age: 3h")).await;
    assert_eq!(report.status, RunStatus::Succeeded, "an explicit max_age overrides the objective");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restores_item_by_item_results_are_fetched_as_evidence() {
    let sim = target(true).await;
    let j = support::sqlite().await;
    // Restoring over the live namespace after its ConfigMap changed: Velero leaves the
    // identical objects alone and warns about the changed one in the restore's results.
    let source = plan(
        "over-live",
        &format!(
            "  clusters:\n{}  steps:\n    - id: apply\n      kind: k8s.apply\n      with:\n        manifests: |\n{}\
             \x20   - id: backup\n      kind: velero.backup\n      needs: [apply]\n      with: {{ included_namespaces: [app] }}\n\
             \x20   - id: change\n      kind: k8s.apply\n      needs: [backup]\n      with: {{ manifests: [{{ apiVersion: v1, kind: ConfigMap, metadata: {{ name: settings, namespace: app }}, data: {{ mode: maintenance }} }}] }}\n\
             \x20   - id: restore\n      kind: velero.restore\n      needs: [change]\n      with: {{ backup: \"${{{{ steps.backup.outputs.name }}}}\" }}\n",
            sim.cluster_entry("sim"),
            indented(APP, 10)
        ),
    );
    let report = run(&j.journal, &source).await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}", why_not(&report, &ev));
    let restore = outputs_of(&ev, "restore");
    assert!(sim.exactly_or_more(1)(restore["warnings"].as_i64().unwrap()), "{restore:?}");
    let warned = restore["results"]["warnings"]["namespaces"]["app"]
        .as_array()
        .unwrap_or_else(|| panic!("per-item warnings from the DownloadRequest: {restore:?}"));
    assert!(
        warned
            .iter()
            .any(|w| w.as_str().unwrap().contains("ConfigMap \"settings\" already exists")),
        "{warned:?}"
    );
}

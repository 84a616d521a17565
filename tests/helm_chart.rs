//! The Helm chart (deploy/helm/lifeboat) checked with the real tools: the official `helm`
//! (lint, template, install), `kubernetes-validate` against the Kubernetes schemas, `checkov`
//! for RBAC and pod-security findings, `promtool` on the alert rules and on every query of
//! the Grafana dashboard, whose metric names are checked against a live `/metrics`. The
//! install goes into kubesim, and the operator then runs as the installed Deployment says.

mod support;

use kube::api::{Api, PostParams};
use lifeboat::operator::crd::{Phase, Run};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/lifeboat")
}

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed ({}):\n{text}", out.status);
    out
}

/// `helm` with its caches in a temporary home (never the user's).
fn helm(binary: &str, home: &Path) -> Command {
    let mut c = Command::new(binary);
    c.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    c
}

/// The value sets CI renders: the defaults (one replica on SQLite), and everything on.
const VALUE_SETS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    (
        "replicated-all-features",
        &[
            "journal.postgres.existingSecret=lifeboat-journal",
            "replicaCount=3",
            "rbac.features.velero.enabled=true",
            "rbac.features.chaosMesh.enabled=true",
            "rbac.features.litmus.enabled=true",
            "rbac.features.argocd.enabled=true",
            "rbac.features.workloads.enabled=true",
            "rbac.features.workloads.namespaces={app,payments}",
            "monitoring.serviceMonitor.enabled=true",
            "monitoring.prometheusRule.enabled=true",
            "monitoring.grafanaDashboard.enabled=true",
            "serve.tokensSecret=lifeboat-tokens",
            "networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.team=sre",
        ],
    ),
];

fn with_values<'a>(command: &'a mut Command, values: &[&str]) -> &'a mut Command {
    for v in values {
        command.args(["--set", v]);
    }
    command
}

#[test]
fn the_chart_lints_validates_and_scans_clean_for_every_value_set() {
    let (Some(helm_bin), Some(validate), Some(checkov)) = (
        support::installed_tool("LIFEBOAT_TEST_HELM"),
        support::installed_tool("LIFEBOAT_TEST_KUBERNETES_VALIDATE"),
        support::installed_tool("LIFEBOAT_TEST_CHECKOV"),
    ) else {
        return;
    };
    // Not a hidden folder (tempfile's default `.tmp…`): checkov skips those silently.
    let home = tempfile::Builder::new().prefix("helm-chart").tempdir().unwrap();
    for (name, values) in VALUE_SETS {
        run(with_values(
            helm(&helm_bin, home.path()).args(["lint", "--strict"]).arg(chart()),
            values,
        ));
        let out = home.path().join(name);
        run(with_values(
            helm(&helm_bin, home.path())
                .args(["template", "lb", "--namespace", "dr", "--include-crds", "--output-dir"])
                .arg(&out)
                .arg(chart()),
            values,
        ));
        let files = yaml_files(&out);
        assert!(files.len() >= 9, "{name}: rendered only {files:?}");
        let validated = run(Command::new(&validate).args(["-k", "1.33.0", "--strict"]).args(&files));
        let report = String::from_utf8_lossy(&validated.stdout).to_string() + &String::from_utf8_lossy(&validated.stderr);
        // Every built-in kind and the CRDs are checked; only Prometheus Operator kinds lack a schema.
        for line in report.lines().filter(|l| l.starts_with("WARN")) {
            assert!(line.contains("monitoring.coreos.com"), "{name}: {line}");
        }
        assert!(report.contains("customresourcedefinition/runs.lifeboat.dev"), "{report}");
        assert!(report.contains("passed for resource deployment/lb-lifeboat"), "{report}");
        // Findings are fixed, or skipped on the object with the reason beside them.
        let scan = Command::new(&checkov)
            .args(["--framework", "kubernetes", "--compact", "--skip-download", "-o", "json", "-d"])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&scan.stdout);
        let results: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: checkov said no JSON ({e}):\n{text}"));
        // One report, or one per kind of check it ran.
        let reports: Vec<&Value> = match &results {
            Value::Array(all) => all.iter().collect(),
            one => vec![one],
        };
        let total = |field: &str| reports.iter().map(|r| r["summary"][field].as_i64().unwrap_or(0)).sum::<i64>();
        let summary = json!({"passed": total("passed"), "failed": total("failed"), "skipped": total("skipped")});
        let failed: Vec<&Value> = reports
            .iter()
            .flat_map(|r| r["results"]["failed_checks"].as_array().into_iter().flatten())
            .collect();
        assert!(
            scan.status.success() && summary["failed"] == 0,
            "{name}: checkov ({}) findings: {failed:#?}\n{summary}\n{}",
            scan.status,
            String::from_utf8_lossy(&scan.stderr)
        );
        assert!(summary["passed"].as_i64().unwrap() > 50, "{name}: {summary}");
        assert!(
            summary["skipped"].as_i64().unwrap() <= 4,
            "{name}: every skip is justified on its object: {summary}"
        );
    }
    // Values that cannot work are refused at render, saying why.
    let refused = helm(&helm_bin, home.path())
        .args(["template", "lb", "--set", "replicaCount=2"])
        .arg(chart())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs a PostgreSQL journal"));
    let refused = helm(&helm_bin, home.path())
        .args(["template", "lb", "--set", "serve.config.plans={plans}"])
        .arg(chart())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("RecoveryPlan"));
}

#[test]
fn the_plain_manifests_are_the_chart_rendered_with_its_defaults() {
    let Some(helm_bin) = support::installed_tool("LIFEBOAT_TEST_HELM") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let out = run(helm(&helm_bin, home.path())
        .args(["template", "lifeboat", "--namespace", "lifeboat", "--include-crds"])
        .arg(chart()));
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/manifests/lifeboat.yaml")).unwrap();
    let rendered = String::from_utf8(out.stdout).unwrap();
    let (header, body) = shipped.split_once('\n').unwrap();
    assert!(header.starts_with("# Rendered by scripts/render-manifests.sh"));
    assert!(
        body == rendered,
        "deploy/manifests/lifeboat.yaml is stale: run scripts/render-manifests.sh"
    );
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn the_chart_ships_the_crds_the_operator_generates_and_they_are_structural() {
    let shipped = std::fs::read_to_string(chart().join("crds/lifeboat.dev.yaml")).unwrap();
    let generated = lifeboat::operator::crd::yaml();
    assert!(
        shipped.ends_with(&generated),
        "deploy/helm/lifeboat/crds/lifeboat.dev.yaml is stale: regenerate it with `lifeboat operator crds` (see its first line)"
    );
    for crd in lifeboat::operator::crd::all() {
        let value = serde_json::to_value(&crd).unwrap();
        for version in value["spec"]["versions"].as_array().unwrap() {
            let schema = &version["schema"]["openAPIV3Schema"];
            let mut problems = Vec::new();
            structural_problems(schema, "", &mut problems);
            assert!(
                problems.is_empty(),
                "{}: not structural:\n{}",
                crd.metadata.name.unwrap(),
                problems.join("\n")
            );
            assert!(version["subresources"]["status"].is_object());
        }
    }
}

/// What the API server's structural-schema check refuses (a subset: the rules our
/// generated schemas could break).
fn structural_problems(node: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(object) = node.as_object() else { return };
    let open = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !object.contains_key("type") && !open && !object.contains_key("x-kubernetes-int-or-string") {
        problems.push(format!("{path}: no type"));
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    if object.get("additionalProperties") == Some(&Value::Bool(true)) {
        problems.push(format!(
            "{path}: additionalProperties: true (use x-kubernetes-preserve-unknown-fields)"
        ));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for (i, branch) in object.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for banned in ["type", "description", "default", "nullable", "additionalProperties"] {
                if branch.get(banned).is_some() {
                    problems.push(format!("{path}.{key}[{i}]: `{banned}` inside {key}"));
                }
            }
        }
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array)
        && values.iter().any(Value::is_null)
    {
        problems.push(format!("{path}: null in enum"));
    }
    if let Some(pattern) = object.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(pattern).is_err()
    {
        problems.push(format!("{path}: pattern {pattern} is not RE2"));
    }
    for (key, child) in object.get("properties").and_then(Value::as_object).into_iter().flatten() {
        structural_problems(child, &format!("{path}.{key}"), problems);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = object.get(key) {
            structural_problems(child, &format!("{path}.{key}"), problems);
        }
    }
}

/// The chart's PrometheusRule, rendered, as a Prometheus rules file (JSON is YAML).
fn rendered_rules(helm_bin: &str, home: &Path) -> Value {
    let out = run(helm(helm_bin, home)
        .args([
            "template",
            "lb",
            "--set",
            "monitoring.prometheusRule.enabled=true",
            "--set",
            "monitoring.prometheusRule.maxDaysWithoutPassingDrill=3",
            "--show-only",
            "templates/prometheusrule.yaml",
        ])
        .arg(chart()));
    let rule: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    json!({ "groups": rule["spec"]["groups"] })
}

#[test]
fn the_alert_rules_pass_promtool_and_fire_exactly_when_they_should() {
    let Some(helm_bin) = support::installed_tool("LIFEBOAT_TEST_HELM") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let rules = rendered_rules(&helm_bin, home.path());
    let alerts: BTreeSet<&str> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for wanted in [
        "LifeboatDrillFailed",
        "LifeboatRTOObjectiveBreached",
        "LifeboatRPOObjectiveBreached",
        "LifeboatNoRecentPassingDrill",
        "LifeboatBackupOlderThanRPO",
        "LifeboatScheduleLagging",
        "LifeboatNoSchedulerLeader",
    ] {
        assert!(alerts.contains(wanted), "no {wanted} in {alerts:?}");
    }
    let dir = home.path();
    std::fs::write(dir.join("rules.yaml"), rules.to_string()).unwrap();
    run(Command::new("promtool").arg("check").arg("rules").arg(dir.join("rules.yaml")));
    // Each rule gets series that must fire it and series that must not: over 15 minutes
    // (one sample a minute) for the rules that fire at once, over four days for the rules
    // held for hours or days.
    let tests = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                { "series": "lifeboat_drill_passed{plan=\"a\"}", "values": "0x15" },
                { "series": "lifeboat_drill_passed{plan=\"b\"}", "values": "1x15" },
                { "series": "lifeboat_drill_rto_seconds{plan=\"a\"}", "values": "120x15" },
                { "series": "lifeboat_drill_rto_seconds{plan=\"b\"}", "values": "30x15" },
                { "series": "lifeboat_drill_rpo_seconds{plan=\"a\"}", "values": "30x15" },
                { "series": "lifeboat_drill_rpo_seconds{plan=\"b\"}", "values": "4000x15" },
                { "series": "lifeboat_plan_rto_objective_seconds{plan=\"a\"}", "values": "60x15" },
                { "series": "lifeboat_plan_rto_objective_seconds{plan=\"b\"}", "values": "60x15" },
                { "series": "lifeboat_plan_rpo_objective_seconds{plan=\"a\"}", "values": "300x15" },
                { "series": "lifeboat_plan_rpo_objective_seconds{plan=\"b\"}", "values": "3600x15" },
                { "series": "lifeboat_drill_last_pass_timestamp_seconds{plan=\"a\"}", "values": "-300000x15" },
                { "series": "lifeboat_drill_last_pass_timestamp_seconds{plan=\"b\"}", "values": "0x15" },
                { "series": "lifeboat_backup_last_success_timestamp_seconds{plan=\"a\",step=\"base\"}", "values": "0x15" },
                { "series": "lifeboat_backup_last_success_timestamp_seconds{plan=\"b\",step=\"base\"}", "values": "0x15" },
                { "series": "lifeboat_scheduler_leader{pod=\"x\"}", "values": "0x15" },
                { "series": "lifeboat_schedule_occurrences_total{schedule=\"nightly\",outcome=\"missed\"}", "values": "0 0 0 1x12" },
                { "series": "lifeboat_schedule_occurrences_total{schedule=\"hourly\",outcome=\"missed\"}", "values": "0x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"slow\",le=\"30\"}", "values": "0x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"slow\",le=\"120\"}", "values": "0+1x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"slow\",le=\"+Inf\"}", "values": "0+1x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"fast\",le=\"30\"}", "values": "0+1x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"fast\",le=\"120\"}", "values": "0+1x15" },
                { "series": "lifeboat_schedule_lag_seconds_bucket{schedule=\"fast\",le=\"+Inf\"}", "values": "0+1x15" },
            ],
            "alert_rule_test": [
                { "eval_time": "10m", "alertname": "LifeboatDrillFailed", "exp_alerts": [{
                    "exp_labels": { "severity": "warning", "plan": "a" },
                    "exp_annotations": {
                        "summary": "The latest drill of a failed",
                        "description": "The plan's latest finished drill did not succeed or missed an objective; its report is linked from the dashboard (/ui/drills/a)."
                    }
                }]},
                { "eval_time": "10m", "alertname": "LifeboatRTOObjectiveBreached", "exp_alerts": [{
                    "exp_labels": { "severity": "critical", "plan": "a" },
                    "exp_annotations": {
                        "summary": "a recovered in 2m 0s, over its RTO objective",
                        "description": "The latest drill measured a recovery time above the plan's RTO objective."
                    }
                }]},
                { "eval_time": "10m", "alertname": "LifeboatRPOObjectiveBreached", "exp_alerts": [{
                    "exp_labels": { "severity": "critical", "plan": "b" },
                    "exp_annotations": {
                        "summary": "b lost 1h 6m 40s of data, over its RPO objective",
                        "description": "The latest drill measured a recovery point above the plan's RPO objective."
                    }
                }]},
                // time() is 600 s at 10m: a's last pass is 300,600 s old (over 3 days), b's 600 s.
                { "eval_time": "10m", "alertname": "LifeboatNoRecentPassingDrill", "exp_alerts": [{
                    "exp_labels": { "severity": "warning", "plan": "a" },
                    "exp_annotations": {
                        "summary": "a has not passed a drill in 3 days",
                        "description": "Recovery that is not rehearsed is not proven; run or schedule a drill of the plan."
                    }
                }]},
                // The backups are 600 s old at 10m: over a's RPO (300 s), not b's (3600 s).
                { "eval_time": "10m", "alertname": "LifeboatBackupOlderThanRPO", "exp_alerts": [{
                    "exp_labels": { "severity": "critical", "plan": "a", "step": "base" },
                    "exp_annotations": {
                        "summary": "The backup step base of a last succeeded longer ago than the plan's RPO",
                        "description": "For a plan that takes the backups its RPO depends on; a restore now would lose more data than the objective allows."
                    }
                }]},
                { "eval_time": "10m", "alertname": "LifeboatScheduleOccurrencesMissed", "exp_alerts": [{
                    "exp_labels": { "severity": "warning", "schedule": "nightly" },
                    "exp_annotations": {
                        "summary": "Schedule nightly missed occurrences in the last hour",
                        "description": "No scheduler ran when they were due and they fell outside the catch-up window."
                    }
                }]},
                // slow's p95 lag interpolates to 115.5 s in its (30, 120] bucket; fast's to 28.5 s.
                { "eval_time": "14m", "alertname": "LifeboatScheduleLagging", "exp_alerts": [{
                    "exp_labels": { "severity": "warning", "schedule": "slow" },
                    "exp_annotations": {
                        "summary": "Drills of schedule slow start 1m 55s late (p95)",
                        "description": "Occurrences wait long for a free replica; add replicas or raise --max-runs."
                    }
                }]},
                { "eval_time": "1m", "alertname": "LifeboatNoSchedulerLeader", "exp_alerts": [] },
                { "eval_time": "5m", "alertname": "LifeboatNoSchedulerLeader", "exp_alerts": [{
                    "exp_labels": { "severity": "critical" },
                    "exp_annotations": {
                        "summary": "No lifeboat replica leads the scheduler",
                        "description": "Scheduled drills are not firing; check the replicas and their journal."
                    }
                }]},
            ]
        }, {
            // Rules held for hours or days: four days of samples.
            "interval": "1m",
            "input_series": [
                { "series": "lifeboat_plan_rto_objective_seconds{plan=\"untested\"}", "values": "60x6000" },
                { "series": "lifeboat_plan_rpo_objective_seconds{plan=\"rpo-only\"}", "values": "60x6000" },
                { "series": "lifeboat_plan_rto_objective_seconds{plan=\"proven\"}", "values": "60x6000" },
                { "series": "lifeboat_drill_last_pass_timestamp_seconds{plan=\"proven\"}", "values": "0+60x6000" },
                { "series": "lifeboat_emergency_stop_engaged{pod=\"x\"}", "values": "0 1x6000" },
                { "series": "lifeboat_scheduler_leader{pod=\"x\"}", "values": "1x6000" },
            ],
            "alert_rule_test": [
                { "eval_time": "2d", "alertname": "LifeboatPlanNeverPassedDrill", "exp_alerts": [] },
                { "eval_time": "4d", "alertname": "LifeboatPlanNeverPassedDrill", "exp_alerts": [
                    { "exp_labels": { "severity": "warning", "plan": "rpo-only" },
                      "exp_annotations": {
                        "summary": "rpo-only has objectives but no passing drill for 3 days",
                        "description": "The plan declares objectives and none of its recent drills passed." } },
                    { "exp_labels": { "severity": "warning", "plan": "untested" },
                      "exp_annotations": {
                        "summary": "untested has objectives but no passing drill for 3 days",
                        "description": "The plan declares objectives and none of its recent drills passed." } },
                ]},
                { "eval_time": "0h", "alertname": "LifeboatEmergencyStopEngaged", "exp_alerts": [] },
                { "eval_time": "2h", "alertname": "LifeboatEmergencyStopEngaged", "exp_alerts": [{
                    "exp_labels": { "severity": "info" },
                    "exp_annotations": {
                        "summary": "The lifeboat emergency stop has been engaged for 30 minutes",
                        "description": "Drills are aborted and schedules held until someone releases it (POST /api/v1/emergency-stop/release)."
                    }
                }]},
                { "eval_time": "4d", "alertname": "LifeboatNoSchedulerLeader", "exp_alerts": [] },
            ]
        }]
    });
    std::fs::write(dir.join("tests.yaml"), tests.to_string()).unwrap();
    run(Command::new("promtool").arg("test").arg("rules").arg(dir.join("tests.yaml")));
}

/// Every PromQL query of the Grafana dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(chart().join("files/grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    collect_targets(&dashboard["panels"], &mut queries);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"].as_str().and_then(|q| q.strip_prefix("label_values(")) {
            let metric = query.split([',', ')']).next().unwrap().trim();
            queries.push(metric.to_owned());
        }
    }
    queries
        .into_iter()
        .map(|q| {
            q.replace("$__rate_interval", "5m")
                .replace("$__interval", "1m")
                .replace("${plan}", ".*")
                .replace("$plan", ".*")
        })
        .collect()
}

fn collect_targets(panels: &Value, out: &mut Vec<String>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().expect("every target has a PromQL expr").to_owned());
        }
        collect_targets(&panel["panels"], out);
    }
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\blifeboat_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

/// A drill with every measurement the metrics carry: objectives, a canary for the RPO, a
/// Velero backup (on `sim`), a disaster and the recovery.
fn measured_drill(dsn: &str, clusters: &str) -> String {
    format!(
        r#"apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: {{ name: measured }}
spec:
  objectives: {{ rto: 5m, rpo: 1m }}
{clusters}  steps:
    - id: canary
      kind: validation.canary
      with: {{ dsn: "{dsn}", interval: 20ms }}
    - id: base
      kind: velero.backup
      with: {{ included_namespaces: [default], timeout: 30s }}
    - id: disaster
      kind: chaos.sql
      needs: [canary, base]
      mark: disaster
      with: {{ dsn: "{dsn}", statement: "SELECT 1" }}
    - id: stop_canary
      kind: validation.canary_stop
      needs: [disaster]
      with: {{ canary: canary }}
    - id: rpo
      kind: validation.rpo
      needs: [stop_canary]
      mark: recovered
      with: {{ dsn: "{dsn}", canary: canary, disaster_at: "${{{{ steps.disaster.outputs.injected_at }}}}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_rules_query_only_metrics_that_serve_exports() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    // Syntax: each query as a recording rule, checked by promtool.
    let dir = tempfile::tempdir().unwrap();
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"record": format!("dashboard:query_{i}"), "expr": q}))
        .collect();
    std::fs::write(
        dir.path().join("dashboard.yaml"),
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    run(Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(dir.path().join("dashboard.yaml")));

    let mut queried = BTreeSet::new();
    for q in &queries {
        queried.extend(metric_names(q));
    }
    if let Some(helm_bin) = support::installed_tool("LIFEBOAT_TEST_HELM") {
        let home = tempfile::tempdir().unwrap();
        let rules = rendered_rules(&helm_bin, home.path());
        for rule in rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
        {
            queried.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 14, "{queried:?}");

    // Existence: a live service exports a family once it has a series, so the service is
    // given everything its metrics describe: a measured drill with a backup in its journal,
    // a schedule firing runs it drives, and a webhook delivery.
    let Ok(admin) = std::env::var("LIFEBOAT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must check the metrics with PostgreSQL (the drill's canary)"
        );
        eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; checked the queries' syntax only");
        return;
    };
    let database = support::postgres(&admin).await;
    let sim = support::cluster::sim(true).await;
    let drill = measured_drill(&database.url, &sim.clusters());
    let config = "schedules:
  - { name: tick, plan: sleepy, cron: \"* * * * * *\" }
webhooks:
  - name: am
    kind: alertmanager
    bearer_env: T_AM
    routes:
      - { name: db, matchers: ['service=\"db\"'], plan: sleepy }
";
    let serve_dir = support::serve::ServeDir::new(
        config,
        &[
            ("measured.yaml", drill.clone()),
            ("sleepy.yaml", support::serve::sleepy_plan("sleepy", 1)),
        ],
    );
    let state = serve_dir.dir.path().join("journal.db").display().to_string();
    let journal = lifeboat::journal::Journal::open(&state).await.unwrap();
    let report = support::run(&journal, &drill).await;
    let events = support::events(&journal, &report.run_id).await;
    assert_eq!(
        report.status,
        lifeboat::journal::RunStatus::Succeeded,
        "{}",
        support::first_error(&events)
    );
    journal.close().await;
    let serve = support::serve::Serve::start(
        &serve_dir.config(),
        &state,
        serve_dir.port,
        serve_dir.dir.path().join("serve.log"),
        &[],
    );
    let delivery = json!({ "version": "4", "status": "firing", "receiver": "lifeboat", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "", "groupKey": "g", "truncatedAlerts": 0,
        "alerts": [{ "status": "firing", "labels": { "alertname": "Down", "service": "db" }, "annotations": {},
            "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f1" }] });
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{}/webhooks/am", serve.url))
        .bearer_auth(support::serve::AM_TOKEN)
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = client
            .get(format!("{}/metrics", serve.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let exported = exported_names(&body);
        let missing: Vec<&String> = queried.iter().filter(|m| !exported.contains(*m)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queried but not exported: {missing:?}\n/metrics:\n{body}\nserve log:\n{}",
            std::fs::read_to_string(&serve.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sample names a Prometheus text exposition offers.
fn exported_names(body: &str) -> BTreeSet<String> {
    let mut exported = BTreeSet::new();
    for line in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        exported.insert(name.to_owned());
        if kind == "histogram" {
            exported.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
        }
    }
    exported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_and_its_operator_runs_a_run_created_with_kubectl_to_success() {
    let (Some(helm_bin), Some(kubectl)) = (
        support::installed_tool("LIFEBOAT_TEST_HELM"),
        support::installed_tool("LIFEBOAT_TEST_KUBECTL"),
    ) else {
        return;
    };
    let Ok(admin) = std::env::var("LIFEBOAT_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must run the install test on PostgreSQL");
        eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; skipping (the replicated install needs PostgreSQL)");
        return;
    };
    // kubesim starts with the chart's CRDs (it has no CRD API, so helm installs with --skip-crds).
    let sim = support::cluster::sim_with_crds(&chart().join("crds")).await;
    let journal = support::postgres(&admin).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(sim.client(), "default");
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "lifeboat-journal"},
        "stringData": {"url": journal.url},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();

    // Helm keeps its release records in PostgreSQL (its sql driver): its Secret driver
    // speaks protobuf, which kubesim does not.
    let home = tempfile::tempdir().unwrap();
    let records = format!("{}?sslmode=disable", admin);
    let installed = helm(&helm_bin, home.path())
        .env("HELM_DRIVER", "sql")
        .env("HELM_DRIVER_SQL_CONNECTION_STRING", &records)
        .args([
            "install",
            "lb",
            "--namespace",
            "default",
            "--skip-crds",
            "--kubeconfig",
            &sim.kubeconfig,
        ])
        .args([
            "--set",
            "journal.postgres.existingSecret=lifeboat-journal",
            "--set",
            "replicaCount=2",
        ])
        .args(["--set", "monitoring.grafanaDashboard.enabled=true"])
        .arg(chart())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&installed.stdout).to_string() + &String::from_utf8_lossy(&installed.stderr);
    assert!(installed.status.success(), "helm install failed:\n{text}");
    assert!(text.contains("STATUS: deployed"), "{text}");

    // kubesim runs no pods for Deployments: each replica is started here exactly as the
    // installed Deployment's container says (args, env from fields and Secrets, the
    // ConfigMap's serve.yaml), on a loopback port instead of the pod's.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(sim.client(), "default");
    let deployment = serde_json::to_value(deployments.get("lb-lifeboat").await.unwrap()).unwrap();
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
    assert_eq!(replicas, 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(sim.client(), "default");
    let config = configmaps.get("lb-lifeboat").await.unwrap();
    let config_file = home.path().join("serve.yaml");
    std::fs::write(&config_file, &config.data.unwrap()["serve.yaml"]).unwrap();
    let mut operators = Vec::new();
    for i in 0..replicas {
        let pod_name = format!("lb-lifeboat-{i}");
        let mut args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let listen = args.iter().position(|a| a == "--listen").unwrap();
        args.drain(listen..listen + 2);
        let config_at = args.iter().position(|a| a == "--config").unwrap();
        args[config_at + 1] = config_file.display().to_string();
        let mut env: Vec<(String, String)> = vec![("KUBECONFIG".into(), sim.kubeconfig.clone())];
        for var in container["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap().to_owned();
            let value = if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.namespace" => "default".to_owned(),
                    "metadata.name" => pod_name.clone(),
                    other => panic!("unexpected fieldRef {other}"),
                }
            } else if let Some(secret) = var["valueFrom"]["secretKeyRef"].as_object() {
                let found = secrets.get(secret["name"].as_str().unwrap()).await.unwrap();
                let key = secret["key"].as_str().unwrap();
                let data = found.data.unwrap_or_default();
                String::from_utf8(data[key].0.clone()).unwrap()
            } else {
                var["value"].as_str().unwrap().to_owned()
            };
            env.push((name, value));
        }
        assert!(env.iter().any(|(k, v)| k == "LIFEBOAT_STATE" && *v == journal.url));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        operators.push(support::serve::Serve::start_command(
            &args,
            None,
            support::servers::free_port(),
            home.path().join(format!("{pod_name}.log")),
            &env,
            None,
        ));
    }

    let manifest = home.path().join("drill.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{}---\napiVersion: lifeboat.dev/v1alpha1\nkind: Run\nmetadata: {{ name: first-drill }}\nspec: {{ plan: failover-drill }}\n",
            support::timed_drill("failover-drill", "500ms", "")
        ),
    )
    .unwrap();
    run(Command::new(&kubectl)
        .args(["--kubeconfig", &sim.kubeconfig, "apply", "-f"])
        .arg(&manifest));
    let runs: Api<Run> = Api::namespaced(sim.client(), "default");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = runs.get("first-drill").await.unwrap().status;
        if let Some(s) = status.as_ref().filter(|s| s.phase.is_some_and(Phase::is_final)) {
            break s.clone();
        }
        let logs: String = operators
            .iter()
            .map(|o| std::fs::read_to_string(&o.log).unwrap_or_default())
            .collect();
        assert!(Instant::now() < deadline, "the Run did not finish: {status:#?}\n{logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let out = run(Command::new(&kubectl).args(["--kubeconfig", &sim.kubeconfig, "get", "runs"]));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{table}");
    let row = table.lines().find(|l| l.starts_with("first-drill")).unwrap();
    assert!(row.contains("Succeeded") && row.contains("Pass"), "{table}");
    assert!(row.contains(status.rto.as_deref().unwrap()), "{table}");
    assert!(status.rto_seconds.unwrap() >= 0.5);
}

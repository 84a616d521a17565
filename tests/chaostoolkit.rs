//! Chaos Toolkit experiments run unchanged with the real `chaos` CLI (installed from PyPI by
//! scripts/test.sh), their journal turned into evidence.

mod support;

use lifeboat::journal::RunStatus;
use support::{events, first_error, outputs_of, plan, run};

/// The `chaos` CLI, or `None` outside CI when it is not installed.
fn chaos() -> Option<String> {
    support::installed_tool("LIFEBOAT_TEST_CHAOS")
}

/// An experiment in the style of the Chaos Toolkit's own examples: a process-provider probe
/// as the steady state, an action as the fault, a rollback that undoes it.
fn experiment(method_removes_marker: bool) -> String {
    let action = if method_removes_marker {
        r#"{"type": "action", "name": "remove-marker", "provider": {"type": "process", "path": "rm", "arguments": "-f marker"}}"#
    } else {
        r#"{"type": "action", "name": "inject", "provider": {"type": "process", "path": "touch", "arguments": "injected"}}"#
    };
    format!(
        r#"{{
  "version": "1.0.0",
  "title": "The marker survives the fault",
  "description": "A steady state, a fault, a check, a rollback.",
  "steady-state-hypothesis": {{
    "title": "The marker exists",
    "probes": [{{"type": "probe", "name": "marker-exists", "tolerance": 0,
                 "provider": {{"type": "process", "path": "test", "arguments": "-f marker"}}}}]
  }},
  "method": [
    {action},
    {{"type": "probe", "name": "list", "provider": {{"type": "process", "path": "ls"}}}}
  ],
  "rollbacks": [
    {{"type": "action", "name": "restore-marker", "provider": {{"type": "process", "path": "touch", "arguments": "marker"}}}}
  ]
}}"#
    )
}

#[tokio::test]
async fn an_experiment_runs_unchanged_and_its_journal_becomes_evidence() {
    let Some(chaos) = chaos() else { return };
    let j = support::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "").unwrap();
    let holding = dir.path().join("holding.json");
    std::fs::write(&holding, experiment(false)).unwrap();
    let source = plan(
        "ctk",
        &format!(
            "  steps:\n    - id: experiment\n      kind: chaostoolkit.experiment\n      with: {{ experiment: \"{}\", chaos: \"{chaos}\" }}\n",
            holding.display()
        ),
    );
    let report = run(&j.journal, &source).await;
    let recorded = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", recorded);
    let out = outputs_of(&recorded, "experiment");
    assert_eq!(out["status"], "completed");
    assert_eq!(out["deviated"], false);
    assert_eq!(out["steady_state_before"], true);
    assert_eq!(out["steady_state_after"], true);
    let activities: Vec<&str> = out["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(activities, ["inject", "list"]);
    let injected_at = chrono::DateTime::parse_from_rfc3339(out["injected_at"].as_str().unwrap()).unwrap();
    let action_end = chrono::DateTime::parse_from_rfc3339(out["activities"][0]["end"].as_str().unwrap()).unwrap();
    assert_eq!(injected_at, action_end, "the fault counts from when the first action finished");
    assert!(dir.path().join("injected").exists(), "the action ran, in the experiment's folder");

    let deviating = dir.path().join("deviating.json");
    std::fs::write(&deviating, experiment(true)).unwrap();
    let source = plan(
        "ctk-deviates",
        &format!(
            "  steps:\n    - id: experiment\n      kind: chaostoolkit.experiment\n      with: {{ experiment: \"{}\", chaos: \"{chaos}\", rollback_strategy: always }}\n",
            deviating.display()
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = first_error(&events(&j.journal, &report.run_id).await);
    assert_eq!(
        error,
        "the steady state deviated after the method: probes marker-exists did not meet their tolerance"
    );
    assert!(dir.path().join("marker").exists(), "the rollback restored what the method removed");
}

/// An experiment imported as a plan runs as a drill with a verdict: its first action is the
/// disaster, its steady state checked again afterwards is the recovery.
#[test]
fn an_imported_experiment_runs_as_a_drill_with_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "").unwrap();
    let experiment = dir.path().join("holding.json");
    std::fs::write(&experiment, experiment_with_configuration()).unwrap();
    let plan = dir.path().join("plan.yaml");
    let lifeboat = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let imported = lifeboat(&[
        "import",
        "chaostoolkit",
        experiment.to_str().unwrap(),
        "--to",
        plan.to_str().unwrap(),
        "--rto",
        "30s",
    ]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let text = std::fs::read_to_string(&plan).unwrap();
    for expected in [
        "id: \"before-marker-exists\"",
        "mark: \"disaster\"",
        "id: \"after-marker-exists\"",
        "mark: \"recovered\"",
        "finally:",
        "${{ params.marker_file }}",
    ] {
        assert!(
            text.contains(expected) || text.contains(&expected.replace('"', "")),
            "missing `{expected}` in:\n{text}"
        );
    }
    let drill = lifeboat(&["drill", plan.to_str().unwrap(), "--report", "drill.json"]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("drill.json")).unwrap()).unwrap();
    assert!(
        drill.status.success(),
        "{}{}",
        String::from_utf8_lossy(&drill.stdout),
        String::from_utf8_lossy(&drill.stderr)
    );
    assert_eq!(report["passed"], true);
    assert_eq!(report["disaster"]["step"], "inject");
    assert_eq!(report["recovered"]["step"], "after-marker-exists");
    assert!(report["rto_ms"].as_i64().unwrap() >= 0);
    assert!(dir.path().join("injected").exists() && dir.path().join("rolled-back").exists());

    // HTTP providers: probes poll with the tolerance as expected statuses or a body regex.
    let http = dir.path().join("http.yaml");
    std::fs::write(
        &http,
        "title: Checkout stays up\ndescription: d\nconfiguration:\n  base: { type: env, key: SHOP_URL }\nsteady-state-hypothesis:\n  title: up\n  probes:\n    - { type: probe, name: health, tolerance: [200, 204], provider: { type: http, url: \"${base}/health\" } }\n    - { type: probe, name: ready, tolerance: { type: regex, target: body, pattern: ready }, provider: { type: http, url: \"${base}/ready\" } }\nmethod:\n  - { type: action, name: break-it, provider: { type: http, url: \"${base}/break\", method: POST, arguments: { seconds: 5 } } }\n",
    )
    .unwrap();
    let converted = lifeboat(&["import", "chaostoolkit", http.to_str().unwrap()]);
    assert!(converted.status.success(), "{}", String::from_utf8_lossy(&converted.stderr));
    let text = String::from_utf8_lossy(&converted.stdout);
    for expected in [
        "kind: \"validation.http_probe\"",
        "url: \"${{ env.SHOP_URL }}/health\"",
        "- 204",
        "body_regex: \"ready\"",
        "kind: \"http\"",
        "method: \"POST\"",
        "seconds: 5",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }

    // What cannot be converted is refused with the reason.
    let python = dir.path().join("python.json");
    std::fs::write(
        &python,
        r#"{"title": "t", "description": "d", "method": [{"type": "action", "name": "kill", "provider": {"type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods"}}]}"#,
    )
    .unwrap();
    let refused = lifeboat(&["import", "chaostoolkit", python.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("activity `kill`: a `python` provider runs through the `chaos` CLI"),
        "{stderr}"
    );
    assert!(stderr.contains("no steady-state probes"), "{stderr}");

    // A Python activity of the method runs through the real `chaos` CLI, as a one-activity
    // experiment written beside the plan.
    let Some(chaos) = chaos() else { return };
    let with_python = dir.path().join("with-python.json");
    std::fs::write(
        &with_python,
        experiment_with_configuration().replace(
            r#"{"type": "action", "name": "inject", "provider": {"type": "process", "path": "touch", "arguments": ["injected"]}}"#,
            r#"{"type": "action", "name": "inject", "provider": {"type": "process", "path": "touch", "arguments": ["injected"]}},
    {"type": "action", "name": "check-in-python", "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "${marker_file}"}}}"#,
        ),
    )
    .unwrap();
    let python_plan = dir.path().join("python-plan.yaml");
    let imported = lifeboat(&[
        "import",
        "chaostoolkit",
        with_python.to_str().unwrap(),
        "--to",
        python_plan.to_str().unwrap(),
        "--chaos",
        &chaos,
    ]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert!(dir.path().join("python-plan.yaml.activities/check-in-python.json").is_file());
    let drill = lifeboat(&["drill", python_plan.to_str().unwrap(), "--report", "python.json"]);
    assert!(
        drill.status.success(),
        "{}{}",
        String::from_utf8_lossy(&drill.stdout),
        String::from_utf8_lossy(&drill.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("python.json")).unwrap()).unwrap();
    let step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "check-in-python")
        .unwrap();
    assert_eq!(step["kind"], "chaostoolkit.experiment");
    assert_eq!(step["outputs"]["status"], "completed");
}

fn experiment_with_configuration() -> String {
    r#"{
  "version": "1.0.0",
  "title": "Marker survives an injected fault",
  "description": "N/A",
  "configuration": { "marker_file": "marker" },
  "steady-state-hypothesis": {
    "title": "The marker exists",
    "probes": [{"type": "probe", "name": "marker-exists", "tolerance": 0,
                "provider": {"type": "process", "path": "test", "arguments": "-f ${marker_file}"}}]
  },
  "method": [
    {"type": "action", "name": "inject", "provider": {"type": "process", "path": "touch", "arguments": ["injected"]}}
  ],
  "rollbacks": [
    {"type": "action", "name": "note-rollback", "provider": {"type": "process", "path": "touch", "arguments": "rolled-back"}}
  ]
}"#
    .to_owned()
}

//! Chaos Toolkit experiments run unchanged with the real `chaos` CLI (installed from PyPI by
//! scripts/test.sh), their journal turned into evidence.

mod support;

use lifeboat::journal::RunStatus;
use support::{events, first_error, outputs_of, plan, run};

/// The `chaos` CLI, or `None` outside CI when it is not installed.
fn chaos() -> Option<String> {
    match std::env::var("LIFEBOAT_TEST_CHAOS") {
        Ok(path) => Some(path),
        Err(_) if std::env::var("CI").is_ok() => panic!("CI must test the Chaos Toolkit: run the suite through scripts/test.sh"),
        Err(_) => {
            eprintln!("note: LIFEBOAT_TEST_CHAOS unset; skipping (scripts/test.sh installs the Chaos Toolkit)");
            None
        }
    }
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

//! Drills judged by monitoring, against the real servers from Debian's packages: PromQL
//! probes, guards and windows against Prometheus scraping a service the test controls, and
//! silences and alerts in Alertmanager, checked with `amtool`.

mod support;

use lifeboat::journal::{Event, RunStatus};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::monitoring::{Alertmanager, App, Prometheus, installed};
use support::{events, first_error, outputs_of, plan, run};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A plan of one step of `kind` with `with` (YAML flow mapping), tried up to three times.
fn one_step(kind: &str, with: &str) -> String {
    plan(
        "promql",
        &format!("  steps:\n    - id: check\n      kind: {kind}\n      retry: {{ attempts: 3, backoff: 100ms }}\n      with: {with}\n"),
    )
}

fn attempts(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::StepStarted { .. })).count()
}

#[tokio::test]
async fn promql_probes_judge_what_prometheus_answers_and_refuse_bad_queries() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(dir.path(), 0.0);
    let prometheus = Prometheus::start(app.port, None, None);
    prometheus.wait_for(r#"up{job="demo"}"#, |v| v == 1.0).await;
    let j = support::sqlite().await;
    let url = &prometheus.url;

    // The SLO met: the evidence is the query, the instant and every sample with its labels.
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: 'up{{job="demo"}}', condition: "== 1" }}"#),
        ),
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "check");
    let detail = &out["detail"];
    assert_eq!(detail["query"], r#"up{job="demo"}"#);
    assert_eq!(detail["condition"], "== 1");
    assert_eq!(detail["samples"][0]["labels"]["instance"], format!("127.0.0.1:{}", app.port));
    assert_eq!(detail["samples"][0]["value"], 1.0);
    assert!(detail["evaluated_at"].is_string());

    // A query Prometheus cannot parse: terminal at once, with Prometheus's own message.
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: "sum(rate(", condition: "< 1" }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = first_error(&ev);
    assert!(error.contains("400 Bad Request") && error.contains("parse error"), "{error}");
    assert_eq!(attempts(&ev), 1, "a bad query is not retried");

    // Several series where one was expected: an error naming them, not retried.
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: 'demo_requests_total{{job="demo"}}', condition: ">= 0" }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    let error = first_error(&ev);
    assert!(
        error.contains("returned 2 series where one was expected") && error.contains(r#"code="200""#) && error.contains(r#"code="500""#),
        "{error}"
    );
    assert_eq!(attempts(&ev), 1);
    // ...and `series: all` judges each of them.
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: 'demo_requests_total{{job="demo"}}', condition: ">= 0", series: all }}"#),
        ),
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded);

    // An empty result: `fail` stops at once, `pass` passes, `wait` keeps polling.
    let nothing = r#"up{job="no-such-job"}"#;
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: '{nothing}', condition: "== 1" }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert!(first_error(&ev).contains("returned no series"), "{}", first_error(&ev));
    assert_eq!(attempts(&ev), 1);
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: '{nothing}', condition: "== 1", on_empty: pass }}"#),
        ),
    )
    .await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: '{nothing}', condition: "== 1", on_empty: wait, interval: 100ms, timeout: 1s }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert!(first_error(&ev).contains("did not pass within 1s"), "{}", first_error(&ev));
    assert_eq!(attempts(&ev), 3, "waiting in vain is retryable");

    // An unreachable server is retryable: the probe polls, then the step is retried.
    let closed = support::servers::free_port();
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "http://127.0.0.1:{closed}", query: "vector(1)", condition: "== 1", interval: 100ms, timeout: 500ms }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    assert!(first_error(&ev).contains("is unreachable"), "{}", first_error(&ev));
    assert_eq!(attempts(&ev), 3);

    // A condition that cannot be read is the plan's error, reported with its step.
    let bad = one_step(
        "validation.prometheus_probe",
        &format!(r#"{{ url: "{url}", query: "vector(1)", condition: "=< 1" }}"#),
    );
    let diagnostics = lifeboat::plan::compile("test.yaml", &bad, lifeboat::steps::catalog()).unwrap_err();
    let rendered = lifeboat::plan::diagnostic::render_all(&diagnostics, &bad);
    assert!(
        rendered.contains("invalid condition `=< 1`") && rendered.contains("within [0.5, 2]"),
        "{rendered}"
    );
}

#[tokio::test]
async fn promql_probes_authenticate_and_say_when_credentials_are_refused() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(dir.path(), 0.0);
    let prometheus = Prometheus::start(app.port, None, Some(("drill", "s3cret-drill-pass")));
    let j = support::sqlite().await;
    let url = &prometheus.url;
    let report = run(
        &j.journal,
        &one_step(
            "validation.prometheus_probe",
            &format!(r#"{{ url: "{url}", query: "vector(1)", condition: "== 1" }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &report.run_id).await;
    let error = first_error(&ev);
    assert!(
        error.contains("401 Unauthorized") && error.contains("check the credentials in `auth`"),
        "{error}"
    );
    assert_eq!(attempts(&ev), 1, "refused credentials are not retried");

    // SAFETY: the variable is set before any thread of this test reads the environment.
    unsafe { std::env::set_var("LIFEBOAT_TEST_PROM_PASSWORD", "s3cret-drill-pass") };
    let source = one_step(
        "validation.prometheus_probe",
        &format!(
            r#"{{ url: "{url}", query: "vector(1)", condition: "== 1", auth: {{ basic: {{ username: drill, password: "${{{{ env.LIFEBOAT_TEST_PROM_PASSWORD }}}}" }} }} }}"#
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let rows = j.journal.events(&report.run_id).await.unwrap();
    assert!(
        !serde_json::to_string(&rows.iter().map(|r| &r.event).collect::<Vec<_>>())
            .unwrap()
            .contains("s3cret-drill-pass"),
        "the password never reaches the journal"
    );
}

#[tokio::test]
async fn a_promql_window_lists_the_points_that_broke_the_condition() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(dir.path(), 0.2);
    let prometheus = Prometheus::start(app.port, None, None);
    let ratio = r#"sum(rate(demo_requests_total{code="500"}[3s])) / sum(rate(demo_requests_total[3s]))"#;
    prometheus.wait_for(ratio, |v| v > 0.1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let j = support::sqlite().await;
    let url = &prometheus.url;
    let broken = run(
        &j.journal,
        &one_step(
            "validation.prometheus_range",
            &format!(r#"{{ url: "{url}", query: '{ratio}', condition: "< 0.05", window: 3s, resolution: 1s }}"#),
        ),
    )
    .await;
    let ev = events(&j.journal, &broken.run_id).await;
    let error = first_error(&ev);
    assert!(error.contains("was not < 0.05 at") && error.contains("{} @ "), "{error}");
    assert_eq!(attempts(&ev), 1, "a window that is over gives the same points again");

    let held = run(
        &j.journal,
        &one_step(
            "validation.prometheus_range",
            &format!(r#"{{ url: "{url}", query: '{ratio}', condition: "within [0.1, 0.3]", window: 3s, resolution: 1s }}"#),
        ),
    )
    .await;
    assert_eq!(
        held.status,
        RunStatus::Succeeded,
        "{:?}",
        first_error(&events(&j.journal, &held.run_id).await)
    );
    let out = outputs_of(&events(&j.journal, &held.run_id).await, "check");
    assert!(out["points"].as_u64().unwrap() >= 3, "{out:?}");
    assert_eq!(out["violation_count"], 0);
}

/// The whole stack for the drill plan: the service, Alertmanager, Prometheus alerting into it.
struct Stack {
    dir: tempfile::TempDir,
    app: App,
    alertmanager: Alertmanager,
    prometheus: Prometheus,
}

impl Stack {
    async fn start(error_ratio: f64) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), error_ratio);
        let alertmanager = Alertmanager::start();
        let prometheus = Prometheus::start(app.port, Some(&alertmanager), None);
        prometheus.wait_for(r#"up{job="demo"}"#, |v| v == 1.0).await;
        Stack {
            dir,
            app,
            alertmanager,
            prometheus,
        }
    }

    fn lifeboat(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.arg("--state")
            .arg(self.dir.path().join("state.db"))
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        c
    }

    fn drill(&self) -> Command {
        let mut c = self.lifeboat();
        c.args(["drill", "plans/service-slo-drill.yaml"])
            .args(["--param", &format!("prometheus={}", self.prometheus.url)])
            .args(["--param", &format!("alertmanager={}", self.alertmanager.url)])
            .args(["--param", &format!("pid_file={}", self.app.pid_file.display())])
            .args(["--param", &format!("restart={}", self.app.restart_command())])
            .args(["--param", "settle=3s"])
            .arg("--report")
            .arg(self.dir.path().join("report.json"));
        c
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("report.json")).unwrap()).unwrap()
    }

    /// The silences lifeboat made for `run`, as amtool lists them (expired or not).
    fn silences_of(&self, run: &str, expired: bool) -> Vec<serde_json::Value> {
        self.alertmanager
            .silences(expired)
            .into_iter()
            .filter(|s| s["comment"].as_str().unwrap_or_default().contains(&format!("lifeboat run {run},")))
            .collect()
    }

    fn runs(&self) -> serde_json::Value {
        let out = self.lifeboat().args(["runs", "--output", "json"]).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}

#[tokio::test]
async fn the_monitoring_drill_passes_silenced_and_is_judged_by_promql() {
    if !installed() {
        return;
    }
    let stack = Stack::start(0.0).await;
    let out = stack.drill().output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stack.report();
    let run_id = report["run_id"].as_str().unwrap().to_owned();
    let rto = &report["objectives"][0];
    assert_eq!(rto["name"], "RTO");
    assert_eq!(rto["met"], true, "{report}");
    assert_eq!(
        report["recovered"]["step"], "recovered",
        "the PromQL probe is the recovered mark: {report}"
    );
    assert!(report["rto_ms"].as_i64().unwrap() > 0);

    // Monitoring saw the outage, and the silence kept it from paging.
    let runs = stack
        .lifeboat()
        .args(["runs", "show", &run_id, "--output", "json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let step = |id: &str| shown["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    let noticed = step("noticed")["outputs"].clone();
    let silence = step("silence")["outputs"].clone();
    assert_eq!(noticed["state"], "suppressed", "{noticed}");
    assert_eq!(noticed["labels"]["alertname"], "ServiceDown");
    assert_eq!(noticed["silenced_by"][0], silence["silence_id"], "{noticed} {silence}");
    assert!(noticed["fired_after_ms"].as_i64().unwrap() >= 0);
    let recovered = step("recovered")["outputs"].clone();
    assert_eq!(recovered["detail"]["samples"][0]["value"], 1.0, "{recovered}");

    // The silence ended with the run: amtool lists it as expired, none is active.
    assert!(stack.silences_of(&run_id, false).is_empty(), "no silence of the run is left active");
    let expired = stack.silences_of(&run_id, true);
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["id"], silence["silence_id"]);
    assert!(expired[0]["comment"].as_str().unwrap().contains("DR drill of demo"));
}

#[tokio::test]
async fn an_error_ratio_guard_halts_the_drill_and_the_silence_still_ends() {
    if !installed() {
        return;
    }
    let stack = Stack::start(0.5).await;
    stack
        .prometheus
        .wait_for(
            r#"sum(rate(demo_requests_total{code="500"}[10s])) / sum(rate(demo_requests_total[10s]))"#,
            |v| v > 0.05,
        )
        .await;
    let out = stack.drill().output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("error_ratio"), "the breach names the guard: {t}");
    let runs = stack.runs();
    assert_eq!(runs[0]["status"], "aborted", "{runs}");
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    assert!(stack.silences_of(&run_id, false).is_empty());
    assert_eq!(stack.silences_of(&run_id, true).len(), 1);
}

impl Stack {
    /// Starts the drill and SIGKILLs the engine while step `noticed` waits for the alert,
    /// with the silence in force; returns the run id.
    fn drill_killed_mid_run(&self) -> String {
        let earlier = self.runs()[0]["id"].clone();
        let mut engine = self.drill().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let run_id = loop {
            if let Some(id) = self.runs()[0]["id"].as_str().filter(|id| earlier != *id) {
                break id.to_owned();
            }
            assert!(Instant::now() < deadline, "no run appeared");
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            let out = self
                .lifeboat()
                .args(["runs", "show", &run_id, "--output", "json"])
                .output()
                .unwrap();
            let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let running = shown["steps"]
                .as_array()
                .is_some_and(|steps| steps.iter().any(|s| s["id"] == "noticed" && s["status"] == "running"));
            if running {
                break;
            }
            assert!(Instant::now() < deadline, "step `noticed` never ran: {shown}");
            std::thread::sleep(Duration::from_millis(20));
        }
        engine.kill().unwrap();
        engine.wait().unwrap();
        assert_eq!(
            self.silences_of(&run_id, false).len(),
            1,
            "the dead engine's silence is still in force"
        );
        run_id
    }
}

#[tokio::test]
async fn a_silence_left_by_a_killed_engine_is_taken_over_then_expired() {
    if !installed() {
        return;
    }
    let stack = Stack::start(0.0).await;
    let run_id = stack.drill_killed_mid_run();
    let out = stack.lifeboat().args(["resume", &run_id]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stack.silences_of(&run_id, false).is_empty(),
        "the resumed run expired it at its end"
    );
    let expired = stack.silences_of(&run_id, true);
    assert_eq!(
        expired.len(),
        1,
        "the resumed run took the silence over, it made no second one: {expired:?}"
    );

    // An engine that died after Alertmanager created the silence but before its id reached
    // the journal left only the intent: the silence is found by the marker in its comment.
    let run_id = stack.drill_killed_mid_run();
    let journal = lifeboat::journal::Journal::open(&stack.dir.path().join("state.db").display().to_string())
        .await
        .unwrap();
    let mut intent = journal.channel(&run_id, "silence/silence").await.unwrap();
    assert!(intent[0].payload["id"].is_string(), "{:?}", intent[0].payload);
    intent[0].payload["id"] = serde_json::Value::Null;
    journal.put_records(&run_id, "silence/silence", &intent).await.unwrap();
    drop(journal);
    let out = stack.lifeboat().args(["resume", &run_id]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stack.silences_of(&run_id, false).is_empty());
    assert_eq!(stack.silences_of(&run_id, true).len(), 1, "found by its marker, not made twice");

    // Aborting a run whose engine died stops it and expires its silence too.
    let run_id = stack.drill_killed_mid_run();
    let out = stack
        .lifeboat()
        .args(["abort", &run_id, "--reason", "drill called off"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an aborted run did not succeed: {}", text(&out));
    assert!(text(&out).contains("aborted"), "{}", text(&out));
    assert!(stack.silences_of(&run_id, false).is_empty(), "the aborted run expired it");
    assert_eq!(stack.silences_of(&run_id, true).len(), 1);
}

//! `lifeboat serve` as users run it: real `serve` processes (killed with SIGKILL, stopped
//! with SIGTERM) on a SQLite journal and as three replicas on a real PostgreSQL, schedules
//! in compressed time, the API with its tokens, `/metrics` checked by `promtool`.

mod support;

use lifeboat::journal::requests::{RequestFilter, RequestState};
use lifeboat::journal::schedules::OccurrenceOutcome;
use lifeboat::journal::{Event, Journal, RunStatus};
use serde_json::json;
use std::time::{Duration, Instant};
use support::serve::{ADMIN_TOKEN, APPROVER_TOKEN, Api, READER_TOKEN, Serve, ServeDir, sleepy_plan};

const EVERY_SECOND: &str = "schedules:
  - name: tick
    plan: sleepy
    cron: \"* * * * * *\"
    overlap: allow
";

/// Every occurrence from the first to the last decided is there once, with no gap; the
/// fired ones each became one run that succeeded. Returns (fired, late-fired) counts.
async fn assert_every_occurrence_once(journal: &Journal, schedule: &str) -> (usize, usize) {
    let occurrences = journal.occurrences(schedule, 10_000).await.unwrap();
    assert!(occurrences.len() >= 5, "too few occurrences decided: {occurrences:?}");
    let instants: Vec<i64> = occurrences.iter().map(|o| o.scheduled_at.timestamp()).rev().collect();
    let expected: Vec<i64> = (instants[0]..=*instants.last().unwrap()).collect();
    assert_eq!(
        instants, expected,
        "every second from the first to the last occurrence is decided exactly once"
    );
    let mut fired = 0;
    let mut late = 0;
    for o in &occurrences {
        if o.outcome != OccurrenceOutcome::Fired {
            continue;
        }
        fired += 1;
        if o.decided_at - o.scheduled_at > chrono::TimeDelta::seconds(1) {
            late += 1;
        }
        let id = o.run_id.as_deref().expect("a fired occurrence names its run");
        let run = journal
            .run(id)
            .await
            .unwrap_or_else(|e| panic!("occurrence {} has no run {id}: {e}", o.scheduled_at));
        assert_eq!(run.status, RunStatus::Succeeded, "run {id} of occurrence {}", o.scheduled_at);
        let request = journal.request(id).await.unwrap().expect("the run's request");
        assert_eq!(request.scheduled_at, Some(o.scheduled_at), "the run records its scheduled time");
        assert!(request.started_at.unwrap() >= o.scheduled_at, "started after it was due");
    }
    let requests = journal
        .requests(&RequestFilter {
            schedule: Some(schedule.into()),
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(requests.len(), fired, "one request per fired occurrence, no more");
    (fired, late)
}

/// Waits until nothing is queued or running in the journal.
async fn wait_all_finished(journal: &Journal, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let running = journal.running_runs().await.unwrap();
        let queued = journal
            .requests(&RequestFilter {
                state: Some(RequestState::Queued),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        if running.is_empty() && queued.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs still unfinished: {:?}, queued: {:?}",
            running.iter().map(|r| (&r.id, r.display_status())).collect::<Vec<_>>(),
            queued.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_each_occurrence_once_across_a_crash_and_a_restart() {
    let dir = ServeDir::new(EVERY_SECOND, &[("sleepy.yaml", sleepy_plan("sleepy", 50))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let log = dir.dir.path().join("serve.log");
    let mut serve = Serve::start(&dir.config(), &state, dir.port, log.clone(), &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    serve.kill();
    // Occurrences due while nothing ran are a few seconds late: they still fire, once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let serve = Serve::start(&dir.config(), &state, dir.port, log.clone(), &[]);
    // The dead leader's lease expires first (5 s), then the new one catches up.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    let (status, paused) = admin
        .post("/api/v1/schedules/tick/pause", json!({ "note": "database migration" }))
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["by"], "admin");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let journal = Journal::open(&state).await.unwrap();
    wait_all_finished(&journal, Duration::from_secs(30)).await;
    let schedules = admin.get("/api/v1/schedules").await.1;
    let skipped = schedules[0]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "skipped")
        .cloned()
        .unwrap_or_else(|| panic!("no occurrence skipped while paused: {schedules:#}"));
    assert_eq!(skipped["reason"], "the schedule is paused by admin: database migration");
    assert_eq!(schedules[0]["paused_by"], "admin");
    drop(serve);
    let (fired, late) = assert_every_occurrence_once(&journal, "tick").await;
    assert!(fired >= 8, "fired {fired}");
    assert!(late >= 1, "the occurrences due during the crash fired late, after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_unauthenticated_and_underprivileged_calls_and_records_who_acted() {
    let body = "schedules:
  - name: nightly
    plan: sleepy
    cron: \"0 0 2 * * *\"
    timezone: Europe/Berlin
";
    let dir = ServeDir::new(body, &[("sleepy.yaml", sleepy_plan("sleepy", 10))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    let anonymous = reqwest::get(format!("{}/api/v1/runs", serve.url)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let forged = Api::new(&serve.url, "not-a-token-of-this-service");
    assert_eq!(forged.get("/api/v1/runs").await.0, 401);
    let reader = Api::new(&serve.url, READER_TOKEN);
    let (status, refused) = reader.post("/api/v1/runs", json!({ "plan": "sleepy" })).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("lacks the `run` scope"), "{refused}");
    assert_eq!(reader.post("/api/v1/schedules/nightly/pause", json!({})).await.0, 403);

    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    let (status, unknown) = admin.post("/api/v1/runs", json!({ "plan": "sleepyy" })).await;
    assert_eq!(status, 422);
    assert!(unknown["error"].as_str().unwrap().contains("did you mean `sleepy`"), "{unknown}");
    let (status, bad_param) = admin
        .post("/api/v1/runs", json!({ "plan": "sleepy", "params": { "servce": "db" } }))
        .await;
    assert_eq!(status, 422, "{bad_param}");
    assert!(bad_param["error"].as_str().unwrap().contains("servce"), "{bad_param}");

    // A run that needs an approval waits for someone with the approve scope.
    let (status, held) = admin
        .post(
            "/api/v1/runs",
            json!({ "plan": "sleepy", "params": { "service": "db" }, "require_approval": true }),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["status"], "awaiting_approval");
    let id = held["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reader.get(&format!("/api/v1/runs/{id}")).await.1["status"], "awaiting_approval");
    assert_eq!(reader.post(&format!("/api/v1/runs/{id}/approve"), json!({})).await.0, 403);
    let approver = Api::new(&serve.url, APPROVER_TOKEN);
    let (status, approved) = approver
        .post(&format!("/api/v1/runs/{id}/approve"), json!({ "comment": "change CHG-1 approved" }))
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["by"], "approver");
    let done = reader
        .wait_for(&format!("/api/v1/runs/{id}"), Duration::from_secs(20), |r| {
            r["status"] == "succeeded"
        })
        .await;
    assert_eq!(done["decided_by"], "approver");
    assert_eq!(done["decision_comment"], "change CHG-1 approved");
    assert_eq!(done["params"]["service"], "db");
    assert_eq!(done["steps"].as_array().unwrap().len(), 2);
    assert_eq!(approver.post(&format!("/api/v1/runs/{id}/approve"), json!({})).await.0, 409);

    // Triggering a schedule now starts its plan outside the cron.
    let (status, triggered) = admin.post("/api/v1/schedules/nightly/trigger", json!({})).await;
    assert_eq!(status, 202, "{triggered}");
    assert_eq!(triggered["schedule"], "nightly");
    assert_eq!(triggered["requested_by"], "admin");

    // Plans are checked with every problem and where it is.
    let (status, checked) = reader
        .post(
            "/api/v1/plans/validate",
            json!({ "source": "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: { name: x }\nspec:\n  steps:\n    - id: a\n      kind: slep\n", "file": "x.yaml" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(checked["valid"], false);
    assert_eq!(checked["problems"][0]["line"], 7, "{checked:#}");
    assert_eq!(checked["problems"][0]["step"], "a");

    let schedules = reader.get("/api/v1/schedules").await.1;
    assert_eq!(schedules[0]["cron_normalized"], "0 0 2 * * *");
    assert!(schedules[0]["next_at"].as_str().unwrap().ends_with(":00:00Z"), "{schedules:#}");

    let openapi: serde_json::Value = reqwest::get(format!("{}/openapi.json", serve.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/api/v1/runs/{id}/approve"]["post"].is_object());
    assert!(openapi["components"]["securitySchemes"]["token"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_carry_the_runs_and_the_schedule_lag() {
    if !support::monitoring::installed() {
        return;
    }
    let dir = ServeDir::new(EVERY_SECOND, &[("sleepy.yaml", sleepy_plan("sleepy", 10))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap().text().await.unwrap();
    let file = dir.dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    for needle in [
        "lifeboat_runs_finished_total{plan=\"sleepy\",status=\"succeeded\"}",
        "lifeboat_schedule_lag_seconds_count{schedule=\"tick\"}",
        "lifeboat_schedule_occurrences_total{schedule=\"tick\",outcome=\"fired\"}",
        "lifeboat_step_duration_seconds_count{kind=\"sleep\",outcome=\"succeeded\"}",
        "lifeboat_scheduler_leader 1",
        "lifeboat_journal_operation_seconds_count{operation=\"take_request\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics:\n{text}");
    }
    let open = reqwest::Client::new()
        .get(format!("{}/metrics", serve.url))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.ends_with("# EOF\n"), "OpenMetrics when asked for");
}

fn postgres_url() -> Option<String> {
    match std::env::var("LIFEBOAT_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => panic!("CI must run the replica tests on PostgreSQL: use scripts/test.sh"),
        Err(_) => {
            eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; skipping the replica test");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_killed_at_random_fire_and_finish_every_occurrence_once() {
    let Some(admin_url) = postgres_url() else { return };
    let db = support::postgres(&admin_url).await;
    let dir = ServeDir::new(EVERY_SECOND, &[("sleepy.yaml", sleepy_plan("sleepy", 700))]);
    let ports: Vec<u16> = (0..3).map(|_| support::servers::free_port()).collect();
    let log = |i: usize| dir.dir.path().join(format!("replica-{i}.log"));
    let mut replicas: Vec<Serve> = (0..3)
        .map(|i| Serve::start(&dir.config(), &db.url, ports[i], log(i), &[]))
        .collect();
    let mut kills = 0;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The victim is a replica driving a run when there is one, so that takeovers happen.
        let owners: Vec<i32> = db
            .journal
            .running_runs()
            .await
            .unwrap()
            .iter()
            .map(|r| r.owner.pid as i32)
            .collect();
        let victim = (0..3)
            .find(|i| owners.contains(&replicas[*i].pid()))
            .unwrap_or_else(|| rand::random_range(0..3));
        replicas[victim].kill();
        kills += 1;
        replicas[victim] = Serve::start(&dir.config(), &db.url, ports[victim], log(victim), &[]);
    }
    let api = Api::new(&replicas[0].url, ADMIN_TOKEN);
    assert_eq!(
        api.post("/api/v1/schedules/tick/pause", json!({ "note": "end of test" })).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_all_finished(&db.journal, Duration::from_secs(90)).await;
    for r in &mut replicas {
        assert!(r.stop().success(), "a replica stops cleanly on SIGTERM");
    }
    let (fired, late) = assert_every_occurrence_once(&db.journal, "tick").await;
    let mut taken_over = 0;
    for o in db.journal.occurrences("tick", 10_000).await.unwrap() {
        if let Some(id) = o.run_id {
            let events = support::events(&db.journal, &id).await;
            if events.iter().any(|e| matches!(e, Event::RunResumed { .. })) {
                taken_over += 1;
            }
        }
    }
    eprintln!("replicas: {kills} kills, {fired} occurrences fired once each ({late} late), {taken_over} runs taken over");
    assert!(fired >= 15, "fired {fired}");
    assert!(taken_over >= 1, "a run of a killed replica was taken over by another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_hands_its_run_over_with_its_finished_attempt() {
    let Some(admin_url) = postgres_url() else { return };
    let db = support::postgres(&admin_url).await;
    let dir = ServeDir::new("handoff_grace: 30s\n", &[("sleepy.yaml", sleepy_plan("sleepy", 1500))]);
    let ports: Vec<u16> = (0..2).map(|_| support::servers::free_port()).collect();
    let mut replicas: Vec<Serve> = (0..2)
        .map(|i| Serve::start(&dir.config(), &db.url, ports[i], dir.dir.path().join(format!("r{i}.log")), &[]))
        .collect();
    let api = Api::new(&replicas[0].url, ADMIN_TOKEN);
    let (status, started) = api.post("/api/v1/runs", json!({ "plan": "sleepy" })).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // Once `second` runs, stop its owner: the attempt finishes and is journaled there.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !support::events(&db.journal, &id)
        .await
        .iter()
        .any(|e| matches!(e, Event::StepStarted { step, .. } if step == "second"))
    {
        assert!(Instant::now() < deadline, "`second` never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owner = db.journal.run(&id).await.unwrap().owner.pid as i32;
    let (mine, other) = if replicas[0].pid() == owner { (0, 1) } else { (1, 0) };
    assert_eq!(replicas[mine].pid(), owner, "one of the replicas owns the run");
    assert!(replicas[mine].stop().success());
    wait_all_finished(&db.journal, Duration::from_secs(20)).await;
    let events = support::events(&db.journal, &id).await;
    let resumed = events
        .iter()
        .find_map(|e| match e {
            Event::RunResumed { pid, rerun, .. } => Some((*pid, rerun.clone())),
            _ => None,
        })
        .expect("the other replica took the run over");
    assert_eq!(resumed.0 as i32, replicas[other].pid());
    assert!(
        resumed.1.is_empty(),
        "nothing to run again: the attempt finished before the handover ({:?})",
        resumed.1
    );
    assert_eq!(support::started(&events).iter().filter(|s| *s == "second").count(), 1);
    assert_eq!(db.journal.run(&id).await.unwrap().status, RunStatus::Succeeded);
}

const ALERT_ROUTES: &str = "webhooks:
  - name: am
    kind: alertmanager
    bearer_env: T_AM
    routes:
      - name: production
        matchers: ['severity=\"critical\"']
        plan: sleepy
        require_approval: true
        params: { service: \"{{ labels.service }}\" }
      - name: databases
        matchers: ['service=~\"db-.*\"']
        plan: sleepy
        params: { service: \"{{ labels.service }}\" }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_resends_start_one_run_per_alert_and_production_waits_for_an_approval() {
    if !support::monitoring::installed() {
        return;
    }
    let dir = ServeDir::new(ALERT_ROUTES, &[("sleepy.yaml", sleepy_plan("sleepy", 10))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    // Alertmanager resends every firing group each 2 s (repeat_interval), and sends resolved ones.
    let alertmanager = support::monitoring::Alertmanager::start_with(&format!(
        "route: {{ receiver: lifeboat, group_by: [alertname, service], group_wait: 0s, group_interval: 1s, repeat_interval: 2s }}
receivers:
  - name: lifeboat
    webhook_configs:
      - url: {}/webhooks/am
        send_resolved: true
        http_config: {{ authorization: {{ type: Bearer, credentials: {} }} }}
",
        serve.url,
        support::serve::AM_TOKEN
    ));
    for labels in [
        ["alertname=PostgresDown", "service=db-main", "severity=warning"],
        ["alertname=PostgresDown", "service=db-replica", "severity=warning"],
        ["alertname=PostgresDown", "service=db-billing", "severity=critical"],
        ["alertname=HighLatency", "service=web", "severity=warning"],
    ] {
        let mut args = vec!["alert", "add"];
        args.extend(labels);
        alertmanager.amtool(&args);
    }
    let reader = Api::new(&serve.url, READER_TOKEN);
    let webhook_runs = "/api/v1/runs?origin=webhook";
    reader
        .wait_for(webhook_runs, Duration::from_secs(30), |runs| {
            runs.as_array().is_some_and(|r| r.len() == 3)
        })
        .await;
    // Let Alertmanager resend each group a few times.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let runs = reader.get(webhook_runs).await.1;
    assert_eq!(
        runs.as_array().unwrap().len(),
        3,
        "one run per routed alert, whatever the resends: {runs:#}"
    );
    let metrics = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap().text().await.unwrap();
    let duplicates: f64 = metrics
        .lines()
        .find(|l| l.starts_with("lifeboat_webhook_requests_total{webhook=\"am\",outcome=\"duplicate\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        duplicates >= 3.0,
        "Alertmanager's resends arrived and were recognised: {duplicates}\n{metrics}"
    );
    let triggers = reader.get("/api/v1/triggers").await.1;
    let unrouted = triggers.as_array().unwrap().iter().filter(|t| t["outcome"] == "unrouted").count();
    assert_eq!(unrouted, 1, "the web alert matched no route and started nothing: {triggers:#}");
    let held = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "awaiting_approval")
        .cloned()
        .unwrap_or_else(|| panic!("the production alert waits for an approval: {runs:#}"));
    let id = held["id"].as_str().unwrap();
    assert_eq!(reader.get(&format!("/api/v1/runs/{id}")).await.1["params"]["service"], "db-billing");
    for r in runs.as_array().unwrap().iter().filter(|r| r["id"] != held["id"]) {
        let done = reader
            .wait_for(
                &format!("/api/v1/runs/{}", r["id"].as_str().unwrap()),
                Duration::from_secs(20),
                |r| r["status"] == "succeeded",
            )
            .await;
        assert!(done["params"]["service"].as_str().unwrap().starts_with("db-"), "{done:#}");
    }
    let approver = Api::new(&serve.url, APPROVER_TOKEN);
    assert_eq!(approver.post(&format!("/api/v1/runs/{id}/approve"), json!({})).await.0, 200);
    let approved = reader
        .wait_for(&format!("/api/v1/runs/{id}"), Duration::from_secs(20), |r| {
            r["status"] == "succeeded"
        })
        .await;
    assert_eq!(approved["decided_by"], "approver");

    // Resolved notifications start nothing.
    let past = (chrono::Utc::now() - chrono::TimeDelta::seconds(1)).to_rfc3339();
    let end = format!("--end={past}");
    alertmanager.amtool(&[
        "alert",
        "add",
        "alertname=PostgresDown",
        "service=db-main",
        "severity=warning",
        &end,
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reader.get(webhook_runs).await.1.as_array().unwrap().len(), 3);

    // A forged delivery is refused and stores nothing.
    let body = json!({ "version": "4", "status": "firing", "receiver": "x", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "", "groupKey": "g", "truncatedAlerts": 0,
        "alerts": [{ "status": "firing", "labels": { "service": "db-forged" }, "annotations": {},
            "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f0" }] });
    let client = reqwest::Client::new();
    let forged = client
        .post(format!("{}/webhooks/am", serve.url))
        .bearer_auth("guessed-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned = client.post(format!("{}/webhooks/am", serve.url)).json(&body).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let huge = client
        .post(format!("{}/webhooks/am", serve.url))
        .bearer_auth(support::serve::AM_TOKEN)
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let malformed = client
        .post(format!("{}/webhooks/am", serve.url))
        .bearer_auth(support::serve::AM_TOKEN)
        .body("{\"version\": \"3\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let triggers_after = reader.get("/api/v1/triggers").await.1;
    assert_eq!(
        triggers_after.as_array().unwrap().len(),
        triggers.as_array().unwrap().len(),
        "nothing stored"
    );
    assert!(!triggers_after.to_string().contains("db-forged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_schemathesis_with_no_server_error_and_only_documented_responses() {
    let schemathesis = match std::env::var("LIFEBOAT_TEST_SCHEMATHESIS") {
        Ok(path) => path,
        Err(_) if std::env::var("CI").is_ok() => panic!("CI must test the API with schemathesis: use scripts/test.sh"),
        Err(_) => {
            eprintln!("note: LIFEBOAT_TEST_SCHEMATHESIS unset (scripts/test.sh installs it); skipping");
            return;
        }
    };
    let body = format!("schedules:\n  - {{ name: nightly, plan: sleepy, cron: \"0 0 3 * * *\" }}\n{ALERT_ROUTES}");
    let dir = ServeDir::new(&body, &[("sleepy.yaml", sleepy_plan("sleepy", 10))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    let out = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/openapi.json", serve.url))
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "20261202", "--wait-for-schema", "30"])
        .env("NO_COLOR", "1")
        // schemathesis keeps a cache in its working directory: not in the repository.
        .current_dir(dir.dir.path())
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("Tested: 20"), "every operation was tested:\n{report}");
    assert!(!report.contains("Unresolvable references"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grafana_signed_webhook_starts_a_run_and_forged_or_replayed_ones_do_not() {
    use hmac::{Hmac, Mac};
    const SECRET: &str = "grafana-signing-secret-0123456789";
    let body = "webhooks:
  - name: grafana
    kind: grafana
    secret_env: T_GRAFANA
    max_age: 5m
    routes:
      - { name: any-db, matchers: ['service=~\"db-.*\"'], plan: sleepy, params: { service: \"{{ labels.service }}\" } }
";
    let dir = ServeDir::new(body, &[("sleepy.yaml", sleepy_plan("sleepy", 10))]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(
        &dir.config(),
        &state,
        dir.port,
        dir.dir.path().join("serve.log"),
        &[("T_GRAFANA", SECRET)],
    );
    let payload = json!({ "version": "1", "status": "firing", "receiver": "lifeboat", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://grafana", "groupKey": "g", "truncatedAlerts": 0, "orgId": 1,
        "alerts": [{ "status": "firing", "labels": { "service": "db-orders", "alertname": "Down" }, "annotations": {},
            "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "9f1c",
            "silenceURL": "", "dashboardURL": "", "values": {} }] })
    .to_string();
    let sign = |timestamp: i64, body: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}:{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let client = reqwest::Client::new();
    let deliver = |timestamp: i64, signature: String, body: String| {
        client
            .post(format!("{}/webhooks/grafana", serve.url))
            .header("content-type", "application/json")
            .header("X-Grafana-Alerting-Signature", signature)
            .header("X-Grafana-Alerting-Signature-Timestamp", timestamp.to_string())
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let good = deliver(now, sign(now, &payload), payload.clone()).await.unwrap();
    assert_eq!(good.status(), 200);
    let answer: serde_json::Value = good.json().await.unwrap();
    assert_eq!(answer["alerts"][0]["outcome"], "started", "{answer}");
    let tampered = payload.replace("db-orders", "db-payroll");
    assert_eq!(
        deliver(now, sign(now, &payload), tampered).await.unwrap().status(),
        401,
        "a body that is not the one signed"
    );
    let stale = now - 3600;
    assert_eq!(
        deliver(stale, sign(stale, &payload), payload.clone()).await.unwrap().status(),
        401,
        "a replayed, hour-old delivery"
    );
    let unsigned = client
        .post(format!("{}/webhooks/grafana", serve.url))
        .header("content-type", "application/json")
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    // The same alert signed afresh is a duplicate, not a second run.
    let later = now + 1;
    let again: serde_json::Value = deliver(later, sign(later, &payload), payload.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["alerts"][0]["outcome"], "duplicate");
    let reader = Api::new(&serve.url, READER_TOKEN);
    let runs = reader
        .wait_for("/api/v1/runs?origin=webhook", Duration::from_secs(20), |r| {
            r[0]["status"] == "succeeded"
        })
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(
        reader.get(&format!("/api/v1/runs/{}", runs[0]["id"].as_str().unwrap())).await.1["params"]["service"],
        "db-orders"
    );
}

#[test]
fn the_example_service_configuration_checks() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["serve", "--check", "--config", "examples/serve/serve.yaml"])
        .env("LIFEBOAT_TOKEN_OPS", "ops-token-0123456789abcdef")
        .env("LIFEBOAT_TOKEN_DASHBOARD", "dashboard-token-0123456789")
        .env("LIFEBOAT_ALERTMANAGER_TOKEN", "alertmanager-token-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (2 schedules, 1 webhooks, 2 tokens)"));
    // Without the secrets it says which are missing, and where.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["serve", "--check", "--config", "examples/serve/serve.yaml"])
        .env_remove("LIFEBOAT_TOKEN_OPS")
        .env_remove("LIFEBOAT_TOKEN_DASHBOARD")
        .env_remove("LIFEBOAT_ALERTMANAGER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("examples/serve/serve.yaml:12:5: token `ops`: the environment variable $LIFEBOAT_TOKEN_OPS is not set"),
        "{err}"
    );
    assert!(err.contains("$LIFEBOAT_ALERTMANAGER_TOKEN is not set"), "{err}");
}

#[test]
fn a_bad_service_configuration_lists_every_problem_with_where_and_how_to_fix_it() {
    let dir = ServeDir::new(
        "schedules:
  - { name: a, plan: sleepy, cron: \"0 9 * * 1-5\", timezone: Europe/Berln }
  - { name: a, plan: sleepy, cron: \"0 0 13 * 5\" }
  - { name: b c, plan: sleepy, cron: \"61 * * * * *\", jitter: 5 parsecs }
",
        &[("sleepy.yaml", sleepy_plan("sleepy", 10))],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["serve", "--check", "--config"])
        .arg(dir.config())
        .env("T_ADMIN", ADMIN_TOKEN)
        .env("T_READER", READER_TOKEN)
        .env("T_APPROVER", APPROVER_TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "serve.yaml:9:",
        "Europe/Berln",
        "a second schedule named `a`",
        "0 0 13 * 5",
        "`b c` may hold only letters",
        "61 * * * * *",
        "5 parsecs",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_clock_is_hours_ahead_fires_each_occurrence_once_and_on_time() {
    let Some(admin_url) = postgres_url() else { return };
    if !std::path::Path::new(support::serve::FAKETIME_LIBRARY).exists() {
        assert!(std::env::var("CI").is_err(), "CI must have libfaketime: use scripts/test.sh");
        return;
    }
    let db = support::postgres(&admin_url).await;
    let dir = ServeDir::new(EVERY_SECOND, &[("sleepy.yaml", sleepy_plan("sleepy", 100))]);
    let ports: Vec<u16> = (0..2).map(|_| support::servers::free_port()).collect();
    let mut honest = Serve::start(&dir.config(), &db.url, ports[0], dir.dir.path().join("honest.log"), &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let skewed = Serve::start_with_clock(
        &dir.config(),
        &db.url,
        ports[1],
        dir.dir.path().join("skewed.log"),
        &[],
        Some("+2h"),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The honest leader dies: the replica two hours ahead takes the lease and leads.
    honest.kill();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let api = Api::new(&skewed.url, ADMIN_TOKEN);
    assert_eq!(api.post("/api/v1/schedules/tick/pause", json!({})).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_all_finished(&db.journal, Duration::from_secs(30)).await;
    let (fired, _) = assert_every_occurrence_once(&db.journal, "tick").await;
    let now = db.journal.db_now().await.unwrap();
    let occurrences = db.journal.occurrences("tick", 10_000).await.unwrap();
    let latest = occurrences.iter().map(|o| o.scheduled_at).max().unwrap();
    assert!(
        latest <= now,
        "nothing was fired ahead of the database's clock: latest {latest}, now {now}"
    );
    assert!(
        occurrences.iter().all(|o| o.decided_at >= o.scheduled_at),
        "no occurrence was decided before it was due"
    );
    let lease = db.journal.lease("scheduler").await.unwrap().unwrap();
    assert!(lease.term >= 2, "the lease changed hands: term {}", lease.term);
    assert!(fired >= 10, "fired {fired}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_latest_drill_of_each_plan() {
    let port = support::servers::free_port();
    let drill = format!(
        "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: health-drill
spec:
  objectives: {{ rto: 1m }}
  steps:
    - id: outage
      kind: exec
      mark: disaster
      with: {{ command: [\"true\"] }}
    - id: healthy
      kind: validation.http_probe
      needs: [outage]
      mark: recovered
      with: {{ url: \"http://127.0.0.1:{port}/healthz\", expect_status: [200], timeout: 10s, interval: 100ms }}
"
    );
    let dir = ServeDir::new("", &[("drill.yaml", drill)]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, port, dir.dir.path().join("serve.log"), &[]);
    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    let (status, started) = admin.post("/api/v1/runs", json!({ "plan": "health-drill" })).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap();
    admin
        .wait_for(&format!("/api/v1/runs/{id}"), Duration::from_secs(30), |r| {
            r["status"] == "succeeded"
        })
        .await;
    let report: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/runs/{id}/report?format=json", serve.url))
        .bearer_auth(READER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    let rto_ms = report["rto_ms"].as_i64().expect("the drill measured an RTO");
    let text = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{plan=\"health-drill\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(value("lifeboat_drill_passed"), 1.0);
    assert!((value("lifeboat_drill_rto_seconds") - rto_ms as f64 / 1000.0).abs() < 0.002);
    assert!(value("lifeboat_drill_since_last_pass_seconds") < 60.0);
    assert!(value("lifeboat_drill_last_pass_timestamp_seconds") > 1.7e9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_step_is_decided_through_the_api_by_the_token_holder() {
    let gate = "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: gated
spec:
  steps:
    - id: gate
      kind: approval
      with: { approvers: [approver] }
    - id: after
      kind: sleep
      needs: [gate]
      with: { duration: 10ms }
";
    let dir = ServeDir::new("", &[("gated.yaml", gate.to_owned())]);
    let state = dir.dir.path().join("state.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    let (_, started) = admin.post("/api/v1/runs", json!({ "plan": "gated" })).await;
    let id = started["id"].as_str().unwrap().to_owned();
    admin
        .wait_for(&format!("/api/v1/runs/{id}"), Duration::from_secs(20), |r| {
            r["steps"][0]["status"].as_str().is_some_and(|s| s.starts_with("running"))
        })
        .await;
    let approver = Api::new(&serve.url, APPROVER_TOKEN);
    let (status, wrong) = approver
        .post(&format!("/api/v1/runs/{id}/approve"), json!({ "step": "after" }))
        .await;
    assert_eq!(status, 409, "{wrong}");
    let (status, missing) = approver
        .post(&format!("/api/v1/runs/{id}/approve"), json!({ "step": "gaet" }))
        .await;
    assert_eq!(status, 404, "{missing}");
    let (status, posted) = approver
        .post(&format!("/api/v1/runs/{id}/approve"), json!({ "step": "gate", "comment": "go" }))
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["result"], "decision_posted");
    let done = admin
        .wait_for(&format!("/api/v1/runs/{id}"), Duration::from_secs(20), |r| {
            r["status"] == "succeeded"
        })
        .await;
    assert_eq!(done["steps"][0]["outputs"]["by"], "approver", "{done:#}");
    assert_eq!(done["steps"][0]["outputs"]["comment"], "go");
}

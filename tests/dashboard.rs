//! The dashboard in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against a real `lifeboat serve` on loopback. A drill started from the UI fills its DAG
//! live and waits for an approval given in the UI; the emergency stop reverts a fault and
//! holds the schedules; a read-only user sees no action and is refused when forging one.
//! Sessions, CSRF, paging and the live stream's resumption are checked over plain HTTP.
//!
//! With `LIFEBOAT_SCREENSHOTS=<folder>` the browser tests keep screenshots of the main pages
//! (docs/screenshots is made that way).

mod support;

use fantoccini::Locator;
use serde_json::json;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::browser::Browser;
use support::serve::{ADMIN_TOKEN, APPROVER_TOKEN, Api, READER_TOKEN, Serve, ServeDir, sleepy_plan};

const WAIT: Duration = Duration::from_secs(30);

/// A drill with a step before and after an approval gate.
fn gated_plan() -> String {
    "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: gated-drill
spec:
  description: Restore, then wait for a person before switching traffic.
  objectives: { rto: 5m }
  params:
    region:
      type: string
      default: eu-west-1
      description: where to restore
  steps:
    - id: prepare
      kind: sleep
      with: { duration: 2s }
    - id: restore
      kind: exec
      needs: [prepare]
      mark: disaster
      with: { command: [sh, -c, \"sleep 1; echo restored in ${{ params.region }}\"] }
    - id: gate
      kind: approval
      needs: [restore]
      with: { message: switch traffic? }
    - id: switch
      kind: sleep
      needs: [gate]
      mark: recovered
      with: { duration: 200ms }
  finally:
    - id: cleanup
      kind: sleep
      with: { duration: 10ms }
"
    .into()
}

fn sleeper() -> Child {
    Command::new("sleep").arg("600").spawn().unwrap()
}

fn start_service(config_body: &str, plans: &[(&str, String)]) -> (ServeDir, Serve) {
    let dir = ServeDir::new(config_body, plans);
    let state = dir.dir.path().join("journal.db").display().to_string();
    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    (dir, serve)
}

async fn sign_in(browser: &Browser, base: &str, token: &str) {
    let c = &browser.client;
    c.goto(&format!("{base}/ui/runs")).await.unwrap();
    // Not signed in: sent to the sign-in page, and back to the runs after it.
    c.wait().at_most(WAIT).for_element(Locator::Id("token")).await.unwrap();
    c.find(Locator::Id("token")).await.unwrap().send_keys(token).await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("table#runs")).await.unwrap();
}

/// Waits until `script` (a JS expression) is true in the page.
async fn until(browser: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = browser.client.execute(&format!("return !!({script});"), vec![]).await;
        if matches!(v, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what} ({script})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn node_class(browser: &Browser, step: &str) -> String {
    browser
        .client
        .execute(
            &format!("return document.getElementById('node-{step}').getAttribute('class');"),
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_started_from_the_ui_fills_its_dag_live_and_takes_an_approval_from_the_ui() {
    let (_dir, serve) = start_service("", &[("gated.yaml", gated_plan())]);
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&browser, &serve.url, ADMIN_TOKEN).await;

    // The start form is generated from the plan's params.
    c.goto(&format!("{}/ui/plans/gated-drill", serve.url)).await.unwrap();
    let region = c.find(Locator::Id("param-region")).await.unwrap();
    assert_eq!(region.attr("placeholder").await.unwrap().as_deref(), Some("eu-west-1"));
    region.send_keys("us-east-2").await.unwrap();
    c.find(Locator::Id("start-run")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Css("[data-live-run]")).await.unwrap();
    // From the address: the page may already be reloading as the request becomes a run.
    let address = c.current_url().await.unwrap();
    let run_id = address.path().strip_prefix("/ui/runs/").expect("sent to the run's page").to_owned();
    // The page reloads once when the request becomes a run; from then on it only repaints.
    until(
        &browser,
        "the run to start",
        "document.querySelector('[data-live-run]').dataset.started === 'true'",
    )
    .await;
    c.execute("window.sameDocument = true;", vec![]).await.unwrap();
    assert!(
        node_class(&browser, "restore").await.contains("st-pending"),
        "restore waits for prepare"
    );
    until(
        &browser,
        "the restore step to run, live",
        "document.getElementById('node-restore').getAttribute('class').includes('st-running')",
    )
    .await;
    browser.screenshot("run-live").await;
    assert!(node_class(&browser, "prepare").await.contains("st-succeeded"));
    assert!(node_class(&browser, "switch").await.contains("st-pending"));
    let same = c.execute("return window.sameDocument === true;", vec![]).await.unwrap();
    assert_eq!(same, json!(true), "the DAG was repainted live, without reloading the page");
    let delays = c.execute("return window.lifeboatDelays;", vec![]).await.unwrap();
    assert!(!delays.as_array().unwrap().is_empty(), "the page measured its event delays");

    // The approval's buttons appear by themselves: the page reloads once the step waits.
    c.wait().at_most(WAIT).for_element(Locator::Id("approve-gate")).await.unwrap();
    c.find(Locator::Css("form[action$='/approve'] input[name=comment]"))
        .await
        .unwrap()
        .send_keys("traffic switch agreed on the bridge")
        .await
        .unwrap();
    browser.screenshot("run-approval").await;
    c.find(Locator::Id("approve-gate")).await.unwrap().click().await.unwrap();
    until(
        &browser,
        "the run to succeed",
        "document.getElementById('run-status').textContent === 'succeeded'",
    )
    .await;
    until(
        &browser,
        "the finished page with its verdict",
        "document.querySelector('[data-live-run]').dataset.finished === 'true'",
    )
    .await;
    assert!(node_class(&browser, "switch").await.contains("st-succeeded"));
    assert!(node_class(&browser, "cleanup").await.contains("st-succeeded"));
    let outputs = c.find(Locator::Css("tr[data-step=restore]")).await.unwrap().text().await.unwrap();
    assert!(outputs.contains("restored in us-east-2"), "the step's output is shown: {outputs}");
    let page = c.source().await.unwrap();
    assert!(
        page.contains("Objectives") && page.contains("Timeline"),
        "the drill's findings are on the page"
    );
    browser.screenshot("run-finished").await;

    // The same facts through the API: the run, and the audit trail naming the user.
    let api = Api::new(&serve.url, ADMIN_TOKEN);
    let (_, run) = api.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["params"]["region"], "us-east-2");
    let (_, audit) = api.get(&format!("/api/v1/audit?target={run_id}")).await;
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("run.start", "admin")), "{audit:#}");
    assert!(actions.contains(&("step.approve", "admin")), "{audit:#}");
    let approval = audit.as_array().unwrap().iter().find(|e| e["action"] == "step.approve").unwrap();
    assert_eq!(approval["comment"], "traffic switch agreed on the bridge");

    // The list shows it, and the drills page has its trend.
    c.goto(&format!("{}/ui/runs?trigger=manual", serve.url)).await.unwrap();
    c.find(Locator::Css(&format!("tr[data-run='{run_id}']"))).await.unwrap();
    browser.screenshot("runs").await;
    c.goto(&format!("{}/ui/drills/gated-drill", serve.url)).await.unwrap();
    let drills = c.find(Locator::Css("table#drills")).await.unwrap().text().await.unwrap();
    assert!(drills.contains(&run_id), "{drills}");
    browser.screenshot("drills").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_stop_in_the_ui_reverts_the_fault_and_holds_every_schedule_until_released() {
    let mut victim = sleeper();
    let pid = victim.id();
    let schedules = "schedules:
  - name: every-second
    plan: freeze-drill
    cron: \"* * * * * *\"
    timezone: Europe/Berlin
    overlap: skip
    blackouts:
      - { start: \"2030-12-24T00:00\", end: \"2030-12-27T00:00\", reason: holidays }
";
    let (dir, serve) = start_service(schedules, &[("freeze.yaml", support::freeze_plan("freeze-drill", pid))]);
    let api = Api::new(&serve.url, ADMIN_TOKEN);
    // The schedule starts a drill at once; it freezes the victim.
    let deadline = Instant::now() + WAIT;
    while support::process_state(pid) != 'T' {
        assert!(Instant::now() < deadline, "no scheduled drill froze the process");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, runs) = api.get("/api/v1/runs?status=running").await;
    let running = runs[0]["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&browser, &serve.url, ADMIN_TOKEN).await;
    c.goto(&format!("{}/ui/schedules", serve.url)).await.unwrap();
    let card = c
        .find(Locator::Css("[data-schedule=every-second]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        card.contains("CET") || card.contains("CEST"),
        "the next fire is shown in the schedule's zone: {card}"
    );
    assert!(card.contains("holidays"), "the blackout window is shown: {card}");
    browser.screenshot("schedules").await;

    c.goto(&format!("{}/ui/runs/{running}", serve.url)).await.unwrap();
    c.find(Locator::Css("input[name=note]"))
        .await
        .unwrap()
        .send_keys("customer traffic spike")
        .await
        .unwrap();
    c.find(Locator::Id("emergency-stop")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Id("emergency-banner")).await.unwrap();
    let banner = c.find(Locator::Id("emergency-banner")).await.unwrap().text().await.unwrap();
    assert!(banner.contains("admin") && banner.contains("customer traffic spike"), "{banner}");
    browser.screenshot("emergency-stop").await;

    // The drill is aborted and its fault reverted.
    api.wait_for(&format!("/api/v1/runs/{running}"), WAIT, |r| r["status"] == "aborted")
        .await;
    assert_ne!(support::process_state(pid), 'T', "the emergency stop left the process frozen");
    let journal = lifeboat::journal::Journal::open(&dir.dir.path().join("journal.db").display().to_string())
        .await
        .unwrap();
    let m = lifeboat::drill::measure::measure(&journal, &running).await.unwrap();
    assert!(m.faults[0].reverted_at.is_some(), "the revert is recorded as evidence");

    // While engaged, the schedule fires nothing and a drill cannot be started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, schedules) = api.get("/api/v1/schedules").await;
    let recent = schedules[0]["recent"].as_array().unwrap();
    let held = recent.iter().filter(|o| o["outcome"] == "skipped").count();
    assert!(held >= 2, "occurrences are skipped while stopped: {recent:#?}");
    assert!(
        recent[0]["reason"].as_str().unwrap().contains("emergency stop"),
        "the skip says why: {}",
        recent[0]["reason"]
    );
    let (_, active) = api.get("/api/v1/runs?status=running").await;
    assert_eq!(active, json!([]), "no drill runs while the stop is engaged");
    let (status, refused) = api.post("/api/v1/runs", json!({"plan": "freeze-drill"})).await;
    assert_eq!(status, 409, "{refused}");
    let metrics = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("lifeboat_emergency_stop_engaged 1"), "{metrics}");

    // Released from the UI: the schedule fires again.
    c.find(Locator::Css("#emergency-banner input[name=note]"))
        .await
        .unwrap()
        .send_keys("spike over")
        .await
        .unwrap();
    c.find(Locator::Id("release-stop")).await.unwrap().click().await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Id("emergency-stop")).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while support::process_state(pid) != 'T' {
        assert!(Instant::now() < deadline, "no drill ran after the release");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, audit) = api.get("/api/v1/audit?target=emergency_stop").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["emergency_stop.release", "emergency_stop.engage"]);
    browser.close().await;
    drop(serve);
    // The last drill died with the service; revert its fault by hand so the victim can go.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGCONT);
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_user_sees_no_action_and_a_forged_one_is_refused() {
    let (_dir, serve) = start_service("", &[("sleepy.yaml", sleepy_plan("sleepy", 50))]);
    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    let (status, held) = admin
        .post("/api/v1/runs", json!({"plan": "sleepy", "require_approval": true}))
        .await;
    assert_eq!(status, 202);
    let id = held["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    let c = &browser.client;
    // A wrong token is refused at the door.
    c.goto(&format!("{}/ui/sign-in", serve.url)).await.unwrap();
    c.find(Locator::Id("token")).await.unwrap().send_keys("not-a-token").await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    let error = c.wait().at_most(WAIT).for_element(Locator::Id("error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("not one of the service's tokens"));

    sign_in(&browser, &serve.url, READER_TOKEN).await;
    c.goto(&format!("{}/ui/runs/{id}", serve.url)).await.unwrap();
    c.find(Locator::Id("run-status")).await.unwrap();
    for button in ["approve-run", "reject-run", "abort", "emergency-stop"] {
        assert!(c.find(Locator::Id(button)).await.is_err(), "a reader sees `{button}`");
    }
    c.goto(&format!("{}/ui/plans/sleepy", serve.url)).await.unwrap();
    assert!(c.find(Locator::Id("start-run")).await.is_err(), "a reader sees the start form");

    // A forged approval with the reader's own CSRF token is refused by scope...
    let forged = c
        .execute(
            "const csrf = document.querySelector('input[name=csrf]').value;
             return fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                                         body: 'csrf=' + encodeURIComponent(csrf)})
                 .then(async r => [r.status, await r.text()]);",
            vec![json!(format!("/ui/runs/{id}/approve"))],
        )
        .await
        .unwrap();
    assert_eq!(forged[0], 403, "{forged}");
    assert!(forged[1].as_str().unwrap().contains("lacks the `approve` scope"), "{forged}");
    // ...and one without it by CSRF.
    let no_csrf = c
        .execute(
            "return fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                                         body: 'csrf=guess'}).then(r => r.status);",
            vec![json!(format!("/ui/runs/{id}/abort"))],
        )
        .await
        .unwrap();
    assert_eq!(no_csrf, 403);
    let (_, run) = admin.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["status"], "awaiting_approval", "nothing was decided");
    browser.close().await;
}

/// A signed-in HTTP client (no browser): the session cookie from the sign-in form.
async fn session(base: &str, token: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/ui/sign-in"))
        .form(&[("token", token), ("next", "/ui/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(token), "the token itself never goes into the cookie");
    (client, cookie.split(';').next().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_list_pages_and_filters_and_the_live_stream_resumes_from_its_last_event() {
    let (_dir, serve) = start_service("", &[("sleepy.yaml", sleepy_plan("sleepy", 10)), ("gated.yaml", gated_plan())]);
    let admin = Api::new(&serve.url, ADMIN_TOKEN);
    for _ in 0..120 {
        let (status, _) = admin
            .post("/api/v1/runs", json!({"plan": "sleepy", "require_approval": true}))
            .await;
        assert_eq!(status, 202);
    }
    let (client, cookie) = session(&serve.url, APPROVER_TOKEN).await;
    let page = |path: String| {
        let client = client.clone();
        let cookie = cookie.clone();
        let base = serve.url.clone();
        async move {
            let r = client.get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        }
    };
    let older = |html: &str| -> Option<String> {
        let at = html.find("id=\"older\" href=\"")? + "id=\"older\" href=\"".len();
        Some(html[at..].split('"').next()?.replace("&amp;", "&"))
    };
    let mut seen = std::collections::HashSet::new();
    let mut next = Some("/ui/runs?status=awaiting_approval&trigger=manual".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let html = page(path).await;
        for row in html.split("data-run=\"").skip(1) {
            assert!(seen.insert(row.split('"').next().unwrap().to_owned()), "a run on two pages");
        }
        pages += 1;
        next = older(&html);
    }
    assert_eq!((seen.len(), pages), (120, 3), "120 held runs over pages of 50");
    assert!(
        !page("/ui/runs?trigger=schedule".into()).await.contains("data-run=\""),
        "no scheduled runs"
    );

    // Unauthenticated: pages send to the sign-in, the stream and the forms refuse.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anonymous.get(format!("{}/ui/runs?plan=sleepy", serve.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/sign-in?next=%2Fui%2Fruns%3Fplan%3Dsleepy");
    let r = anonymous
        .post(format!("{}/ui/emergency-stop", serve.url))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A form posted from another site is refused even with the session's cookie and token.
    let run_page = page(format!("/ui/runs/{}", seen.iter().next().unwrap())).await;
    let csrf = run_page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = client
        .post(format!("{}/ui/runs/{}/reject", serve.url, seen.iter().next().unwrap()))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The live stream: a snapshot per journal change, ids are sequence numbers, and a
    // reconnect with Last-Event-ID gets only what is newer.
    let (_, gated) = admin.post("/api/v1/runs", json!({"plan": "gated-drill"})).await;
    let id = gated["id"].as_str().unwrap().to_owned();
    admin
        .wait_for(&format!("/api/v1/runs/{id}"), WAIT, |r| {
            r["steps"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["id"] == "gate" && s["status"] == "running"))
        })
        .await;
    let first = first_event(&client, &cookie, &serve.url, &id, None)
        .await
        .expect("a snapshot at once");
    assert!(
        first.data["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "gate" && s["class"] == "st-running")
    );
    assert!(
        first_event(&client, &cookie, &serve.url, &id, Some(first.id)).await.is_none(),
        "nothing new since that event"
    );
    admin.post(&format!("/api/v1/runs/{id}/approve"), json!({"step": "gate"})).await;
    let later = first_event(&client, &cookie, &serve.url, &id, Some(first.id))
        .await
        .expect("the approval moved the run");
    assert!(later.id > first.id);
    // Once finished and fully sent, a reconnect is told there is nothing more (204 stops EventSource).
    admin
        .wait_for(&format!("/api/v1/runs/{id}"), WAIT, |r| r["status"] == "succeeded")
        .await;
    let last = first_event(&client, &cookie, &serve.url, &id, None)
        .await
        .expect("the finished run's snapshot");
    assert_eq!(last.data["finished"], true);
    let r = client
        .get(format!("{}/ui/runs/{id}/events", serve.url))
        .header("cookie", &cookie)
        .header("last-event-id", last.id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client
        .get(format!("{}/ui/runs/no-such-run/events", serve.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

struct SseEvent {
    id: i64,
    data: serde_json::Value,
}

/// The first `state` event of a run's stream within a second, if any.
async fn first_event(client: &reqwest::Client, cookie: &str, base: &str, id: &str, last: Option<i64>) -> Option<SseEvent> {
    let mut request = client.get(format!("{base}/ui/runs/{id}/events")).header("cookie", cookie);
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    let mut response = request.send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(event) = text.split("\n\n").find(|e| e.contains("event: state")) {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            return Some(SseEvent {
                id: field("id:").parse().unwrap(),
                data: serde_json::from_str(&field("data:")).unwrap(),
            });
        }
    }
    None
}

/// Benchmark (ignored; `scripts/bench-dashboard.sh` runs it on a release build): the runs
/// page's first contentful paint with 10,000 runs in the journal, and the delay from a
/// step's journal event to the browser repainting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-dashboard.sh"]
async fn bench_first_paint_with_10000_runs_and_event_to_browser_delay() {
    use lifeboat::journal::{Event, Journal, Owner, RunStatus};
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let steps = 60;
    let chain: String = (0..steps)
        .map(|i| {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("\n      needs: [s{}]", i - 1)
            };
            format!("    - id: s{i}\n      kind: sleep{needs}\n      with: {{ duration: 100ms }}\n")
        })
        .collect();
    let chain_plan = format!("apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: chain\nspec:\n  steps:\n{chain}");
    let dir = ServeDir::new("", &[("sleepy.yaml", sleepy_plan("sleepy", 10)), ("chain.yaml", chain_plan)]);
    let state = dir.dir.path().join("journal.db").display().to_string();

    let seeded = Instant::now();
    let journal = Journal::open(&state).await.unwrap();
    let owner = Owner::me();
    let created = Event::RunCreated {
        plan_name: "sleepy".into(),
        plan_file: "plans/sleepy.yaml".into(),
        plan_source: sleepy_plan("sleepy", 10),
        plan_sha256: String::new(),
        params: Default::default(),
        lock: None,
    };
    for i in 0..runs {
        let id = format!("seed-{i:05}");
        journal
            .create_run(&id, "sleepy", None, &owner, std::slice::from_ref(&created))
            .await
            .unwrap();
        let status = if i % 10 == 0 { RunStatus::Failed } else { RunStatus::Succeeded };
        journal
            .append(&id, 1, &[Event::RunFinished { status, reason: None }])
            .await
            .unwrap();
    }
    journal.close().await;
    eprintln!("seeded {runs} runs in {:.1} s", seeded.elapsed().as_secs_f64());

    let serve = Serve::start(&dir.config(), &state, dir.port, dir.dir.path().join("serve.log"), &[]);
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&browser, &serve.url, ADMIN_TOKEN).await;
    let mut paints = Vec::new();
    let mut server = Vec::new();
    for _ in 0..30 {
        // From a blank page each time: a fresh navigation, not a reload.
        c.goto("about:blank").await.unwrap();
        c.goto(&format!("{}/ui/runs", serve.url)).await.unwrap();
        // The paint entry is recorded a moment after the load event.
        let deadline = Instant::now() + WAIT;
        let timing = loop {
            let timing = c
                .execute(
                    "const nav = performance.getEntriesByType('navigation')[0];
                     const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                     return fcp ? [fcp.startTime, nav.responseStart - nav.requestStart] : null;",
                    vec![],
                )
                .await
                .unwrap();
            if !timing.is_null() {
                break timing;
            }
            assert!(Instant::now() < deadline, "Chromium recorded no first contentful paint");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        paints.push(timing[0].as_f64().unwrap());
        server.push(timing[1].as_f64().unwrap());
    }
    let rows = c.find_all(Locator::Css("tr[data-run]")).await.unwrap().len();
    assert_eq!(rows, 50, "a page of the 10,000");

    let api = Api::new(&serve.url, ADMIN_TOKEN);
    let (_, run) = api.post("/api/v1/runs", json!({"plan": "chain"})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    c.goto(&format!("{}/ui/runs/{id}", serve.url)).await.unwrap();
    until(
        &browser,
        "the run to start",
        "document.querySelector('[data-live-run]').dataset.started === 'true'",
    )
    .await;
    until(
        &browser,
        "the last step to run",
        &format!(
            "document.getElementById('node-s{}').getAttribute('class').includes('st-running')",
            steps - 1
        ),
    )
    .await;
    let mut delays: Vec<f64> = c
        .execute("return window.lifeboatDelays;", vec![])
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    browser.close().await;

    let stats = |name: &str, mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        eprintln!(
            "{name}: n={} p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            v.len(),
            at(50.0),
            at(95.0),
            at(100.0)
        );
    };
    eprintln!("journal: {runs} runs (SQLite)");
    stats("runs page first contentful paint", paints);
    stats("runs page server time (request to first byte)", server);
    // The snapshot sent on connecting reports the newest event from before the page opened:
    // its delay is the page's own load, not the stream's.
    let on_connect = delays.remove(0);
    eprintln!("snapshot on connecting: {on_connect:.0} ms after its event (page load included)");
    stats("journal event to browser repaint", delays);
}

//! The `chaos.*` injectors against real targets — real processes, real sockets, a real
//! HTTP server, a real filesystem — each with its revert verified, and guards that abort
//! a run and leave no fault behind.

mod support;

use lifeboat::drill::measure::measure;
use lifeboat::journal::{Event, RunStatus};
use std::process::{Child, Command};
use std::time::Duration;
use support::{events, greeting, outputs_of, plan, run};

fn sleeper() -> Child {
    Command::new("sleep").arg("300").spawn().unwrap()
}

/// Not stopped: a process just continued may be running ('R') for a moment before it sleeps again.
fn thawed(pid: u32) -> bool {
    !matches!(state_of(pid), 'T' | 't')
}

fn state_of(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.trim_start().chars().next().unwrap()
}

/// The fault records (`fault/<step>`) of a run, as the report reads them.
async fn faults(journal: &lifeboat::journal::Journal, run_id: &str) -> Vec<lifeboat::drill::measure::FaultReport> {
    measure(journal, run_id).await.unwrap().faults
}

#[tokio::test]
async fn process_kill_observes_the_process_gone() {
    let j = support::sqlite().await;
    let mut child = sleeper();
    let pid = child.id();
    let source = plan(
        "kill",
        &format!(
            "  steps:\n    - id: kill\n      kind: chaos.process_kill\n      mark: disaster\n      with: {{ pid: {pid}, signal: KILL }}\n"
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "kill");
    assert_eq!(out["observed"], "gone");
    let sent = chrono::DateTime::parse_from_rfc3339(out["signal_sent_at"].as_str().unwrap()).unwrap();
    let seen = chrono::DateTime::parse_from_rfc3339(out["injected_at"].as_str().unwrap()).unwrap();
    assert!(
        seen >= sent,
        "the disaster time is when the process was seen gone, after the signal"
    );
    let m = measure(&j.journal, &report.run_id).await.unwrap();
    assert_eq!(m.disaster.unwrap().at, seen.with_timezone(&chrono::Utc));
}

#[tokio::test]
async fn stop_freezes_for_its_duration_then_continues() {
    let j = support::sqlite().await;
    let mut child = sleeper();
    let pid = child.id();
    let state_step = |id: &str, needs: &str| {
        format!(
            "    - id: {id}\n      kind: exec\n      needs: [{needs}]\n      with:\n        command: [sh, -c, \"set -- $(cat /proc/{pid}/stat); printf '{{\\\"state\\\":\\\"%s\\\"}}\\\\n' $3\"]\n"
        )
    };
    let source = plan(
        "freeze",
        &format!(
            "  steps:\n    - id: freeze\n      kind: chaos.process_kill\n      with: {{ pid: {pid}, signal: STOP, duration: 1s }}\n{}    - id: later\n      kind: sleep\n      needs: [during]\n      with: {{ duration: 1500ms }}\n{}",
            state_step("during", "freeze"),
            state_step("after", "later")
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let ev = events(&j.journal, &report.run_id).await;
    assert_eq!(
        outputs_of(&ev, "during")["state"],
        "T",
        "the process is stopped while the fault lasts"
    );
    assert_eq!(outputs_of(&ev, "after")["state"], "S", "SIGCONT after the duration");
    let f = faults(&j.journal, &report.run_id).await;
    assert_eq!(f[0].revert.as_ref().unwrap().reason, "its duration elapsed");
    assert!(!f[0].left_active);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_fault_still_active_when_the_run_ends_is_reverted() {
    let j = support::sqlite().await;
    let mut child = sleeper();
    let pid = child.id();
    let source = plan(
        "leftover",
        &format!("  steps:\n    - id: freeze\n      kind: chaos.process_kill\n      with: {{ pid: {pid}, signal: STOP, duration: 1h }}\n"),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert!(thawed(pid), "the run ended with the process still frozen");
    let f = faults(&j.journal, &report.run_id).await;
    assert_eq!(f[0].revert.as_ref().unwrap().reason, "the run ended");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_breached_guard_aborts_the_run_and_reverts_every_fault() {
    for j in support::journals().await {
        let mut child = sleeper();
        let pid = child.id();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let source = plan(
            "guarded",
            &format!(
                "  guards:\n    - id: service-up\n      kind: validation.tcp_probe\n      interval: 100ms\n      failure_threshold: 2\n      with: {{ address: \"127.0.0.1:{port}\" }}\n  steps:\n    - id: freeze\n      kind: chaos.process_kill\n      with: {{ pid: {pid}, signal: STOP, duration: 1h }}\n    - id: soak\n      kind: sleep\n      needs: [freeze]\n      with: {{ duration: 30s }}\n"
            ),
        );
        // The guarded service dies a second into the run.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            drop(listener);
        });
        let started = std::time::Instant::now();
        let report = run(&j.journal, &source).await;
        closer.join().unwrap();
        assert_eq!(report.status, RunStatus::Aborted, "{}", j.name);
        assert!(started.elapsed() < Duration::from_secs(10), "the abort cancelled the 30 s step");
        assert!(thawed(pid), "{}: the guard's abort left the process frozen", j.name);
        let recorded = j.journal.events(&report.run_id).await.unwrap();
        let breach_at = recorded
            .iter()
            .find_map(|r| matches!(&r.event, Event::GuardBreached { guard, .. } if guard == "service-up").then_some(r.at))
            .expect("the breach is journaled");
        let m = measure(&j.journal, &report.run_id).await.unwrap();
        assert_eq!(m.guard_breaches[0].guard, "service-up");
        assert!(!m.passed);
        let reverted = m.faults[0].reverted_at.expect("the fault was reverted");
        let lag = reverted - breach_at;
        assert!(lag < chrono::Duration::seconds(1), "{}: revert came {lag} after the breach", j.name);
        assert!(m.faults[0].revert.as_ref().unwrap().reason.contains("guard service-up"));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

async fn echo_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_down_is_measured_until_the_proxy_serves_again() {
    let j = support::sqlite().await;
    let echo = echo_server().await;
    let source = plan(
        "network",
        &format!(
            "  steps:\n    - id: proxy\n      kind: chaos.network\n      with: {{ upstream: \"{echo}\" }}\n    - id: outage\n      kind: chaos.network\n      needs: [proxy]\n      mark: disaster\n      with: {{ down: true, duration: 1s }}\n    - id: back\n      kind: validation.tcp_probe\n      needs: [outage]\n      mark: recovered\n      with: {{ address: \"${{{{ steps.proxy.outputs.listen }}}}\", interval: 50ms, timeout: 10s }}\n"
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let m = measure(&j.journal, &report.run_id).await.unwrap();
    let rto = m.rto_ms.unwrap();
    assert!((1000..2500).contains(&rto), "the outage lasted its 1 s duration, measured {rto} ms");
    assert_eq!(m.faults[0].revert.as_ref().unwrap().reason, "its duration elapsed");
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "back");
    assert!(out["checks"].as_u64().unwrap() > 1, "the probe saw the proxy down first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_hit_matching_requests_only_until_reverted() {
    let j = support::sqlite().await;
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(upstream, app).await.unwrap() });
    let probe = |id: &str, needs: &str, path: &str, status: u16| {
        format!(
            "    - id: {id}\n      kind: validation.http_probe\n      needs: [{needs}]\n      with: {{ url: \"${{{{ steps.fault.outputs.url }}}}{path}\", expect_status: [{status}], timeout: 5s, interval: 100ms }}\n"
        )
    };
    let source = plan(
        "http",
        &format!(
            "  steps:\n    - id: fault\n      kind: chaos.http\n      with:\n        upstream: \"http://{upstream_addr}\"\n        rules: [{{ path: \"^/api\", abort: 503 }}]\n{}{}    - id: revert\n      kind: chaos.revert\n      needs: [api_down, health_up]\n      with: {{ steps: [fault] }}\n{}",
            probe("api_down", "fault", "/api/orders", 503),
            probe("health_up", "fault", "/health", 200),
            probe("api_back", "revert", "/api/orders", 200)
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.reason);
    let f = faults(&j.journal, &report.run_id).await;
    let observed = f[0].revert.as_ref().unwrap().observed.clone().unwrap();
    assert!(observed["aborted"].as_u64().unwrap() >= 1);
    assert!(observed["requests"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn stress_holds_memory_and_cpu_for_its_duration() {
    let j = support::sqlite().await;
    let source = plan(
        "stress",
        "  steps:\n    - id: pressure\n      kind: chaos.stress\n      with: { cpu: 1, memory: 64MiB, duration: 500ms, wait: true }\n",
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "pressure");
    let grew = out["rss_after_bytes"].as_u64().unwrap() - out["rss_before_bytes"].as_u64().unwrap();
    assert!(grew >= 60 << 20, "RSS grew by only {grew} bytes");
    assert!(out["reverted_at"].is_string());

    if Command::new("stress-ng").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI installs stress-ng (scripts/test.sh)");
        return;
    }
    let source = plan(
        "stress-ng",
        "  steps:\n    - id: pressure\n      kind: chaos.stress\n      with: { cpu: 1, duration: 1s, engine: stress-ng, wait: true }\n",
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.reason);
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "pressure");
    let pid = out["pid"].as_u64().unwrap() as u32;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || state_of(pid) == 'Z',
        "stress-ng outlived its fault"
    );
}

#[tokio::test]
async fn disk_fill_leaves_only_the_requested_space_then_frees_it() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: mounting a test tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("CI").is_err(),
            "CI must be able to mount a tmpfs for the disk-fill test"
        );
        eprintln!("skipped: cannot mount tmpfs here");
        return;
    }
    let j = support::sqlite().await;
    let d = dir.path().display();
    let source = plan(
        "fill",
        &format!(
            "  steps:\n    - id: fill\n      kind: chaos.disk_fill\n      with: {{ path: \"{d}\", free: 8MiB }}\n    - id: df\n      kind: exec\n      needs: [fill]\n      with:\n        command: [sh, -c, \"printf '{{\\\"free\\\":%s}}\\\\n' $(( $(stat -f -c '%a*%S' {d}) ))\"]\n"
        ),
    );
    let report = run(&j.journal, &source).await;
    let free_after_run = nix::sys::statvfs::statvfs(dir.path()).map(|s| s.blocks_available() * s.fragment_size());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    let _ = Command::new("umount").arg(dir.path()).status();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.reason);
    let free = outputs_of(&events(&j.journal, &report.run_id).await, "df")["free"]
        .as_u64()
        .unwrap();
    assert!(
        (7 << 20..=9 << 20).contains(&free),
        "{free} bytes free while filled, wanted about 8 MiB"
    );
    assert!(leftovers.is_empty(), "the fill file outlived the run");
    assert!(free_after_run.unwrap() > 40 << 20);
}

#[tokio::test]
async fn clock_skew_runs_the_command_on_a_shifted_clock() {
    if Command::new("faketime").arg("--help").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI installs faketime (scripts/test.sh)");
        eprintln!("skipped: faketime is not installed");
        return;
    }
    let j = support::sqlite().await;
    let source = plan(
        "skew",
        "  steps:\n    - id: skew\n      kind: chaos.clock_skew\n      with: { offset: \"-1d\", command: [sh, -c, \"date +%s; sleep 30\"], duration: 500ms, wait: true }\n",
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.reason);
    let out = outputs_of(&events(&j.journal, &report.run_id).await, "skew");
    let offset = out["observed_offset_seconds"].as_f64().unwrap();
    assert!((offset + 86400.0).abs() < 5.0, "observed offset {offset}");
    let printed: i64 = out["revert"]["observed"]["stdout_tail"].as_str().unwrap().trim().parse().unwrap();
    let skew = printed - chrono::Utc::now().timestamp();
    assert!((skew + 86400).abs() < 10, "the command saw a clock {skew} s off");
}

#[tokio::test]
async fn toxiproxy_clients_drive_lifeboat_proxy_serve() {
    let port = support::servers::free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["proxy", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{api}/version")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the API did not come up");
    let echo = echo_server().await;
    let listen_port = support::servers::free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let created = http
        .post(format!("{api}/proxies"))
        .json(&serde_json::json!({ "name": "db", "listen": listen, "upstream": echo }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let dup = http
        .post(format!("{api}/proxies"))
        .json(&serde_json::json!({ "name": "db", "listen": "127.0.0.1:0", "upstream": echo }))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);

    let rtt = || async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&listen).await?;
        let t = std::time::Instant::now();
        s.write_all(b"hi").await?;
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await?;
        Ok::<_, std::io::Error>(t.elapsed())
    };
    assert!(rtt().await.unwrap() < Duration::from_millis(200));
    let toxic = http
        .post(format!("{api}/proxies/db/toxics"))
        .json(&serde_json::json!({ "type": "latency", "attributes": { "latency": 300 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(toxic.status(), 200);
    let toxic: serde_json::Value = toxic.json().await.unwrap();
    assert_eq!(toxic["name"], "latency_downstream");
    assert!(rtt().await.unwrap() >= Duration::from_millis(300));
    let updated: serde_json::Value = http
        .post(format!("{api}/proxies/db/toxics/latency_downstream"))
        .json(&serde_json::json!({ "attributes": { "latency": 50 } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["attributes"]["latency"], 50);
    let listed: serde_json::Value = http.get(format!("{api}/proxies")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["db"]["toxics"].as_array().unwrap().len(), 1);
    let disabled = http
        .post(format!("{api}/proxies/db"))
        .json(&serde_json::json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    assert!(rtt().await.is_err(), "a disabled proxy still forwards");
    assert_eq!(http.post(format!("{api}/reset")).send().await.unwrap().status(), 204);
    assert!(
        rtt().await.unwrap() < Duration::from_millis(200),
        "reset re-enables and removes toxics"
    );
    let populated = http
        .post(format!("{api}/populate"))
        .json(&serde_json::json!([{ "name": "db", "listen": listen, "upstream": echo }, { "name": "cache", "listen": "127.0.0.1:0", "upstream": echo }]))
        .send()
        .await
        .unwrap();
    assert_eq!(populated.status(), 201);
    let body: serde_json::Value = populated.json().await.unwrap();
    assert_eq!(body["proxies"].as_array().unwrap().len(), 2);
    assert_eq!(http.delete(format!("{api}/proxies/cache")).send().await.unwrap().status(), 204);
    assert_eq!(http.get(format!("{api}/proxies/cache")).send().await.unwrap().status(), 404);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A region in its own network namespace, cut off by taking its link down and by a
/// blackhole route: while cut, a probe sees it unreachable; `chaos.revert` and the run's end
/// restore it; and a partition left by a killed engine is undone by `lifeboat resume`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_cut_a_namespace_off_until_reverted_even_after_an_engine_crash() {
    let Some(topology) = support::netns::Topology::create(&["east"]) else {
        return;
    };
    let region = &topology.regions[0];
    let east = region.greeter("east");
    assert_eq!(greeting(east).unwrap(), "east");
    let j = support::sqlite().await;
    let source = plan(
        "partition",
        &format!(
            "  steps:\n    - id: cut\n      kind: chaos.partition\n      with: {{ link: {link} }}\n    \
             - id: unreachable\n      kind: validation.tcp_probe\n      needs: [cut]\n      with: {{ address: \"{east}\", connect_timeout: 200ms, until: failing, interval: 100ms, timeout: 10s }}\n    \
             - id: heal\n      kind: chaos.revert\n      needs: [unreachable]\n      with: {{ steps: [cut] }}\n    \
             - id: reachable\n      kind: validation.tcp_probe\n      needs: [heal]\n      with: {{ address: \"{east}\", interval: 100ms, timeout: 10s }}\n    \
             - id: blackhole\n      kind: chaos.partition\n      needs: [reachable]\n      with: {{ blackhole: \"{ip}/32\" }}\n    \
             - id: unroutable\n      kind: validation.tcp_probe\n      needs: [blackhole]\n      with: {{ address: \"{east}\", connect_timeout: 200ms, until: failing, interval: 100ms, timeout: 10s }}\n",
            link = region.outer,
            ip = region.ip
        ),
    );
    let report = run(&j.journal, &source).await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{}",
        support::first_error(&events(&j.journal, &report.run_id).await)
    );
    assert_eq!(greeting(east).unwrap(), "east", "the run's end removed the blackhole route");
    let recorded = faults(&j.journal, &report.run_id).await;
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|f| f.reverted_at.is_some()), "{recorded:?}");
    let cut = outputs_of(&events(&j.journal, &report.run_id).await, "cut");
    assert_eq!(cut["cut"], "link_down");
    assert_eq!(cut["target"], region.outer.as_str());

    // An engine killed while the region is cut off: the route stays until the run resumes.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let plan_file = dir.path().join("plan.yaml");
    std::fs::write(
        &plan_file,
        plan(
            "partition-crash",
            &format!(
                "  steps:\n    - id: blackhole\n      kind: chaos.partition\n      with: {{ blackhole: \"{ip}/32\" }}\n    \
                 - id: soak\n      kind: sleep\n      needs: [blackhole]\n      with: {{ duration: 1s }}\n",
                ip = region.ip
            ),
        ),
    )
    .unwrap();
    let lifeboat = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.arg("--state").arg(&state).args(args);
        c
    };
    let mut first = lifeboat(&["run", plan_file.to_str().unwrap()]).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while greeting(east).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the partition never took effect");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(greeting(east).is_err(), "the partition outlives the killed engine");
    let journal = lifeboat::journal::Journal::open(&state.display().to_string()).await.unwrap();
    let run_id = journal.runs(None, 1).await.unwrap().remove(0).id;
    let resumed = lifeboat(&["resume", &run_id]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(greeting(east).unwrap(), "east", "resume removed the route");
    // Killed after the route was added, the engine had either journaled the injection (the
    // resume reverts it) or only its intent (the resume undoes it, the step injects anew).
    let fault = &faults(&journal, &run_id).await[0];
    assert!(fault.reverted_at.is_some() && !fault.left_active, "{fault:?}");
    let reverted_by_resume = fault.revert.as_ref().unwrap().reason.contains("resumed after a crash");
    let intent = lifeboat::evidence::read::<lifeboat::evidence::fault::FaultRecord>(&journal, &run_id, "blackhole")
        .await
        .unwrap();
    let undone_by_resume = intent
        .iter()
        .any(|r| matches!(r, lifeboat::evidence::fault::FaultRecord::UndoneAfterCrash(u) if u.note.contains("removed")));
    assert!(
        reverted_by_resume || undone_by_resume,
        "the resume undid the partition: {fault:?} {intent:?}"
    );
}

/// A guard with `after` starts watching when that step has succeeded and reads its outputs:
/// here the endpoint a step started. Taking the endpoint down breaches it; the run aborts
/// and the fault is reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_started_after_a_step_watches_what_that_step_created() {
    let upstream = support::greeter("db");
    let j = support::sqlite().await;
    let source = plan(
        "guard-after",
        &format!(
            "  guards:\n    - id: endpoint-up\n      kind: validation.tcp_probe\n      after: endpoint\n      interval: 100ms\n      failure_threshold: 2\n      \
             with: {{ address: \"127.0.0.1:${{{{ steps.endpoint.outputs.listen_port }}}}\" }}\n  \
             steps:\n    - id: endpoint\n      kind: traffic.proxy\n      with: {{ proxy: db, upstream: \"{upstream}\" }}\n    \
             - id: healthy\n      kind: sleep\n      needs: [endpoint]\n      with: {{ duration: 600ms }}\n    \
             - id: down\n      kind: chaos.network\n      needs: [healthy]\n      with: {{ proxy: db, down: true, duration: 1h }}\n    \
             - id: soak\n      kind: sleep\n      needs: [down]\n      with: {{ duration: 30s }}\n"
        ),
    );
    let started = std::time::Instant::now();
    let report = run(&j.journal, &source).await;
    assert_eq!(report.status, RunStatus::Aborted);
    assert!(started.elapsed() < Duration::from_secs(20), "the breach cut the 30 s soak short");
    let recorded = events(&j.journal, &report.run_id).await;
    assert!(
        recorded
            .iter()
            .any(|e| matches!(e, Event::StepSucceeded { step, .. } if step == "healthy")),
        "the guard passed while the endpoint was up"
    );
    let breach = recorded
        .iter()
        .find_map(|e| match e {
            Event::GuardBreached { guard, error, .. } if guard == "endpoint-up" => Some(error.clone()),
            _ => None,
        })
        .expect("the guard breached");
    let port = outputs_of(&recorded, "endpoint")["listen_port"].as_u64().unwrap();
    assert!(breach.contains(&port.to_string()), "it probed the endpoint's port: {breach}");
    let m = measure(&j.journal, &report.run_id).await.unwrap();
    assert!(m.faults.iter().all(|f| f.reverted_at.is_some()), "{:?}", m.faults);
}

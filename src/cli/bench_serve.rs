//! `lifeboat bench webhooks` and `lifeboat bench replicas`: the service under load, as
//! real `lifeboat serve` processes on the journal given (PostgreSQL for replicas).
//!
//! - webhooks: Alertmanager-shaped deliveries at a fixed rate, most of them resends of
//!   alerts already sent; reports webhook-to-run-started latency per alert and checks
//!   that each alert started exactly one run.
//! - replicas: three replicas fire an every-second schedule while one of them is killed
//!   (SIGKILL) at a fixed interval and restarted; reports occurrences fired once, runs
//!   finished, duplicates and the schedule lag.

use crate::drill::trend::percentile;
use crate::journal::requests::{Origin, RequestFilter, RequestState};
use crate::journal::schedules::OccurrenceOutcome;
use crate::journal::{Journal, RunStatus};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-admin-token-0123456789abcdef";
const AM_TOKEN: &str = "bench-alertmanager-token-0123456789";

fn config(dir: &Path, port: u16, body: &str, step_ms: u64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("plans"))?;
    std::fs::write(
        dir.join("plans/bench.yaml"),
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: bench\nspec:\n  params:\n    service: {{ type: string, default: none }}\n  steps:\n    - id: first\n      kind: sleep\n      with: {{ duration: {step_ms}ms }}\n    - id: second\n      kind: sleep\n      needs: [first]\n      with: {{ duration: {step_ms}ms }}\n"
        ),
    )?;
    let file = dir.join("serve.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\nplans: [plans]\ntokens:\n  - {{ name: bench, token_env: BENCH_TOKEN, scopes: [read, run, approve, admin] }}\n{body}"
        ),
    )?;
    Ok(file)
}

/// A scratch folder removed at the end.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> anyhow::Result<BenchDir> {
        let dir = std::env::temp_dir().join(format!("lifeboat-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(BenchDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Replica {
    child: tokio::process::Child,
    url: String,
}

async fn start_replica(config: &Path, state: &str, port: u16, log: &Path) -> anyhow::Result<Replica> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--state", state, "serve", "--max-runs", "64", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("BENCH_TOKEN", TOKEN)
        .env("BENCH_AM_TOKEN", AM_TOKEN)
        .env("RUST_LOG", "lifeboat=warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .context("starting lifeboat serve")?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("lifeboat serve did not listen on {url}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Replica { child, url })
}

/// Waits until nothing is queued or running.
async fn drain(journal: &Journal, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let running = journal.running_runs().await?.len();
        let queued = journal
            .requests(&RequestFilter {
                state: Some(RequestState::Queued),
                limit: 1,
                ..Default::default()
            })
            .await?
            .len();
        if running == 0 && queued == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{running} runs still running and {queued} queued after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn micros(d: chrono::TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

/// Percentiles of durations in microseconds, printed in milliseconds.
fn summary(name: &str, mut values: Vec<i64>) -> String {
    values.sort_unstable();
    let ms = |v: Option<i64>| v.unwrap_or(0) as f64 / 1000.0;
    format!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        ms(percentile(&values, 50.0)),
        ms(percentile(&values, 99.0)),
        ms(values.last().copied()),
        values.len()
    )
}

pub async fn webhooks(state: &str, rate: u32, duplicates: f64, duration: Duration) -> anyhow::Result<u8> {
    let dir = BenchDir::new()?;
    let port = free_port()?;
    let body = "webhooks:\n  - name: am\n    kind: alertmanager\n    bearer_env: BENCH_AM_TOKEN\n    routes:\n      - { name: all, matchers: ['alertname=\"BenchDown\"'], plan: bench, params: { service: \"{{ labels.service }}\" } }\n";
    let file = config(dir.path(), port, body, 1)?;
    let replica = start_replica(&file, state, port, &dir.path().join("serve.log")).await?;
    let journal = Journal::open(state).await?;
    let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
    let unique = ((total as f64) * (1.0 - duplicates)).round().max(1.0) as usize;
    // Each alert is sent first in order, then resent at random later moments of the run.
    let mut sends: Vec<usize> = (0..unique).collect();
    let resends: Vec<usize> = (unique..total).map(|_| rand::random_range(0..unique)).collect();
    sends.extend(resends);
    let mut order: Vec<(usize, usize)> = sends.into_iter().enumerate().collect();
    rand::seq::SliceRandom::shuffle(&mut order[unique..], &mut rand::rng());
    let first_sent: std::sync::Arc<std::sync::Mutex<HashMap<usize, DateTime<Utc>>>> = Default::default();
    let client = reqwest::Client::new();
    let url = format!("{}/webhooks/am", replica.url);
    let starts = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let began = Instant::now();
    let mut errors = 0usize;
    for (i, (_, alert)) in order.iter().enumerate() {
        let due = began + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        // The alert's first resend may be scheduled before its first send finished: both
        // arrive; only the first is stored.
        let alert = *alert;
        let body = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "lifeboat", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://bench", "groupKey": format!("g{alert}"), "truncatedAlerts": 0,
            "alerts": [{ "status": "firing", "labels": { "alertname": "BenchDown", "service": format!("svc-{alert}") },
                "annotations": {}, "startsAt": starts.to_rfc3339(), "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": format!("{alert:016x}") }]
        });
        let client = client.clone();
        let url = url.clone();
        let first_sent = first_sent.clone();
        tasks.spawn(async move {
            first_sent.lock().expect("lock").entry(alert).or_insert_with(Utc::now);
            let r = client.post(&url).bearer_auth(AM_TOKEN).json(&body).send().await;
            r.map(|r| r.status().is_success()).unwrap_or(false)
        });
        while let Some(done) = tasks.try_join_next() {
            errors += usize::from(!done.unwrap_or(false));
        }
    }
    while let Some(done) = tasks.join_next().await {
        errors += usize::from(!done.unwrap_or(false));
    }
    let sending = began.elapsed();
    drain(&journal, Duration::from_secs(120)).await?;
    let requests = journal
        .requests(&RequestFilter {
            origin: Some(Origin::Webhook),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
    let mut latencies = Vec::new();
    let mut per_alert: HashMap<String, usize> = HashMap::new();
    let first_sent = first_sent.lock().expect("lock").clone();
    let mut not_succeeded = 0;
    for r in &requests {
        let service = r.params.get("service").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        *per_alert.entry(service.clone()).or_default() += 1;
        let run = journal.run(&r.id).await?;
        not_succeeded += usize::from(run.status != RunStatus::Succeeded);
        let alert: usize = service.trim_start_matches("svc-").parse().unwrap_or(usize::MAX);
        if let Some(sent) = first_sent.get(&alert) {
            latencies.push(micros(run.created_at - *sent));
        }
    }
    let more_than_one = per_alert.values().filter(|n| **n > 1).count();
    outln!(
        "webhooks: {total} deliveries in {:.1} s ({:.0}/s), {unique} distinct alerts, {:.0}% resends",
        sending.as_secs_f64(),
        total as f64 / sending.as_secs_f64(),
        duplicates * 100.0
    );
    outln!(
        "runs started: {} for {} alerts ({} alerts with more than one run, {} alerts with none), not succeeded: {not_succeeded}, HTTP errors: {errors}",
        requests.len(),
        unique,
        more_than_one,
        unique.saturating_sub(per_alert.len())
    );
    outln!("{}", summary("webhook to run started", latencies));
    drop(replica);
    Ok(if more_than_one == 0 && per_alert.len() == unique && errors == 0 {
        super::exit::SUCCESS
    } else {
        super::exit::RUN_FAILED
    })
}

pub async fn replicas(state: &str, duration: Duration, kill_every: Duration, count: usize) -> anyhow::Result<u8> {
    if !state.starts_with("postgres") {
        bail!("--state must be a PostgreSQL URL: replicas share a PostgreSQL journal");
    }
    let dir = BenchDir::new()?;
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect::<Result<_, _>>()?;
    let body = "schedules:\n  - { name: tick, plan: bench, cron: \"* * * * * *\", overlap: allow }\n";
    let file = config(dir.path(), ports[0], body, 500)?;
    let log = |i: usize| dir.path().join(format!("replica-{i}.log"));
    let mut replicas = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        replicas.push(start_replica(&file, state, *port, &log(i)).await?);
    }
    let journal = Journal::open(state).await?;
    let began = Instant::now();
    let mut kills = 0;
    while began.elapsed() < duration {
        if kill_every.is_zero() {
            tokio::time::sleep(duration).await;
            break;
        }
        tokio::time::sleep(kill_every.min(duration.saturating_sub(began.elapsed()))).await;
        if began.elapsed() >= duration {
            break;
        }
        let victim = rand::random_range(0..count);
        replicas[victim].child.kill().await?;
        kills += 1;
        replicas[victim] = start_replica(&file, state, ports[victim], &log(victim)).await?;
    }
    let pause = reqwest::Client::new()
        .post(format!("{}/api/v1/schedules/tick/pause", replicas[0].url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "note": "end of the benchmark" }))
        .send()
        .await?;
    if !pause.status().is_success() {
        bail!("pausing the schedule: {}", pause.status());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drain(&journal, Duration::from_secs(180)).await?;
    for r in &mut replicas {
        if let Some(pid) = r.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), r.child.wait()).await;
    }
    let occurrences = journal.occurrences("tick", 1_000_000).await?;
    let mut instants: Vec<i64> = occurrences.iter().map(|o| o.scheduled_at.timestamp()).collect();
    instants.sort_unstable();
    let gaps = instants.windows(2).filter(|w| w[1] - w[0] != 1).count();
    let mut fired = 0;
    let mut finished = 0;
    let mut lags = Vec::new();
    for o in occurrences.iter().filter(|o| o.outcome == OccurrenceOutcome::Fired) {
        fired += 1;
        let Some(id) = &o.run_id else { continue };
        if let Ok(run) = journal.run(id).await {
            finished += usize::from(run.status == RunStatus::Succeeded);
            lags.push(micros(run.created_at - o.fire_at.unwrap_or(o.scheduled_at)));
        }
    }
    let requests = journal
        .requests(&RequestFilter {
            schedule: Some("tick".into()),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
    let mut per_occurrence: HashMap<Option<DateTime<Utc>>, usize> = HashMap::new();
    for r in &requests {
        *per_occurrence.entry(r.scheduled_at).or_default() += 1;
    }
    let duplicates = per_occurrence.values().filter(|n| **n > 1).count();
    let missed = occurrences.iter().filter(|o| o.outcome == OccurrenceOutcome::Missed).count();
    if kill_every.is_zero() {
        outln!("replicas: {count} for {:.0} s, none killed", duration.as_secs_f64());
    } else {
        outln!(
            "replicas: {count} for {:.0} s, {kills} killed (SIGKILL, every {:?})",
            duration.as_secs_f64(),
            kill_every
        );
    }
    outln!(
        "occurrences decided: {}, gaps: {gaps}, fired: {fired}, missed: {missed}, runs finished: {finished}/{fired}, duplicates: {duplicates}",
        occurrences.len()
    );
    outln!("{}", summary("schedule lag (fire time to run started)", lags));
    Ok(if gaps == 0 && missed == 0 && finished == fired && duplicates == 0 {
        super::exit::SUCCESS
    } else {
        super::exit::RUN_FAILED
    })
}

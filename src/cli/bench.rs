//! `lifeboat bench dag`: durable step throughput of the engine on a generated plan;
//! `lifeboat bench proxy`: the fault proxy's overhead (in `bench_proxy.rs`).

use super::exit;
use crate::engine::runner::{self, NewRun, RunOptions};
use clap::Subcommand;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Run a layered DAG of no-op steps and report durable completions per second.
    Dag {
        #[arg(long, default_value_t = 100)]
        layers: usize,
        #[arg(long, default_value_t = 100)]
        width: usize,
        /// How many steps of the previous layer each step needs.
        #[arg(long, default_value_t = 2)]
        needs: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Journal for the benchmark (default: a fresh SQLite file in a temporary directory).
        #[arg(long)]
        journal: Option<String>,
    },
    /// Latency and throughput the TCP fault proxy adds over direct loopback.
    Proxy {
        /// Small round trips per path.
        #[arg(long, default_value_t = 20000)]
        requests: usize,
        /// Alternating direct/proxied rounds.
        #[arg(long, default_value_t = 21)]
        rounds: usize,
        /// MiB per bulk transfer.
        #[arg(long, default_value_t = 256)]
        bulk_mib: u64,
    },
    /// Webhook deliveries at a fixed rate, mostly resends: webhook-to-run-started latency,
    /// and exactly one run per alert (a `lifeboat serve` on --state).
    Webhooks {
        /// Deliveries per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Share of deliveries that resend an alert already sent.
        #[arg(long, default_value_t = 0.9)]
        duplicates: f64,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: std::time::Duration,
    },
    /// Replicas on a PostgreSQL --state firing an every-second schedule while one is killed
    /// at a fixed interval: occurrences fired once, runs finished, duplicates, schedule lag.
    Replicas {
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        duration: std::time::Duration,
        /// 0s: none is killed.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        kill_every: std::time::Duration,
        #[arg(long, default_value_t = 3)]
        count: usize,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::serve::schedule::parse_duration(text).map_err(|e| e.to_string())
}

/// A plan of `layers × width` `sleep 0s` steps; step j of layer l needs `needs` steps of
/// layer l-1, spread so that every step of a layer is needed by someone.
pub fn layered_plan(layers: usize, width: usize, needs: usize, concurrency: usize) -> String {
    let mut y = format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: bench-dag\nspec:\n  concurrency: {concurrency}\n  steps:\n"
    );
    for l in 0..layers {
        for j in 0..width {
            let _ = write!(y, "    - id: s{l}-{j}\n      kind: sleep\n      with: {{ duration: 0s }}\n");
            if l > 0 {
                let list: Vec<String> = (0..needs.min(width)).map(|k| format!("s{}-{}", l - 1, (j + k) % width)).collect();
                let _ = writeln!(y, "      needs: [{}]", list.join(", "));
            }
        }
    }
    y
}

pub async fn run(state: &str, cmd: BenchCommand) -> anyhow::Result<u8> {
    let (layers, width, needs, concurrency, journal) = match cmd {
        BenchCommand::Proxy {
            requests,
            rounds,
            bulk_mib,
        } => {
            out!("{}", super::bench_proxy::run(requests, rounds, bulk_mib).await?);
            return Ok(exit::SUCCESS);
        }
        BenchCommand::Webhooks {
            rate,
            duplicates,
            duration,
        } => return super::bench_serve::webhooks(state, rate, duplicates, duration).await,
        BenchCommand::Replicas {
            duration,
            kill_every,
            count,
        } => return super::bench_serve::replicas(state, duration, kill_every, count).await,
        BenchCommand::Dag {
            layers,
            width,
            needs,
            concurrency,
            journal,
        } => (layers, width, needs, concurrency, journal),
    };
    let source = layered_plan(layers, width, needs, concurrency);
    let compile_start = std::time::Instant::now();
    let plan = crate::plan::compile("bench-dag.yaml", &source, crate::steps::catalog())
        .map_err(|d| anyhow::anyhow!(crate::plan::diagnostic::render_all(&d, &source)))?;
    let compile_time = compile_start.elapsed();
    let dir = tempfile_dir()?;
    let url = journal.unwrap_or_else(|| dir.join("bench.db").display().to_string());
    let journal = crate::journal::Journal::open(&url).await?;
    let steps = layers * width;
    let start = std::time::Instant::now();
    let report = runner::start(
        &journal,
        NewRun {
            plan_file: "bench-dag.yaml".into(),
            plan_source: source,
            plan: Arc::new(plan),
            params: Default::default(),
        },
        &RunOptions::default(),
    )
    .await?;
    let elapsed = start.elapsed();
    let events = journal.events(&report.run_id).await?.len();
    journal.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    outln!("plan: {layers} layers x {width} steps = {steps} steps, each needing {needs} of the previous layer, concurrency {concurrency}");
    outln!(
        "journal: {} ({events} events, each batch committed durably before dependants start)",
        if url.starts_with("postgres") { "postgres" } else { "sqlite" }
    );
    outln!("status: {}", report.status.as_str());
    outln!("compile: {:.1} ms", compile_time.as_secs_f64() * 1000.0);
    outln!("run: {:.2} s", elapsed.as_secs_f64());
    outln!("throughput: {:.0} durable step completions/s", steps as f64 / elapsed.as_secs_f64());
    outln!("peak RSS: {:.1} MB", peak_rss_kb().unwrap_or(0) as f64 / 1024.0);
    Ok(if report.status == crate::journal::RunStatus::Succeeded {
        exit::SUCCESS
    } else {
        exit::RUN_FAILED
    })
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("lifeboat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

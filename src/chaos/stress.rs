//! CPU and memory pressure: busy threads and touched memory in-process, or `stress-ng`
//! when asked for and installed.

use super::{ChaosError, Injection, Revert, evidence, ts};
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Builtin,
    StressNg,
}

pub struct StressOptions {
    pub cpu_workers: usize,
    pub memory_bytes: u64,
    pub engine: Engine,
    /// Only for stress-ng: its own timeout, so a crashed engine cannot leave it running.
    pub duration: std::time::Duration,
}

const PAGE: usize = 4096;

/// `spawner` starts stress-ng (its own process group, recorded); the builtin engine needs none.
pub async fn inject(options: StressOptions, spawner: lifeboat_backup::process::Spawner) -> Result<Injection, ChaosError> {
    if options.cpu_workers == 0 && options.memory_bytes == 0 {
        return Err(ChaosError::Invalid("set `cpu` workers and/or `memory` to apply pressure".into()));
    }
    match options.engine {
        Engine::Builtin => builtin(options).await,
        Engine::StressNg => stress_ng(options, spawner).await,
    }
}

async fn builtin(options: StressOptions) -> Result<Injection, ChaosError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..options.cpu_workers {
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut x: u64 = 1;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
        }));
    }
    let bytes = usize::try_from(options.memory_bytes).map_err(|_| ChaosError::Invalid("memory: too large".into()))?;
    let rss_before = rss_bytes();
    let memory = tokio::task::spawn_blocking(move || {
        let mut block: Vec<u8> = Vec::new();
        block.try_reserve_exact(bytes).map(|_| {
            block.resize(bytes, 0);
            // Touch every page so the memory is resident, not just reserved.
            for i in (0..bytes).step_by(PAGE) {
                block[i] = 1;
            }
            block
        })
    })
    .await
    .map_err(|e| ChaosError::NotApplied(format!("allocating memory: {e}")))?
    .map_err(|e| ChaosError::NotApplied(format!("cannot allocate {bytes} bytes: {e}")))?;
    let injected_at = Utc::now();
    let rss_after = rss_bytes();
    let ev = evidence([
        ("engine", "builtin".into()),
        ("cpu_workers", options.cpu_workers.into()),
        ("memory_bytes", options.memory_bytes.into()),
        ("rss_before_bytes", rss_before.into()),
        ("rss_after_bytes", rss_after.into()),
        ("loadavg_at_start", loadavg().into()),
        ("started_at", ts(injected_at)),
    ]);
    let undo = Box::pin(async move {
        stop.store(true, Ordering::Relaxed);
        let load = loadavg();
        for w in workers {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        drop(memory);
        Ok(evidence([("loadavg_at_end", load.into())]))
    });
    Ok(Injection {
        injected_at,
        evidence: ev,
        revert: Some(Revert { undo, durable: None }),
    })
}

async fn stress_ng(options: StressOptions, spawner: lifeboat_backup::process::Spawner) -> Result<Injection, ChaosError> {
    let mut cmd = tokio::process::Command::new("stress-ng");
    if options.cpu_workers > 0 {
        cmd.args(["--cpu", &options.cpu_workers.to_string()]);
    }
    if options.memory_bytes > 0 {
        cmd.args(["--vm", "1", "--vm-bytes", &options.memory_bytes.to_string(), "--vm-keep"]);
    }
    cmd.args(["--timeout", &format!("{}s", options.duration.as_secs().max(1))]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = spawner.spawn(cmd).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ChaosError::Invalid("engine: stress-ng is not installed (apt install stress-ng) — or use engine: builtin".into())
        }
        _ => ChaosError::NotApplied(format!("starting stress-ng: {e}")),
    })?;
    let pid = child.id().unwrap_or_default();
    // stress-ng forks its workers right away; seeing one is the evidence it runs.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    if let Ok(Some(status)) = child.try_wait() {
        return Err(ChaosError::NotApplied(format!("stress-ng exited at once ({status})")));
    }
    let injected_at = Utc::now();
    let undo = Box::pin(async move {
        let _ = child.start_kill();
        let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
        Ok(evidence([("stress_ng_exit", status.into())]))
    });
    Ok(Injection {
        injected_at,
        evidence: evidence([
            ("engine", "stress-ng".into()),
            ("pid", pid.into()),
            ("cpu_workers", options.cpu_workers.into()),
            ("memory_bytes", options.memory_bytes.into()),
            ("started_at", ts(injected_at)),
        ]),
        revert: Some(Revert { undo, durable: None }),
    })
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned()
}

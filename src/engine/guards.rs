//! Guards: halt conditions watched while a run's steps run. Each guard's probe is checked
//! every `interval`; `failure_threshold` failures in a row are a breach, which the runner
//! turns into an abort (reverting every active fault at once). A guard task that dies is a
//! breach too (the runner watches the tasks): a halt condition never vanishes silently.

use crate::plan::compiled::Guard;
use crate::steps::validation::probe_for;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Breach {
    pub guard: String,
    pub error: String,
    pub failures: u32,
    pub rollback: bool,
}

/// Starts watching `guard` with its already rendered options, as a task of `tasks`; a breach
/// is sent once.
pub fn watch(
    guard: Guard,
    with: Result<serde_json::Value, String>,
    breaches: mpsc::UnboundedSender<Breach>,
    stop: CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let probe = with.and_then(|w| probe_for(&guard.kind, w).map_err(|e| e.message));
    tasks.spawn(async move {
        let probe = match probe {
            Ok(p) => p,
            Err(e) => {
                let _ = breaches.send(Breach {
                    guard: guard.id.clone(),
                    error: format!("the guard cannot run: {e}"),
                    failures: 0,
                    rollback: guard.rollback,
                });
                return;
            }
        };
        // The compiler refuses a zero interval; a zero here would make `interval` panic.
        let period = guard.interval.max(Duration::from_millis(1));
        let check_limit = period.clamp(Duration::from_secs(1), Duration::from_secs(10));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.cancelled() => return,
            }
            let outcome = tokio::select! {
                r = tokio::time::timeout(check_limit, probe.check()) => r,
                _ = stop.cancelled() => return,
            };
            let error = match outcome {
                Ok(Ok(_)) => {
                    failures = 0;
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {check_limit:?}"),
            };
            failures += 1;
            tracing::warn!(guard = %guard.id, failures, error = %error, "guard check failed");
            if failures >= guard.failure_threshold {
                let _ = breaches.send(Breach {
                    guard: guard.id.clone(),
                    error,
                    failures,
                    rollback: guard.rollback,
                });
                return;
            }
        }
    });
}

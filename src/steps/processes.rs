//! The processes that step attempts start. Each is journaled before it runs (through the
//! attempt's [`Spawner`](lifeboat_backup::process::Spawner)); when a crashed run is resumed,
//! [`stop_leftovers`] stops whatever is left of them *before* any step runs again, so an
//! attempt orphaned by the crash never runs beside its own re-run.

use super::context::RunHandle;
use crate::evidence::process::{ProcessStarted, ProcessStopped};
use crate::journal::owner::this_host;
use chrono::Utc;
use lifeboat_backup::process::{Recorded, SpawnRecorder, Stopped};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long a leftover process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Journals each child of one attempt of one step.
pub(super) struct Recorder {
    pub run: RunHandle,
    pub step: String,
    pub attempt: u32,
}

#[async_trait::async_trait]
impl SpawnRecorder for Recorder {
    async fn record(&self, child: &Recorded) -> Result<(), String> {
        let record = ProcessStarted {
            number: self.run.next_process_number(),
            attempt: self.attempt,
            host: this_host(),
            process: child.clone(),
            started_at: Utc::now(),
            stopped: None,
        };
        tracing::debug!(run = %self.run.run_id(), step = %self.step, attempt = self.attempt, pid = child.pid, program = %self.run.redact(&child.program), "started a process");
        self.run.record(&self.step, &record).await.map_err(|e| e.message)
    }
}

/// Waits for a step's program to exit. On cancellation (abort, timeout) stops its whole group
/// — SIGTERM, `grace`, SIGKILL — and returns the cancellation as the step's error.
pub async fn wait_or_stop(
    cancel: &tokio_util::sync::CancellationToken,
    child: &mut tokio::process::Child,
    group: &Recorded,
    grace: Duration,
    program: &str,
) -> Result<std::process::ExitStatus, super::StepError> {
    tokio::select! {
        status = child.wait() => status.map_err(|e| super::StepError::retryable(format!("waiting for `{program}`: {e}"))),
        _ = cancel.cancelled() => {
            let stopped = group.stop(grace).await;
            let _ = child.wait().await;
            Err(super::StepError::retryable(match stopped {
                Ok(_) => format!("cancelled; `{program}` was stopped"),
                Err(e) => format!("cancelled, but stopping `{program}` failed: {e}"),
            }))
        }
    }
}

/// Stops every process the run's attempts started that is still alive on this host, and
/// journals what it stopped. `in_flight` are the steps whose attempts were running when
/// the previous owner died: processes of theirs recorded on another host cannot be seen
/// from here, so the resume refuses unless `remote_checked` says a person made sure.
pub async fn stop_leftovers(run: &RunHandle, in_flight: &BTreeSet<String>, remote_checked: bool) -> Result<usize, String> {
    let records = run.all_records::<ProcessStarted>().await.map_err(|e| e.message)?;
    let here = this_host();
    let remote: Vec<String> = records
        .iter()
        .filter(|(step, r)| r.host != here && r.stopped.is_none() && in_flight.contains(step))
        .map(|(step, r)| format!("step `{step}`: `{}` (pid {}) on {}", r.process.program, r.process.pid, r.host))
        .collect();
    if !remote.is_empty() && !remote_checked {
        return Err(format!(
            "steps that were running when the run was interrupted started processes on another host, which this host cannot \
             see or stop: {}. Resume the run on that host, or make sure those processes are gone and resume with \
             --remote-processes-stopped",
            remote.join("; ")
        ));
    }
    let mut stopped = 0;
    for (step, record) in records {
        if record.host != here || record.stopped.is_some() || record.process.survivors().is_empty() {
            continue;
        }
        tracing::warn!(run = %run.run_id(), step = %step, pid = record.process.pid, program = %run.redact(&record.process.program),
            "stopping a process left running by the interrupted owner");
        let outcome = record
            .process
            .stop(STOP_GRACE)
            .await
            .map_err(|e| format!("step `{step}`: {e}; the run is not resumed while that process may still be running"))?;
        if outcome != Stopped::AlreadyGone {
            stopped += 1;
        }
        let record = ProcessStarted {
            stopped: Some(ProcessStopped {
                at: Utc::now(),
                outcome,
                by: format!("resume by pid {} on {here}", std::process::id()),
            }),
            ..record
        };
        run.record(&step, &record).await.map_err(|e| e.message)?;
    }
    Ok(stopped)
}

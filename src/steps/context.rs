//! The step interface: what an attempt knows about where it runs ([`StepContext`]) and the
//! narrow handle on its run through which it does everything that outlives the call
//! ([`RunHandle`]): evidence records, approvals, background work, the processes it starts.
//!
//! An adapter never sees the journal. Every string it writes through the handle is masked
//! by the run's redactor on the way, so a secret cannot reach the journal by an adapter
//! forgetting to mask it.

use super::StepError;
use super::background::{self, Class, Release};
use crate::evidence::{self, Evidence};
/// A person's decision on a step, as the handle reads it.
pub use crate::journal::{Decision, DecisionKind};
use crate::journal::{Journal, JournalError};
use crate::secrets::Redactor;
use lifeboat_backup::process::Spawner;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a step attempt knows about where it runs.
#[derive(Clone)]
pub struct StepContext {
    pub run_id: String,
    pub step_id: String,
    /// `<run id>/<step id>`: the same for every attempt and after a crash, so a step can
    /// recognise work it already did.
    pub idempotency_key: String,
    pub attempt: u32,
    /// Cancelled on abort or timeout; adapters stop their work and clean up.
    pub cancel: CancellationToken,
    pub run: RunHandle,
    /// The Kubernetes cluster of a Kubernetes step (`None`: the default kubeconfig).
    pub cluster: Option<super::k8s::access::ClusterAccess>,
    /// The plan's recovery point objective, for steps that check it is achievable.
    pub rpo_objective: Option<std::time::Duration>,
}

impl StepContext {
    /// Starts this attempt's programs: each is recorded before it runs, so that a resume
    /// after a crash can stop it before the step runs again.
    pub fn spawner(&self) -> Spawner {
        self.run.spawner(&self.step_id, self.attempt)
    }

    /// Writes evidence about this step.
    pub async fn record<E: Evidence>(&self, record: &E) -> Result<(), StepError> {
        self.run.record(&self.step_id, record).await
    }

    /// The evidence about this step written so far (by any attempt).
    pub async fn records<E: Evidence>(&self) -> Result<Vec<E>, StepError> {
        self.run.records(&self.step_id).await
    }
}

/// A step's handle on its run. Cheap to clone; background work keeps a clone.
#[derive(Clone)]
pub struct RunHandle(Arc<RunInner>);

struct RunInner {
    journal: Journal,
    run_id: String,
    redactor: Arc<Redactor>,
    /// Background work that died: the runner aborts the run with the reason.
    failures: mpsc::UnboundedSender<String>,
    next_process: AtomicI64,
}

impl RunHandle {
    /// Made by the engine for each run it drives. `next_process` is the first unused key of
    /// the run's process records.
    pub fn new(
        journal: Journal,
        run_id: String,
        redactor: Arc<Redactor>,
        failures: mpsc::UnboundedSender<String>,
        next_process: i64,
    ) -> RunHandle {
        RunHandle(Arc::new(RunInner {
            journal,
            run_id,
            redactor,
            failures,
            next_process: AtomicI64::new(next_process),
        }))
    }

    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// Masks the run's secrets in text bound for a message or a log.
    pub fn redact(&self, text: &str) -> String {
        self.0.redactor.redact(text)
    }

    /// Writes evidence about `subject` (a step id, a proxy name), masked.
    pub async fn record<E: Evidence>(&self, subject: &str, record: &E) -> Result<(), StepError> {
        self.record_all(subject, std::slice::from_ref(record))
            .await
            .map_err(|e| StepError::retryable(format!("journal: {e}")))
    }

    /// Writes several records about `subject` in one transaction, masked.
    pub async fn record_all<E: Evidence>(&self, subject: &str, records: &[E]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        evidence::write(&self.0.journal, &self.0.redactor, &self.0.run_id, subject, records).await
    }

    pub async fn records<E: Evidence>(&self, subject: &str) -> Result<Vec<E>, StepError> {
        evidence::read(&self.0.journal, &self.0.run_id, subject)
            .await
            .map_err(journal_error)
    }

    /// Every record of a type in the run, with its subject.
    pub async fn all_records<E: Evidence>(&self) -> Result<Vec<(String, E)>, StepError> {
        evidence::read_all(&self.0.journal, &self.0.run_id).await.map_err(journal_error)
    }

    /// Approve/reject decisions posted for `step`, oldest first.
    pub async fn decisions(&self, step: &str) -> Result<Vec<Decision>, StepError> {
        self.0
            .journal
            .decisions_for(&self.0.run_id, step)
            .await
            .map_err(|e| StepError::retryable(format!("reading approvals from the journal: {e}")))
    }

    /// Keeps work `step` started until it is released (see [`background`]).
    pub fn hold(&self, step: &str, class: Class, release: Release) {
        background::register(&self.0.run_id, step, class, release);
    }

    pub fn holds(&self, step: &str, class: Class) -> bool {
        background::is_active(&self.0.run_id, step, class)
    }

    /// Releases the work of `class` that `step` started; returns how many entries.
    pub async fn release_step(&self, step: &str, class: Class, reason: &str) -> usize {
        background::release_step(&self.0.run_id, step, class, reason).await
    }

    /// Releases every entry of `class` in the run.
    pub async fn release_class(&self, class: Class, reason: &str) -> usize {
        background::release_class(&self.0.run_id, class, reason).await
    }

    /// Runs `task` in the background for the run. If it panics, the run is aborted with the
    /// reason: background work that vanishes silently would leave a drill measuring nothing.
    pub fn supervise(&self, what: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        let what = what.into();
        let handle = self.clone();
        let task = tokio::spawn(task);
        tokio::spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                handle.report_failure(format!("{what} crashed: {}", panic_message(e)));
            }
        });
    }

    /// Tells the runner that background work of the run died; it aborts the run.
    pub fn report_failure(&self, reason: String) {
        let reason = self.redact(&reason);
        tracing::error!(run = %self.0.run_id, reason = %reason, "background work failed; the run will be aborted");
        let _ = self.0.failures.send(reason);
    }

    /// Starts programs for an attempt of `step`, recording each before it runs.
    pub fn spawner(&self, step: &str, attempt: u32) -> Spawner {
        Spawner::recorded_by(Arc::new(super::processes::Recorder {
            run: self.clone(),
            step: step.to_owned(),
            attempt,
        }))
    }

    pub(super) fn next_process_number(&self) -> i64 {
        self.0.next_process.fetch_add(1, Ordering::SeqCst)
    }
}

fn journal_error(e: JournalError) -> StepError {
    StepError::retryable(format!("journal: {e}"))
}

/// The text of a panic, as far as it can be told.
pub fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn background_work_that_panics_is_reported_to_the_runner_masked() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db").display().to_string()).await.unwrap();
        let (failures, mut reported) = mpsc::unbounded_channel();
        let redactor = Arc::new(Redactor::new(["hunter2-secret".to_owned()]));
        let run = RunHandle::new(journal, "run".into(), redactor, failures, 0);
        run.supervise("the canary's writer", async { panic!("lost hunter2-secret") });
        let reason = tokio::time::timeout(Duration::from_secs(5), reported.recv())
            .await
            .expect("the death was reported")
            .unwrap();
        assert_eq!(reason, "the canary's writer crashed: lost ***");
        run.supervise("a task that ends", async {});
        assert!(tokio::time::timeout(Duration::from_millis(200), reported.recv()).await.is_err());
    }
}

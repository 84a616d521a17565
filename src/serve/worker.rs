//! The worker: every replica starts queued requests as runs, drives them, and takes over
//! runs whose owner died (judged by the database's clock, or exactly by pid on this host).
//!
//! # Expected flow
//! Each turn the worker takes queued requests (creating each run in the same transaction,
//! see [`crate::journal::requests`]) up to its concurrency, and every few turns scans the
//! running runs for interrupted ones, which it resumes — the journal's owner
//! compare-and-swap lets exactly one replica win each.
//!
//! # Guarantees
//! A run is driven by one process at a time. On shutdown each run is handed over
//! ([`crate::engine::runner::RunOptions::handoff`]): its finished attempts are journaled
//! and its ownership released, so another replica (or this one, restarted) continues it.
//!
//! # Caveats
//! Runs whose dead owner left processes on another host are not taken over automatically
//! (this host cannot stop them); they wait for `lifeboat resume --remote-processes-stopped`.

use super::metrics::Metrics;
use crate::engine::runner::{self, EngineError, Notice, RunOptions};
use crate::journal::{Event, Journal, Owner};
use crate::plan;
use crate::steps;
use chrono::Utc;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const POLL: Duration = Duration::from_millis(100);
const TAKEOVER_SCAN: Duration = Duration::from_secs(1);

pub struct Worker {
    pub journal: Journal,
    pub replica: String,
    pub metrics: Arc<Metrics>,
    pub max_runs: usize,
    pub handoff_grace: Duration,
    /// Woken when a request was queued here, so it starts without waiting for the poll.
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Starts and drives runs until `stop`; then hands every run over and returns once all
    /// are handed over or finished.
    pub async fn run(self, stop: CancellationToken) {
        let handoff = CancellationToken::new();
        let driving: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut runs: JoinSet<()> = JoinSet::new();
        let mut next_scan = Instant::now();
        let mut retry_after: HashMap<String, Instant> = HashMap::new();
        let mut drill_verdicts = super::emergency::DrillVerdicts::new();
        let me = Owner::me();
        loop {
            while runs.try_join_next().is_some() {}
            while runs.len() < self.max_runs && !stop.is_cancelled() {
                match self.take_one(&me, &handoff, &driving, &mut runs).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take queued requests from the journal");
                        break;
                    }
                }
            }
            if Instant::now() >= next_scan && !stop.is_cancelled() {
                next_scan = Instant::now() + TAKEOVER_SCAN;
                if let Err(e) = self.take_over(&handoff, &driving, &mut runs, &mut retry_after).await {
                    tracing::warn!(error = %e, "cannot scan the journal for interrupted runs");
                }
                if let Err(e) = enforce_emergency_stop(&self.journal, &mut drill_verdicts).await {
                    tracing::warn!(error = %e, "cannot enforce the emergency stop this scan");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        tracing::info!(runs = runs.len(), "handing the runs over");
        handoff.cancel();
        while runs.join_next().await.is_some() {}
    }

    async fn take_one(
        &self,
        me: &Owner,
        handoff: &CancellationToken,
        driving: &Arc<Mutex<HashSet<String>>>,
        runs: &mut JoinSet<()>,
    ) -> Result<bool, crate::journal::JournalError> {
        let mut prepared = None;
        let started = Instant::now();
        let stop = super::emergency::engaged(&self.journal).await?;
        let taken = self
            .journal
            .take_next_request(me, &self.replica, |request| {
                let compiled = plan::compile(&request.plan_file, &request.plan_source, steps::catalog()).map_err(|d| {
                    format!(
                        "its plan no longer compiles: {}",
                        plan::diagnostic::render_all(&d, &request.plan_source)
                    )
                })?;
                if let Some(stop) = stop.as_ref().filter(|_| super::emergency::is_drill(&compiled)) {
                    return Err(format!("not started: the emergency stop is engaged (by {})", stop.changed_by));
                }
                let new = runner::NewRun {
                    plan_file: request.plan_file.clone(),
                    plan_source: request.plan_source.clone(),
                    plan: Arc::new(compiled),
                    params: request.params.clone(),
                };
                let created = runner::created_event(&new);
                let lock = new.plan.lock.clone();
                prepared = Some((new, created.clone()));
                Ok((lock, vec![created]))
            })
            .await?;
        self.metrics.journal_op("take_request", started.elapsed());
        let Some((request, result)) = taken else {
            return Ok(false);
        };
        if let Err(reason) = result {
            tracing::error!(request = %request.id, reason = %reason, "a queued request cannot start");
            return Ok(true);
        }
        let Some((new, created)) = prepared else {
            return Ok(true);
        };
        if let (Some(schedule), Some(_)) = (&request.schedule, request.scheduled_at) {
            let lag = (Utc::now() - request.not_before).to_std().unwrap_or_default();
            self.metrics.schedule_lag(schedule, lag);
        }
        tracing::info!(run = %request.id, plan = %request.plan_name, origin = request.origin.as_str(), "run started");
        let run_id = request.id.clone();
        let options = self.options(handoff);
        let journal = self.journal.clone();
        let metrics = self.metrics.clone();
        let driving = driving.clone();
        driving.lock().expect("driving lock").insert(run_id.clone());
        runs.spawn(async move {
            let result = runner::drive_created(&journal, &run_id, new, &created, &options).await;
            finish(&journal, &metrics, &run_id, result).await;
            driving.lock().expect("driving lock").remove(&run_id);
        });
        Ok(true)
    }

    async fn take_over(
        &self,
        handoff: &CancellationToken,
        driving: &Arc<Mutex<HashSet<String>>>,
        runs: &mut JoinSet<()>,
        retry_after: &mut HashMap<String, Instant>,
    ) -> Result<(), crate::journal::JournalError> {
        for row in self.journal.running_runs().await? {
            if !row.is_interrupted() || driving.lock().expect("driving lock").contains(&row.id) || runs.len() >= self.max_runs {
                continue;
            }
            if retry_after.get(&row.id).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            retry_after.insert(row.id.clone(), Instant::now() + Duration::from_secs(30));
            let run_id = row.id.clone();
            let options = self.options(handoff);
            let journal = self.journal.clone();
            let metrics = self.metrics.clone();
            let driving = driving.clone();
            driving.lock().expect("driving lock").insert(run_id.clone());
            tracing::warn!(run = %run_id, dead_owner_pid = row.owner.pid, dead_owner_host = %row.owner.host, "taking over an interrupted run");
            runs.spawn(async move {
                let result = runner::resume(&journal, &run_id, None, &options).await;
                if let Err(EngineError::NotResumable(why)) = &result {
                    tracing::info!(run = %run_id, reason = %why, "not taken over");
                } else {
                    finish(&journal, &metrics, &run_id, result).await;
                }
                driving.lock().expect("driving lock").remove(&run_id);
            });
        }
        Ok(())
    }

    fn options(&self, handoff: &CancellationToken) -> RunOptions {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(observe_steps(rx, self.metrics.clone()));
        RunOptions {
            wait_for_lock: true,
            notices: Some(tx),
            remote_processes_stopped: false,
            handoff: Some(handoff.clone()),
            handoff_grace: self.handoff_grace,
        }
    }
}

/// While the emergency stop is engaged, catches drills that raced its engaging.
async fn enforce_emergency_stop(
    journal: &Journal,
    verdicts: &mut super::emergency::DrillVerdicts,
) -> Result<(), crate::journal::JournalError> {
    match super::emergency::engaged(journal).await? {
        Some(stop) => {
            super::emergency::enforce(journal, &stop, verdicts).await?;
        }
        // Ids are never reused, but the map need not outlive the stop.
        None => verdicts.clear(),
    }
    Ok(())
}

/// What happens after a run's driver returns: metrics, and a run this replica still owns
/// but stopped driving (a journal error) is released for another to take over.
async fn finish(journal: &Journal, metrics: &Metrics, run_id: &str, result: Result<runner::RunReport, EngineError>) {
    match result {
        Ok(report) => {
            let plan = journal.run(run_id).await.map(|r| r.plan_name).unwrap_or_default();
            metrics.run_finished(&plan, report.status);
            tracing::info!(run = %run_id, status = report.status.as_str(), "run finished");
        }
        Err(EngineError::HandedOver(_)) => {}
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "the run stopped without finishing; releasing it for a takeover");
            if let Err(e) = journal.release_ownership(run_id, &Owner::me()).await {
                tracing::error!(run = %run_id, error = %e, "could not release the run; it is taken over once this replica's heartbeat is stale");
            }
        }
    }
}

/// Step durations by kind, from the run's journaled events.
async fn observe_steps(mut notices: mpsc::UnboundedReceiver<Notice>, metrics: Arc<Metrics>) {
    let mut plan = None;
    let mut started = HashMap::new();
    while let Some(notice) = notices.recv().await {
        match notice {
            Notice::Begin { plan: p, .. } => plan = Some(p),
            Notice::Event { at, event } => match &event {
                Event::StepStarted { step, .. } => {
                    started.insert(step.clone(), at);
                }
                Event::StepSucceeded { step, .. } | Event::StepFailed { step, .. } => {
                    let outcome = if matches!(event, Event::StepSucceeded { .. }) {
                        "succeeded"
                    } else {
                        "failed"
                    };
                    let kind = plan
                        .as_ref()
                        .and_then(|p| p.units.iter().find(|u| &u.id == step))
                        .map(|u| u.kind.clone())
                        .unwrap_or_default();
                    if let Some(t) = started.remove(step) {
                        metrics.step_finished(&kind, outcome, (at - t).to_std().unwrap_or_default());
                    }
                }
                _ => {}
            },
        }
    }
}

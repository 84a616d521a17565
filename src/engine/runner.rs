//! The runner: drives a [`RunState`] with real effects.
//!
//! # Expected flow
//! Each turn of the loop collects what happened (attempt results, abort commands, timers),
//! asks the core for the next events, writes them all to the journal in one transaction
//! (group commit: many step completions cost one fsync), and only then starts attempts.
//!
//! # Guarantees
//! A step's `StepStarted` is durable before the step runs; its result is durable before
//! any step that needs it starts. A step that succeeded is never run again, by this
//! process or by `lifeboat resume`.
//!
//! # Assumptions
//! This process owns the run (it created or claimed it) and is its only journal writer.
//!
//! # Caveats
//! If the process dies mid-attempt, the attempt's effects are unknown; `resume` runs the
//! step again with the same idempotency key. If a journal write fails, the runner stops
//! at once and leaves the run interrupted, to be resumed.

use super::guards;
use super::state::{AttemptResult, RunState};
use crate::evidence::process::ProcessStarted;
use crate::journal::{Event, Journal, JournalError, LockOutcome, Owner, RunStatus};
use crate::plan::compiled::CompiledPlan;
use crate::plan::template;
use crate::secrets::Redactor;
use crate::steps::background;
use crate::steps::{self, RunHandle, StepContext, StepError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("lock `{name}` is held by run {by_run} (pid {pid} on {host}); wait for it to finish, or pass --wait to queue behind it")]
    LockHeld {
        name: String,
        by_run: String,
        pid: u32,
        host: String,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    NotResumable(String),
    #[error("run {run}: its plan no longer compiles, so it cannot be resumed:\n{errors}")]
    PlanChanged { run: String, errors: String },
    #[error("interrupted by a second signal; run {0} is left interrupted: `lifeboat resume {0}` continues it")]
    Interrupted(String),
    #[error("run {run} cannot be resumed yet: {reason}")]
    LeftoversNotStopped { run: String, reason: String },
    #[error("run {0} was handed over: this process is shutting down and another takes it over from the journal")]
    HandedOver(String),
}

/// What the live view is told: every journaled event, with the run's plan up front.
#[derive(Debug, Clone)]
pub enum Notice {
    Begin {
        run_id: String,
        plan: Arc<CompiledPlan>,
        resumed: bool,
    },
    Event {
        at: DateTime<Utc>,
        event: Event,
    },
}

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Queue behind a held lock instead of failing.
    pub wait_for_lock: bool,
    pub notices: Option<mpsc::UnboundedSender<Notice>>,
    /// On resume: a person made sure that processes the interrupted owner started on
    /// another host are gone (this host cannot see them).
    pub remote_processes_stopped: bool,
    /// Service mode: signals are the service's business, not the run's. When this token is
    /// cancelled the run is handed over: no new attempt starts, running ones get
    /// [`RunOptions::handoff_grace`] to finish and be journaled, then the run's ownership is
    /// released for another process to take over at once.
    pub handoff: Option<CancellationToken>,
    pub handoff_grace: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub reason: Option<String>,
}

/// A plan ready to start as a new run.
#[derive(Clone)]
pub struct NewRun {
    pub plan_file: String,
    pub plan_source: String,
    pub plan: Arc<CompiledPlan>,
    pub params: BTreeMap<String, Value>,
}

const INBOX_POLL: Duration = Duration::from_millis(250);

/// A run id: readable time, then 32 random bits, since the API may be asked for many runs
/// in the same second (with 16 bits, 120 of them clashed about one time in nine).
pub fn new_run_id() -> String {
    let now = Utc::now();
    format!("{}-{:08x}", now.format("%Y%m%d-%H%M%S"), rand::random::<u32>())
}

/// Starts a new run and drives it to its end.
pub async fn start(journal: &Journal, new: NewRun, options: &RunOptions) -> Result<RunReport, EngineError> {
    let run_id = new_run_id();
    let me = Owner::me();
    if let Some(lock) = &new.plan.lock {
        acquire_lock(journal, lock, &run_id, options.wait_for_lock).await?;
    }
    let created = created_event(&new);
    if let Err(e) = journal
        .create_run(
            &run_id,
            &new.plan.name,
            new.plan.lock.as_deref(),
            &me,
            std::slice::from_ref(&created),
        )
        .await
    {
        if let Some(lock) = &new.plan.lock {
            let _ = journal.release_lock(lock, &run_id).await;
        }
        return Err(e.into());
    }
    drive_created(journal, &run_id, new, &created, options).await
}

/// The first event of a new run.
pub fn created_event(new: &NewRun) -> Event {
    Event::RunCreated {
        plan_name: new.plan.name.clone(),
        plan_file: new.plan_file.clone(),
        plan_source: new.plan_source.clone(),
        plan_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(new.plan_source.as_bytes())),
        params: new.params.clone(),
        lock: new.plan.lock.clone(),
    }
}

/// Drives a run this process has just created (its row and `created` are journaled, with
/// this process as owner) to its end. Takes the plan's lock first if it has one.
pub async fn drive_created(
    journal: &Journal,
    run_id: &str,
    new: NewRun,
    created: &Event,
    options: &RunOptions,
) -> Result<RunReport, EngineError> {
    if let Some(lock) = &new.plan.lock {
        acquire_lock(journal, lock, run_id, options.wait_for_lock).await?;
    }
    let mut state = RunState::new(new.plan.clone(), run_id.to_owned(), Utc::now(), new.params, env_snapshot(&new.plan));
    state.apply(created, Utc::now());
    tracing::info!(run = %run_id, plan = %new.plan.name, "run created");
    notify(
        options,
        Notice::Begin {
            run_id: run_id.to_owned(),
            plan: new.plan.clone(),
            resumed: false,
        },
    );
    Runner::new(journal.clone(), state, 1, options.clone()).await?.drive().await
}

/// Loads a run from the journal, rebuilding its state. Does not take ownership.
pub async fn load(journal: &Journal, run_id: &str) -> Result<(RunState, i64, crate::journal::RunRow), EngineError> {
    let row = journal.find_run(run_id).await?;
    let events = journal.events(&row.id).await?;
    let Some(Event::RunCreated {
        plan_file,
        plan_source,
        params,
        ..
    }) = events.first().map(|r| &r.event)
    else {
        return Err(EngineError::NotResumable(format!(
            "run {} has no RunCreated event; the journal is damaged",
            row.id
        )));
    };
    let plan = crate::plan::compile(plan_file, plan_source, steps::catalog()).map_err(|diags| EngineError::PlanChanged {
        run: row.id.clone(),
        errors: crate::plan::diagnostic::render_all(&diags, plan_source),
    })?;
    let plan = Arc::new(plan);
    let env = env_snapshot(&plan);
    let state = RunState::replay(plan, row.id.clone(), params.clone(), env, &events);
    let next_seq = events.last().map_or(0, |r| r.seq + 1);
    Ok((state, next_seq, row))
}

/// Continues an interrupted run. `abort` stops it (running `finally`) instead.
pub async fn resume(
    journal: &Journal,
    run_id: &str,
    abort: Option<(String, Option<String>, bool)>,
    options: &RunOptions,
) -> Result<RunReport, EngineError> {
    let (state, next_seq, row) = load(journal, run_id).await?;
    let run_id = row.id.clone();
    if row.status != RunStatus::Running || state.finished.is_some() {
        return Err(EngineError::NotResumable(format!(
            "run {run_id} already finished ({}); nothing to resume",
            row.status.as_str()
        )));
    }
    if !row.is_interrupted() {
        return Err(EngineError::NotResumable(format!(
            "run {run_id} is still running (pid {} on {}); use `lifeboat abort {run_id}` to stop it",
            row.owner.pid, row.owner.host
        )));
    }
    let me = Owner::me();
    if !journal.claim(&run_id, &row.owner, &me).await? {
        return Err(EngineError::NotResumable(format!(
            "run {run_id} was taken over by another process just now"
        )));
    }
    if let Some(lock) = &state.plan.lock {
        acquire_lock(journal, lock, &run_id, options.wait_for_lock).await?;
    }
    let rerun: Vec<String> = state
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.status, super::state::UnitStatus::Running { .. }))
        .map(|(i, _)| state.plan.units[i].id.clone())
        .collect();
    let runner = Runner::new(journal.clone(), state, next_seq, options.clone()).await?;
    // Nothing of the dead owner may run beside what this process starts: what is left of
    // its attempts' processes is stopped first, then the faults it left in effect (a frozen
    // process, a full disk) are reverted.
    let in_flight = rerun.iter().map(|id| id.trim_end_matches(".compensate").to_owned()).collect();
    let stopped = steps::processes::stop_leftovers(&runner.run, &in_flight, options.remote_processes_stopped)
        .await
        .map_err(|reason| EngineError::LeftoversNotStopped {
            run: run_id.clone(),
            reason,
        })?;
    if stopped > 0 {
        tracing::warn!(run = %run_id, stopped, "stopped processes left running by the interrupted owner");
    }
    let undone = steps::chaos::revert_leftovers(&runner.run)
        .await
        .map_err(|e| EngineError::LeftoversNotStopped {
            run: run_id.clone(),
            reason: format!("reading its faults: {e}"),
        })?;
    if undone > 0 {
        tracing::warn!(run = %run_id, undone, "reverted faults left behind by the interrupted owner");
    }
    let (mut state, mut next_seq) = (runner.state, runner.next_seq);
    let mut events = vec![Event::RunResumed {
        host: me.host.clone(),
        pid: me.pid,
        rerun: rerun.clone(),
    }];
    if let Some((by, reason, rollback)) = abort {
        events.push(Event::AbortRequested { by, reason, rollback });
    }
    let at = journal.append(&run_id, next_seq, &events).await?;
    next_seq += events.len() as i64;
    notify(
        options,
        Notice::Begin {
            run_id: run_id.clone(),
            plan: state.plan.clone(),
            resumed: true,
        },
    );
    for e in &events {
        state.apply(e, at);
        notify(options, Notice::Event { at, event: e.clone() });
    }
    tracing::info!(run = %run_id, rerun = ?rerun, "run resumed");
    Runner { state, next_seq, ..runner }.drive().await
}

async fn acquire_lock(journal: &Journal, lock: &str, run_id: &str, wait: bool) -> Result<(), EngineError> {
    let mut announced = false;
    loop {
        match journal.acquire_lock(lock, run_id).await? {
            LockOutcome::Acquired => return Ok(()),
            LockOutcome::TakenOver { from_run } => {
                tracing::warn!(lock, from_run = %from_run, "took over a lock whose run is no longer alive");
                return Ok(());
            }
            LockOutcome::Held { by_run, owner } if !wait => {
                return Err(EngineError::LockHeld {
                    name: lock.to_owned(),
                    by_run,
                    pid: owner.pid,
                    host: owner.host,
                });
            }
            LockOutcome::Held { by_run, .. } => {
                if !announced {
                    tracing::info!(lock, by_run = %by_run, "waiting for the lock");
                    eprintln!("waiting for lock `{lock}` held by run {by_run}…");
                    announced = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Reads every `env.*` the plan refers to, once, so that the values are known to the
/// redactor before any step runs.
fn env_snapshot(plan: &CompiledPlan) -> Arc<BTreeMap<String, String>> {
    let mut names = BTreeSet::new();
    for unit in &plan.units {
        let mut paths = Vec::new();
        for (_, pieces) in template::expressions_in(&Value::Object(unit.with.clone())) {
            for piece in pieces.unwrap_or_default() {
                if let template::Piece::Expr { expr, .. } = piece {
                    paths.extend(expr.paths().into_iter().cloned());
                }
            }
        }
        if let Some((_, expr)) = &unit.when {
            paths.extend(expr.paths().into_iter().cloned());
        }
        for p in paths {
            if p.segments.first().map(String::as_str) == Some("env")
                && let Some(name) = p.segments.get(1)
            {
                names.insert(name.clone());
            }
        }
    }
    Arc::new(names.into_iter().filter_map(|n| std::env::var(&n).ok().map(|v| (n, v))).collect())
}

fn notify(options: &RunOptions, notice: Notice) {
    if let Some(tx) = &options.notices {
        let _ = tx.send(notice);
    }
}

struct Runner {
    journal: Journal,
    state: RunState,
    next_seq: i64,
    redactor: Arc<Redactor>,
    /// The steps' handle on the run.
    run: RunHandle,
    /// Background work of the run that died (see [`RunHandle::supervise`]).
    failures: mpsc::UnboundedReceiver<String>,
    options: RunOptions,
    tasks: JoinSet<(usize, u32, AttemptResult)>,
    /// Which unit and attempt each task runs, so that a panicking adapter still yields
    /// a journaled failure instead of a step stuck in "running".
    task_units: HashMap<tokio::task::Id, (usize, u32)>,
    cancels: HashMap<usize, CancellationToken>,
    /// Events decided but not yet journaled (attempt results, abort requests).
    pending: Vec<Event>,
}

impl Runner {
    async fn new(journal: Journal, state: RunState, next_seq: i64, options: RunOptions) -> Result<Self, EngineError> {
        let redactor = Arc::new(Redactor::new(state.env().values().cloned()));
        crate::secrets::register(&redactor);
        let next_process = crate::evidence::read_all::<ProcessStarted>(&journal, &state.run_id)
            .await?
            .iter()
            .map(|(_, p)| p.number + 1)
            .max()
            .unwrap_or(0);
        let (failures_tx, failures) = mpsc::unbounded_channel();
        let run = RunHandle::new(journal.clone(), state.run_id.clone(), redactor.clone(), failures_tx, next_process);
        Ok(Runner {
            journal,
            state,
            next_seq,
            redactor,
            run,
            failures,
            options,
            tasks: JoinSet::new(),
            task_units: HashMap::new(),
            cancels: HashMap::new(),
            pending: Vec::new(),
        })
    }

    async fn drive(mut self) -> Result<RunReport, EngineError> {
        let run_id = self.state.run_id.clone();
        let mut heartbeat = tokio::time::interval(crate::journal::owner::HEARTBEAT_EVERY);
        let mut inbox = tokio::time::interval(INBOX_POLL);
        // A service hands its runs over on its own signals; a CLI run stops on them.
        let mut signals = self.options.handoff.is_none().then(Signals::new);
        let handoff = self.options.handoff.clone().unwrap_or_default();
        let (breach_tx, mut breaches) = mpsc::unbounded_channel();
        let mut guard_tasks: JoinSet<()> = JoinSet::new();
        let guards_stop = CancellationToken::new();
        let _stop_guards_on_return = guards_stop.clone().drop_guard();
        // Guards not watching yet: those with `after` wait for that step's success.
        let mut waiting_guards = Vec::new();
        self.readopt_silences().await;
        if self.state.halt.is_none() {
            self.restart_background().await;
            waiting_guards = self.state.plan.guards.clone();
            self.start_ready_guards(&mut waiting_guards, &breach_tx, &guards_stop, &mut guard_tasks);
        }
        loop {
            let now = Utc::now();
            let decision = self.state.decide(now);
            let mut batch = std::mem::take(&mut self.pending);
            batch.extend(decision.events);
            if batch.iter().any(|e| matches!(e, Event::RunFinished { .. })) {
                // Nothing the run started may outlive its journaled end.
                let released = background::release_all(&run_id, "the run ended").await;
                if released > 0 {
                    tracing::info!(run = %run_id, released, "released background work at the end of the run");
                }
            }
            if !batch.is_empty() {
                self.commit(&batch).await?;
            }
            if let Some(reason) = batch.iter().find_map(fault_release_reason) {
                background::release_class(&run_id, background::Class::Fault, &reason).await;
            }
            for (unit, attempt) in decision.start {
                self.launch(unit, attempt);
            }
            if !waiting_guards.is_empty() && self.state.halt.is_none() && !guards_stop.is_cancelled() {
                self.start_ready_guards(&mut waiting_guards, &breach_tx, &guards_stop, &mut guard_tasks);
            }
            // Guards watch the drill, not its clean-up: `finally` tears down what they watch.
            if !guards_stop.is_cancelled() && self.state.main_phase_over() {
                guards_stop.cancel();
            }
            if let Some((status, reason)) = self.state.finished.clone() {
                if let Some(lock) = &self.state.plan.lock {
                    self.journal.release_lock(lock, &run_id).await?;
                }
                tracing::info!(run = %run_id, status = status.as_str(), "run finished");
                return Ok(RunReport { run_id, status, reason });
            }
            let wake = decision
                .wake_at
                .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.collect(joined);
                    while let Some(more) = self.tasks.try_join_next_with_id() {
                        self.collect(more);
                    }
                }
                _ = tokio::time::sleep(wake) => {}
                _ = inbox.tick() => {
                    if let Some(cmd) = self.journal.take_abort(&run_id).await? {
                        self.abort(cmd.by, cmd.reason, cmd.rollback);
                    }
                }
                Some(ended) = guard_tasks.join_next(), if !guard_tasks.is_empty() => {
                    // A guard only ends when told to or after reporting its breach; one that
                    // dies fails closed: a halt condition must never vanish silently.
                    if let Err(e) = ended
                        && e.is_panic()
                        && !guards_stop.is_cancelled()
                    {
                        let _ = breach_tx.send(guards::Breach {
                            guard: "?".into(),
                            error: format!("a guard crashed: {}", steps::context::panic_message(e)),
                            failures: 0,
                            rollback: false,
                        });
                    }
                }
                Some(reason) = self.failures.recv() => {
                    if self.state.halt.is_none() {
                        tracing::error!(run = %run_id, reason = %reason, "background work of the run failed; aborting the run");
                        self.abort("lifeboat".into(), Some(reason), false);
                    }
                }
                Some(breach) = breaches.recv() => {
                    if self.state.halt.is_none() {
                        let breach = guards::Breach { error: self.redactor.redact(&breach.error), ..breach };
                        tracing::error!(run = %run_id, guard = %breach.guard, error = %breach.error, "guard breached; aborting the run");
                        self.pending.push(Event::GuardBreached {
                            guard: breach.guard.clone(),
                            error: breach.error.clone(),
                            failures: breach.failures,
                        });
                        self.abort(
                            format!("guard {}", breach.guard),
                            Some(format!("guard {} breached: {}", breach.guard, breach.error)),
                            breach.rollback,
                        );
                    }
                }
                _ = heartbeat.tick() => self.journal.heartbeat(&run_id).await?,
                _ = handoff.cancelled(), if self.options.handoff.is_some() => return self.hand_over().await,
                count = async { signals.as_mut().expect("checked by the guard").next().await }, if signals.is_some() => {
                    if count > 1 {
                        background::release_class(&run_id, background::Class::Fault, "interrupted by a second signal").await;
                        return Err(EngineError::Interrupted(run_id));
                    }
                    eprintln!("stopping run {run_id}: running steps are cancelled, then `finally` runs (signal again to leave it interrupted)");
                    self.abort("signal".into(), Some("interrupted by a signal".into()), false);
                }
            }
        }
    }

    /// Leaves the run for another process (see [`RunOptions::handoff`]). Attempts that do
    /// not finish within the grace are cancelled and not journaled: the next owner runs
    /// them again under the same idempotency key, as after a crash.
    async fn hand_over(mut self) -> Result<RunReport, EngineError> {
        let run_id = self.state.run_id.clone();
        tracing::warn!(run = %run_id, running = self.tasks.len(), "handing the run over");
        let grace = self.options.handoff_grace;
        let finish_running = async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                self.collect(joined);
            }
        };
        let finished = tokio::time::timeout(grace, finish_running).await.is_ok();
        if !finished {
            for token in self.cancels.values() {
                token.cancel();
            }
            // Cancelled adapters stop what they started; their results are not journaled.
            let _ = tokio::time::timeout(Duration::from_secs(5), async { while self.tasks.join_next().await.is_some() {} }).await;
            self.tasks.abort_all();
        }
        let batch = std::mem::take(&mut self.pending);
        if !batch.is_empty() {
            self.commit(&batch).await?;
        }
        self.journal.release_ownership(&run_id, &Owner::me()).await?;
        tracing::warn!(run = %run_id, attempts_finished = finished, "run handed over");
        Err(EngineError::HandedOver(run_id))
    }

    /// Starts the waiting guards whose `after` step has succeeded (or that have none), with
    /// their options rendered now, when the outputs they read exist.
    fn start_ready_guards(
        &self,
        waiting: &mut Vec<crate::plan::compiled::Guard>,
        breaches: &mpsc::UnboundedSender<guards::Breach>,
        stop: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        let succeeded = |id: &str| {
            self.state.plan.units.iter().zip(&self.state.units).any(|(spec, unit)| {
                spec.role == crate::plan::Role::Main && spec.id == id && matches!(unit.status, super::state::UnitStatus::Succeeded { .. })
            })
        };
        let (ready, still_waiting): (Vec<_>, Vec<_>) = std::mem::take(waiting)
            .into_iter()
            .partition(|g| g.after.as_deref().is_none_or(succeeded));
        *waiting = still_waiting;
        for guard in ready {
            let with = template::render_value(&Value::Object(guard.with.clone()), &self.state.scope())
                .map(|v| v.value)
                .map_err(|e| e.to_string());
            tracing::info!(run = %self.state.run_id, guard = %guard.id, after = ?guard.after, "guard watching");
            guards::watch(guard, with, breaches.clone(), stop.clone(), tasks);
        }
    }

    fn abort(&mut self, by: String, reason: Option<String>, rollback: bool) {
        tracing::warn!(run = %self.state.run_id, by = %by, rollback, "abort requested");
        let event = Event::AbortRequested { by, reason, rollback };
        self.state.apply(&event, Utc::now());
        self.pending.push(event);
        for (unit, token) in &self.cancels {
            if self.state.plan.units[*unit].role == crate::plan::Role::Main {
                token.cancel();
            }
        }
    }

    fn collect(&mut self, joined: Result<(tokio::task::Id, (usize, u32, AttemptResult)), tokio::task::JoinError>) {
        let (unit, attempt, result) = match joined {
            Ok((id, r)) => {
                self.task_units.remove(&id);
                r
            }
            Err(e) => {
                let Some((unit, attempt)) = self.task_units.remove(&e.id()) else {
                    return;
                };
                let message = steps::context::panic_message(e);
                tracing::error!(error = %message, "a step adapter panicked");
                (
                    unit,
                    attempt,
                    Err(StepError::terminal(format!("the step adapter crashed: {message}"))),
                )
            }
        };
        self.cancels.remove(&unit);
        let result = result.map(|outputs| self.redactor.redact_map(&outputs)).map_err(|e| StepError {
            message: self.redactor.redact(&e.message),
            retryable: e.retryable,
        });
        let now = Utc::now();
        let event = self.state.attempt_event(unit, attempt, result, rand::random::<f64>(), now);
        self.state.apply(&event, now);
        self.pending.push(event);
    }

    async fn commit(&mut self, batch: &[Event]) -> Result<(), EngineError> {
        let at = self.journal.append(&self.state.run_id, self.next_seq, batch).await?;
        self.next_seq += batch.len() as i64;
        for event in batch {
            log_event(&self.state.run_id, event);
            notify(&self.options, Notice::Event { at, event: event.clone() });
        }
        Ok(())
    }

    /// Background work that succeeded steps had started (TCP endpoints, a canary) died with
    /// the previous owner; it starts again here. A no-op on a fresh run.
    async fn restart_background(&self) {
        // Endpoints first: a restarted canary may write through one.
        match steps::traffic::restore_proxies(&self.run).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(run = %self.state.run_id, restored = n, "restarted the run's proxies after the previous owner died"),
            Err(e) => tracing::error!(run = %self.state.run_id, error = %e, "could not read the run's proxies from the journal"),
        }
        for (unit, status) in self.state.units.iter().enumerate() {
            let super::state::UnitStatus::Succeeded { attempt, .. } = &status.status else {
                continue;
            };
            let spec = &self.state.plan.units[unit];
            let Some(kind) = steps::kind(&spec.kind).filter(|k| steps::BACKGROUND_KINDS.contains(&k.name)) else {
                continue;
            };
            let cx = self.step_context(unit, *attempt, CancellationToken::new());
            let restarted = match template::render_value(&Value::Object(spec.with.clone()), &self.state.scope()) {
                Ok(with) => (kind.run)(with.value, &cx).await.map_err(|e| self.redactor.redact(&e.message)),
                Err(e) => Err(format!("evaluating options: {e}")),
            };
            match restarted {
                Ok(_) => {
                    tracing::warn!(run = %cx.run_id, step = %spec.id, kind = %spec.kind, "restarted the step's background work after the previous owner died")
                }
                Err(error) => {
                    tracing::error!(run = %cx.run_id, step = %spec.id, error = %error, "could not restart the step's background work")
                }
            }
        }
    }

    /// Alert silences a dead owner created are taken over, so that this run's end expires
    /// them even when it was resumed only to stop. A no-op on a fresh run.
    async fn readopt_silences(&self) {
        for (unit, spec) in self.state.plan.units.iter().enumerate() {
            if spec.kind != "alertmanager.silence" {
                continue;
            }
            let cx = self.step_context(unit, 0, CancellationToken::new());
            let render = || {
                template::render_value(&Value::Object(spec.with.clone()), &self.state.scope())
                    .map(|w| w.value)
                    .map_err(|e| e.to_string())
            };
            let adopted = steps::alertmanager::silence::readopt(render, &cx)
                .await
                .map_err(|e| self.redactor.redact(&e.message));
            match adopted {
                Ok(false) => {}
                Ok(true) => tracing::warn!(run = %cx.run_id, step = %spec.id, "took over the silence the previous owner created"),
                Err(error) => {
                    tracing::error!(run = %cx.run_id, step = %spec.id, error = %error, "could not take over a silence; Alertmanager ends it at its end time")
                }
            }
        }
    }

    /// The cluster a Kubernetes step works on: the one it names, else the plan's only one;
    /// its settings rendered with the run's params and environment.
    fn cluster_of(&self, unit: usize) -> Option<steps::k8s::access::ClusterAccess> {
        let spec = &self.state.plan.units[unit];
        if !steps::is_kubernetes(&spec.kind) {
            return None;
        }
        let clusters = &self.state.plan.clusters;
        let (name, settings) = match &spec.cluster {
            Some(name) => (name.clone(), clusters.get(name)?.clone()),
            None if clusters.len() == 1 => clusters.iter().next().map(|(n, s)| (n.clone(), s.clone()))?,
            None => return None,
        };
        let rendered = serde_json::to_value(&settings)
            .map_err(|e| e.to_string())
            .and_then(|v| template::render_value(&v, &self.state.scope()).map_err(|e| e.to_string()))
            .and_then(|r| serde_json::from_value(r.value).map_err(|e| e.to_string()));
        Some(steps::k8s::access::ClusterAccess { name, spec: rendered })
    }

    fn step_context(&self, unit: usize, attempt: u32, cancel: CancellationToken) -> StepContext {
        let id = &self.state.plan.units[unit].id;
        StepContext {
            run_id: self.state.run_id.clone(),
            step_id: id.clone(),
            idempotency_key: format!("{}/{id}", self.state.run_id),
            attempt,
            cancel,
            run: self.run.clone(),
            cluster: self.cluster_of(unit),
            rpo_objective: self.state.plan.rpo,
        }
    }

    fn launch(&mut self, unit: usize, attempt: u32) {
        let spec = self.state.plan.units[unit].clone();
        let token = CancellationToken::new();
        self.cancels.insert(unit, token.clone());
        let rendered = template::render_value(&Value::Object(spec.with.clone()), &self.state.scope());
        let cx = self.step_context(unit, attempt, token);
        let handle = self.tasks.spawn(async move {
            let with = match rendered {
                Ok(v) => v.value,
                Err(e) => return (unit, attempt, Err(StepError::terminal(format!("evaluating options: {e}")))),
            };
            let Some(kind) = steps::kind(&spec.kind) else {
                return (
                    unit,
                    attempt,
                    Err(StepError::terminal(format!("unknown step kind `{}`", spec.kind))),
                );
            };
            let work = (kind.run)(with, &cx);
            let result = match spec.timeout {
                None => work.await,
                Some(limit) => {
                    tokio::pin!(work);
                    tokio::select! {
                        r = &mut work => r,
                        _ = tokio::time::sleep(limit) => {
                            cx.cancel.cancel();
                            // Give the adapter time to stop what it started.
                            let _ = tokio::time::timeout(Duration::from_secs(30), &mut work).await;
                            Err(StepError::retryable(format!("timed out after {}", crate::plan::duration::format(limit))))
                        }
                    }
                }
            };
            (unit, attempt, result)
        });
        self.task_units.insert(handle.id(), (unit, attempt));
    }
}

/// Aborts and rollbacks revert every active fault at once: recovery (or compensation)
/// must not run under fire.
fn fault_release_reason(event: &Event) -> Option<String> {
    match event {
        Event::AbortRequested { by, .. } => Some(format!("the run was aborted by {by}")),
        Event::RollbackStarted { reason } => Some(format!("the run rolls back: {reason}")),
        _ => None,
    }
}

fn log_event(run_id: &str, event: &Event) {
    match event {
        Event::StepStarted { step, attempt, .. } => tracing::info!(run = %run_id, step = %step, attempt, "step started"),
        Event::StepSucceeded { step, attempt, .. } => tracing::info!(run = %run_id, step = %step, attempt, "step succeeded"),
        Event::StepFailed {
            step,
            attempt,
            error,
            retryable,
            retry_in_ms,
            ..
        } => {
            tracing::warn!(run = %run_id, step = %step, attempt, error = %error, retryable, retry_in_ms = ?retry_in_ms, "step failed")
        }
        Event::StepSkipped { step, reason } => tracing::info!(run = %run_id, step = %step, reason = %reason, "step skipped"),
        Event::CompensationStarted { step, attempt, .. } => tracing::info!(run = %run_id, step = %step, attempt, "compensation started"),
        Event::CompensationSucceeded { step, .. } => tracing::info!(run = %run_id, step = %step, "compensation succeeded"),
        Event::CompensationFailed { step, error, .. } => tracing::warn!(run = %run_id, step = %step, error = %error, "compensation failed"),
        Event::RollbackStarted { reason } => tracing::warn!(run = %run_id, reason = %reason, "rollback started"),
        _ => tracing::debug!(run = %run_id, event = event.kind(), "event"),
    }
}

/// Waits for SIGINT, or SIGTERM when `term` listens for it.
pub async fn interrupted(term: &mut Option<tokio::signal::unix::Signal>) {
    let term = async {
        match term {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// SIGINT and SIGTERM, counted: the first stops the run gracefully, the second leaves.
struct Signals {
    count: u32,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            count: 0,
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) -> u32 {
        interrupted(&mut self.term).await;
        self.count += 1;
        self.count
    }
}

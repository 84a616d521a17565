//! The deterministic core of a run: it applies journal events and decides what happens
//! next, without doing any I/O.
//!
//! The runner feeds it every event it journals (and, on resume, every event already in
//! the journal), and asks [`RunState::decide`] for the next events. Because decisions
//! depend only on the events and the clock value passed in, replaying a journal after a
//! crash rebuilds exactly the state the dead process had.

use crate::journal::{Event, Recorded, RunStatus};
use crate::plan::compiled::{CompiledPlan, Role};
use crate::plan::expr::{Evaluated, Scope, truthy};
use crate::plan::model::{NeedsSkipped, OnFailure};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum UnitStatus {
    Pending,
    Running {
        attempt: u32,
    },
    /// The last attempt failed and another follows at `until`.
    Backoff {
        attempt: u32,
        until: DateTime<Utc>,
        error: String,
    },
    Succeeded {
        attempt: u32,
        outputs: Map<String, Value>,
    },
    /// `tolerated` failures (`on_failure: continue`) let dependants run.
    Failed {
        attempt: u32,
        error: String,
        tolerated: bool,
    },
    Skipped {
        reason: String,
    },
}

impl UnitStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            UnitStatus::Succeeded { .. } | UnitStatus::Failed { .. } | UnitStatus::Skipped { .. }
        )
    }

    pub fn is_active(&self) -> bool {
        matches!(self, UnitStatus::Running { .. } | UnitStatus::Backoff { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            UnitStatus::Pending => "pending",
            UnitStatus::Running { .. } => "running",
            UnitStatus::Backoff { .. } => "retrying",
            UnitStatus::Succeeded { .. } => "succeeded",
            UnitStatus::Failed { tolerated: true, .. } => "failed (tolerated)",
            UnitStatus::Failed { .. } => "failed",
            UnitStatus::Skipped { .. } => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UnitState {
    pub status: UnitStatus,
    /// Attempts started so far (including attempts interrupted by a crash).
    pub attempts: u32,
    /// Failed attempts so far; the retry budget counts these, not crashes.
    pub failures: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why the main steps stopped being scheduled.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    StepFailed { unit: usize },
    Aborted { by: String },
}

#[derive(Debug, Clone)]
pub struct RunState {
    pub plan: Arc<CompiledPlan>,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub params: BTreeMap<String, Value>,
    pub units: Vec<UnitState>,
    pub halt: Option<Halt>,
    pub rollback: bool,
    rollback_announced: bool,
    main_closed: bool,
    /// Main units in the order they succeeded: compensation runs in reverse.
    pub completion_order: Vec<usize>,
    pub finished: Option<(RunStatus, Option<String>)>,
    env: Arc<BTreeMap<String, String>>,
}

/// The outcome of one attempt, as reported by the runner.
pub type AttemptResult = Result<Map<String, Value>, crate::steps::StepError>;

impl RunState {
    pub fn new(
        plan: Arc<CompiledPlan>,
        run_id: String,
        started_at: DateTime<Utc>,
        params: BTreeMap<String, Value>,
        env: Arc<BTreeMap<String, String>>,
    ) -> Self {
        let units = plan
            .units
            .iter()
            .map(|_| UnitState {
                status: UnitStatus::Pending,
                attempts: 0,
                failures: 0,
                started_at: None,
                finished_at: None,
            })
            .collect();
        RunState {
            plan,
            run_id,
            started_at,
            params,
            units,
            halt: None,
            rollback: false,
            rollback_announced: false,
            main_closed: false,
            completion_order: Vec::new(),
            finished: None,
            env,
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.plan.unit_index(id)
    }

    /// Applies one journaled event. Unknown step ids are ignored (they cannot occur for
    /// a journal written from the same plan source).
    pub fn apply(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::RunCreated { .. } => self.started_at = at,
            Event::RunResumed { .. } => {
                // Steps that were running when the owner died will be run again.
                for unit in &mut self.units {
                    if matches!(unit.status, UnitStatus::Running { .. }) {
                        unit.status = UnitStatus::Pending;
                    }
                }
            }
            Event::StepStarted { step, attempt, .. } | Event::CompensationStarted { step, attempt, .. } => {
                let id = compensation_id(event, step);
                if let Some(i) = self.index(&id) {
                    let u = &mut self.units[i];
                    u.status = UnitStatus::Running { attempt: *attempt };
                    u.attempts = u.attempts.max(*attempt);
                    u.started_at.get_or_insert(at);
                }
            }
            Event::StepSucceeded { step, attempt, outputs } | Event::CompensationSucceeded { step, attempt, outputs } => {
                let id = compensation_id(event, step);
                if let Some(i) = self.index(&id) {
                    self.units[i].status = UnitStatus::Succeeded {
                        attempt: *attempt,
                        outputs: outputs.clone(),
                    };
                    self.units[i].finished_at = Some(at);
                    if self.plan.units[i].role == Role::Main {
                        self.completion_order.push(i);
                    }
                }
            }
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                failed_at,
                ..
            }
            | Event::CompensationFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                failed_at,
                ..
            } => {
                let id = compensation_id(event, step);
                let Some(i) = self.index(&id) else { return };
                self.units[i].failures += 1;
                if let Some(ms) = retry_in_ms {
                    let until = failed_at.unwrap_or(at) + chrono::Duration::milliseconds(*ms as i64);
                    self.units[i].status = UnitStatus::Backoff {
                        attempt: *attempt,
                        until,
                        error: error.clone(),
                    };
                    return;
                }
                let unit = &self.plan.units[i];
                let tolerated = unit.role == Role::Main && unit.on_failure == OnFailure::Continue;
                self.units[i].status = UnitStatus::Failed {
                    attempt: *attempt,
                    error: error.clone(),
                    tolerated,
                };
                self.units[i].finished_at = Some(at);
                if unit.role == Role::Main && !tolerated {
                    if unit.on_failure == OnFailure::Rollback {
                        self.rollback = true;
                    }
                    self.halt_main(Halt::StepFailed { unit: i });
                }
            }
            Event::StepSkipped { step, reason } => {
                if let Some(i) = self.index(step) {
                    self.units[i].status = UnitStatus::Skipped { reason: reason.clone() };
                    self.units[i].finished_at = Some(at);
                }
            }
            Event::RollbackStarted { .. } => {
                self.rollback = true;
                self.rollback_announced = true;
            }
            Event::AbortRequested { by, rollback, .. } => {
                if *rollback {
                    self.rollback = true;
                }
                self.halt_main(Halt::Aborted { by: by.clone() });
            }
            Event::RunFinished { status, reason } => self.finished = Some((*status, reason.clone())),
            // Recorded for reports; the abort that follows it changes the state.
            Event::GuardBreached { .. } => {}
        }
    }

    fn halt_main(&mut self, halt: Halt) {
        if self.halt.is_none() {
            self.halt = Some(halt);
        }
        // A main step waiting to retry is given up: the run is stopping.
        for (i, unit) in self.units.iter_mut().enumerate() {
            if self.plan.units[i].role != Role::Main {
                continue;
            }
            if let UnitStatus::Backoff { attempt, error, .. } = &unit.status {
                unit.status = UnitStatus::Failed {
                    attempt: *attempt,
                    error: format!("{error} (not retried: the run is stopping)"),
                    tolerated: false,
                };
            }
        }
    }

    /// Rebuilds a run's state from its journal.
    pub fn replay(
        plan: Arc<CompiledPlan>,
        run_id: String,
        params: BTreeMap<String, Value>,
        env: Arc<BTreeMap<String, String>>,
        events: &[Recorded],
    ) -> Self {
        let started = events.first().map_or_else(Utc::now, |r| r.at);
        let mut state = RunState::new(plan, run_id, started, params, env);
        for r in events {
            state.apply(&r.event, r.at);
        }
        // `main_closed` stays false: closing the main phase again is idempotent (it only
        // skips steps still pending), and a crash may have come before it was journaled.
        state
    }

    /// The event that records an attempt's result, which arrived at `now`; decides whether
    /// another attempt follows. `jitter` in [0, 1] spreads retry delays.
    pub fn attempt_event(&self, unit: usize, attempt: u32, result: AttemptResult, jitter: f64, now: DateTime<Utc>) -> Event {
        let spec = &self.plan.units[unit];
        let compensation = matches!(spec.role, Role::Compensation { .. });
        let step = event_step_id(&self.plan, unit);
        match result {
            Ok(outputs) if compensation => Event::CompensationSucceeded { step, attempt, outputs },
            Ok(outputs) => Event::StepSucceeded { step, attempt, outputs },
            Err(e) => {
                let stopping = spec.role == Role::Main && self.halt.is_some();
                let budget_left = self.units[unit].failures + 1 < spec.retry.attempts;
                let retry_in_ms = (e.retryable && budget_left && !stopping)
                    .then(|| spec.retry.delay_before(self.units[unit].failures + 2, jitter).as_millis() as u64);
                if compensation {
                    Event::CompensationFailed {
                        step,
                        attempt,
                        error: e.message,
                        retryable: e.retryable,
                        retry_in_ms,
                        failed_at: retry_in_ms.map(|_| now),
                    }
                } else {
                    Event::StepFailed {
                        step,
                        attempt,
                        error: e.message,
                        retryable: e.retryable,
                        retry_in_ms,
                        failed_at: retry_in_ms.map(|_| now),
                    }
                }
            }
        }
    }

    pub fn active_count(&self, role: impl Fn(Role) -> bool) -> usize {
        self.units
            .iter()
            .enumerate()
            .filter(|(i, u)| role(self.plan.units[*i].role) && u.status.is_active())
            .count()
    }

    fn main_done(&self) -> bool {
        let mains = self.plan.units.iter().enumerate().filter(|(_, u)| u.role == Role::Main);
        let mut all_terminal = true;
        for (i, _) in mains {
            let s = &self.units[i].status;
            if s.is_active() {
                return false;
            }
            all_terminal &= s.is_terminal();
        }
        all_terminal || self.halt.is_some()
    }

    /// Decides the next events at time `now`, applying each to `self` as it goes.
    /// The caller journals them (in one transaction) before starting any attempt.
    pub fn decide(&mut self, now: DateTime<Utc>) -> Decision {
        let mut decision = Decision::default();
        if self.finished.is_some() {
            return decision;
        }
        if !self.main_closed {
            if self.halt.is_none() {
                self.schedule(Role::Main, now, &mut decision);
            }
            if !self.main_done() {
                return decision;
            }
            self.close_main(now, &mut decision);
        }
        if self.rollback && !self.compensate(now, &mut decision) {
            return decision;
        }
        self.schedule(Role::Finally, now, &mut decision);
        let finally_done = self
            .plan
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.role == Role::Finally)
            .all(|(i, _)| self.units[i].status.is_terminal());
        if finally_done {
            let (status, reason) = self.final_status();
            self.emit(&mut decision, now, Event::RunFinished { status, reason });
        }
        decision
    }

    fn skip(&mut self, decision: &mut Decision, now: DateTime<Utc>, unit: usize, reason: String) {
        let step = self.plan.units[unit].id.clone();
        self.emit(decision, now, Event::StepSkipped { step, reason });
    }

    fn emit(&mut self, decision: &mut Decision, now: DateTime<Utc>, event: Event) {
        self.apply(&event, now);
        decision.events.push(event);
    }

    /// Whether every main step has ended (the run is in `finally`, compensation or done).
    pub fn main_phase_over(&self) -> bool {
        self.main_closed || self.main_done()
    }

    /// Marks main steps that never started as skipped, once the main phase is over.
    fn close_main(&mut self, now: DateTime<Utc>, decision: &mut Decision) {
        self.main_closed = true;
        let reason = match &self.halt {
            Some(Halt::StepFailed { unit }) => format!("not started: step `{}` failed", self.plan.units[*unit].id),
            Some(Halt::Aborted { by }) => format!("not started: the run was aborted by {by}"),
            None => "not started".to_owned(),
        };
        for i in 0..self.units.len() {
            if self.plan.units[i].role == Role::Main && self.units[i].status == UnitStatus::Pending {
                self.skip(decision, now, i, reason.clone());
            }
        }
    }

    /// Runs compensations one at a time in reverse completion order. True when done.
    fn compensate(&mut self, now: DateTime<Utc>, decision: &mut Decision) -> bool {
        if !self.rollback_announced {
            let reason = match &self.halt {
                Some(Halt::StepFailed { unit }) => format!("step `{}` failed with on_failure: rollback", self.plan.units[*unit].id),
                Some(Halt::Aborted { by }) => format!("aborted with rollback by {by}"),
                None => "rollback requested".into(),
            };
            self.emit(decision, now, Event::RollbackStarted { reason });
        }
        let order: Vec<usize> = self
            .completion_order
            .iter()
            .rev()
            .filter_map(|&i| self.plan.units[i].compensation)
            .collect();
        for c in order {
            match &self.units[c].status {
                s if s.is_terminal() => continue,
                UnitStatus::Running { .. } => return false,
                UnitStatus::Backoff { until, .. } => {
                    if *until <= now {
                        self.start(c, now, decision);
                    } else {
                        decision.wake_at = earliest(decision.wake_at, *until);
                    }
                    return false;
                }
                _ => {
                    self.start(c, now, decision);
                    return false;
                }
            }
        }
        true
    }

    fn start(&mut self, unit: usize, now: DateTime<Utc>, decision: &mut Decision) {
        let attempt = self.units[unit].attempts + 1;
        let step = event_step_id(&self.plan, unit);
        let idempotency_key = format!("{}/{}", self.run_id, self.plan.units[unit].id);
        let event = if matches!(self.plan.units[unit].role, Role::Compensation { .. }) {
            Event::CompensationStarted {
                step,
                attempt,
                idempotency_key,
            }
        } else {
            Event::StepStarted {
                step,
                attempt,
                idempotency_key,
            }
        };
        self.emit(decision, now, event);
        decision.start.push((unit, attempt));
    }

    fn schedule(&mut self, role: Role, now: DateTime<Utc>, decision: &mut Decision) {
        let limit = self.plan.concurrency.max(1);
        let mut active = self.active_count(|r| r == role);
        // Retries whose wait is over go first: they already hold a slot.
        for i in 0..self.units.len() {
            if self.plan.units[i].role != role {
                continue;
            }
            if let UnitStatus::Backoff { until, .. } = self.units[i].status {
                if until <= now {
                    self.start(i, now, decision);
                } else {
                    decision.wake_at = earliest(decision.wake_at, until);
                }
            }
        }
        // Skips can unblock further skips, so sweep until nothing changes.
        loop {
            let mut changed = false;
            for i in 0..self.units.len() {
                if self.plan.units[i].role != role || self.units[i].status != UnitStatus::Pending {
                    continue;
                }
                match self.readiness(i) {
                    Readiness::Waiting => {}
                    Readiness::Skip(reason) => {
                        self.skip(decision, now, i, reason);
                        changed = true;
                    }
                    Readiness::Ready if active < limit => match self.evaluate_when(i) {
                        Ok(true) => {
                            self.start(i, now, decision);
                            active += 1;
                            changed = true;
                        }
                        Ok(false) => {
                            let source = self.plan.units[i].when.as_ref().map(|(s, _)| s.clone()).unwrap_or_default();
                            self.skip(decision, now, i, format!("`when` was false: {source}"));
                            changed = true;
                        }
                        Err(error) => {
                            let step = self.plan.units[i].id.clone();
                            let event = Event::StepFailed {
                                step,
                                attempt: 0,
                                error: format!("evaluating `when`: {error}"),
                                retryable: false,
                                retry_in_ms: None,
                                failed_at: None,
                            };
                            self.emit(decision, now, event);
                            changed = true;
                            if role == Role::Main && self.halt.is_some() {
                                return;
                            }
                        }
                    },
                    Readiness::Ready => {}
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn readiness(&self, i: usize) -> Readiness {
        let unit = &self.plan.units[i];
        let mut skipped_need = None;
        for &n in &unit.needs {
            match &self.units[n].status {
                UnitStatus::Succeeded { .. } | UnitStatus::Failed { tolerated: true, .. } => {}
                UnitStatus::Skipped { .. } => skipped_need = skipped_need.or(Some(n)),
                UnitStatus::Failed { .. } => return Readiness::Skip(format!("needs `{}`, which failed", self.plan.units[n].id)),
                _ => return Readiness::Waiting,
            }
        }
        match skipped_need {
            Some(n) if unit.when_needs_skipped == NeedsSkipped::Skip => {
                Readiness::Skip(format!("needs `{}`, which was skipped", self.plan.units[n].id))
            }
            _ => Readiness::Ready,
        }
    }

    fn evaluate_when(&self, i: usize) -> Result<bool, String> {
        match &self.plan.units[i].when {
            None => Ok(true),
            Some((_, expr)) => Ok(truthy(&expr.eval(&self.scope())?.value)),
        }
    }

    fn final_status(&self) -> (RunStatus, Option<String>) {
        let failed_finally = self
            .plan
            .units
            .iter()
            .enumerate()
            .find(|(i, u)| u.role == Role::Finally && matches!(self.units[*i].status, UnitStatus::Failed { .. }));
        let failed_compensation = self
            .plan
            .units
            .iter()
            .enumerate()
            .find(|(i, u)| matches!(u.role, Role::Compensation { .. }) && matches!(self.units[*i].status, UnitStatus::Failed { .. }));
        if let Some((_, u)) = failed_compensation {
            return (
                RunStatus::Failed,
                Some(format!("rollback incomplete: compensation `{}` failed", u.id)),
            );
        }
        let (status, reason) = match &self.halt {
            Some(Halt::Aborted { by }) if self.rollback => (RunStatus::RolledBack, Some(format!("aborted by {by} and rolled back"))),
            Some(Halt::Aborted { by }) => (RunStatus::Aborted, Some(format!("aborted by {by}"))),
            Some(Halt::StepFailed { unit }) if self.rollback => (
                RunStatus::RolledBack,
                Some(format!(
                    "step `{}` failed; completed steps were compensated",
                    self.plan.units[*unit].id
                )),
            ),
            Some(Halt::StepFailed { unit }) => (RunStatus::Failed, Some(format!("step `{}` failed", self.plan.units[*unit].id))),
            None => (RunStatus::Succeeded, None),
        };
        match failed_finally {
            Some((_, u)) if status == RunStatus::Succeeded => (RunStatus::Failed, Some(format!("finally step `{}` failed", u.id))),
            _ => (status, reason),
        }
    }

    /// The environment values the plan reads (secrets), captured when the run was loaded.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The expression scope of this run (params, step outputs, run attributes, env).
    pub fn scope(&self) -> RunScope<'_> {
        RunScope { state: self }
    }

    pub fn outcome(&self, unit: usize) -> &'static str {
        self.units[unit].status.label()
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

enum Readiness {
    Waiting,
    Ready,
    Skip(String),
}

/// Events that the caller must journal, and the attempts to start once they are durable.
#[derive(Debug, Default)]
pub struct Decision {
    pub events: Vec<Event>,
    pub start: Vec<(usize, u32)>,
    /// When to call `decide` again if nothing else happens (a retry's wait ends).
    pub wake_at: Option<DateTime<Utc>>,
}

/// Compensation events name the step they compensate; the unit is `<step>.compensate`.
fn compensation_id(event: &Event, step: &str) -> String {
    match event {
        Event::CompensationStarted { .. } | Event::CompensationSucceeded { .. } | Event::CompensationFailed { .. } => {
            format!("{step}.compensate")
        }
        _ => step.to_owned(),
    }
}

fn event_step_id(plan: &CompiledPlan, unit: usize) -> String {
    match plan.units[unit].role {
        Role::Compensation { of } => plan.units[of].id.clone(),
        _ => plan.units[unit].id.clone(),
    }
}

pub struct RunScope<'a> {
    state: &'a RunState,
}

impl Scope for RunScope<'_> {
    /// Never panics on a path the compiler would have refused: a journal's plan source is
    /// recompiled on resume, but an expression is evaluated from whatever it holds.
    fn lookup(&self, path: &[String]) -> Result<Evaluated, String> {
        let plain = |value: Value| Ok(Evaluated { value, secret: false });
        let s = self.state;
        let name = |i: usize| {
            path.get(i)
                .map(String::as_str)
                .ok_or_else(|| format!("`{}` is incomplete", path.join(".")))
        };
        match path.first().map(String::as_str) {
            Some("params") => plain(s.params.get(name(1)?).cloned().unwrap_or(Value::Null)),
            Some("env") => match s.env.get(name(1)?) {
                Some(v) => Ok(Evaluated {
                    value: Value::String(v.clone()),
                    secret: true,
                }),
                None => Err(format!("environment variable `{}` is not set", name(1)?)),
            },
            Some("run") => match path.get(1).map(String::as_str) {
                Some("id") => plain(Value::String(s.run_id.clone())),
                Some("started_at") => plain(Value::String(s.started_at.to_rfc3339())),
                Some("plan") => plain(Value::String(s.plan.name.clone())),
                _ => Err(format!("unknown run attribute `{}`", path.join("."))),
            },
            Some("steps") => {
                let i = s.index(name(1)?).ok_or_else(|| format!("unknown step `{}`", path[1]))?;
                match path.get(2).map(String::as_str) {
                    Some("outcome") => return plain(Value::String(s.outcome(i).to_owned())),
                    Some("outputs") => {}
                    _ => return Err(format!("`{}`: read `outputs.<name>` or `outcome`", path.join("."))),
                }
                let UnitStatus::Succeeded { outputs, .. } = &s.units[i].status else {
                    return plain(Value::Null);
                };
                let mut value = outputs.get(name(3)?).cloned().unwrap_or(Value::Null);
                for segment in path.iter().skip(4) {
                    value = match &value {
                        Value::Object(m) => m.get(segment).cloned().unwrap_or(Value::Null),
                        Value::Array(a) => segment.parse::<usize>().ok().and_then(|k| a.get(k).cloned()).unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                plain(value)
            }
            _ => Err(format!("unknown name `{}`", path.join("."))),
        }
    }
}

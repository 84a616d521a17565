//! What people do through the service, one function per action, shared by the JSON API
//! and the dashboard's forms: each checks the caller's scope, acts, and writes the audit
//! entry naming the caller, so the two doors cannot differ.

use super::api::{ApiError, AppState, Caller};
use super::config::Scope;
use super::emergency;
use crate::journal::audit::AuditEntry;
use crate::journal::requests::{NewRequest, Origin, RequestRow, RequestState};
use crate::journal::switches::{EMERGENCY_STOP, SwitchState};
use crate::journal::{DecisionKind, JournalError, RunStatus};
use chrono::Utc;
use serde_json::Value;
use std::collections::BTreeMap;

/// How many fresh ids a new request may draw before giving up.
const ID_DRAWS: usize = 5;

/// Records an action that was taken. A failure to record it is logged, not returned: the
/// action is done, and an error would make the caller retry it.
async fn audit(app: &AppState, caller: &Caller, action: &str, target: Option<&str>, comment: Option<&str>, detail: Option<String>) {
    let entry = AuditEntry {
        at: Utc::now(),
        actor: caller.name.clone(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        comment: comment.map(str::to_owned),
        detail,
    };
    if let Err(e) = app.journal.audit(&entry).await {
        tracing::error!(error = %e, actor = %entry.actor, action = %entry.action, target = ?entry.target,
            "the action was taken but could not be written to the audit trail");
    }
}

/// Requests a run of a plan (held for approval if asked); a free replica starts it.
pub async fn start_run(
    app: &AppState,
    caller: &Caller,
    plan: &str,
    params: &BTreeMap<String, Value>,
    require_approval: bool,
) -> Result<RequestRow, ApiError> {
    caller.require(Scope::Run)?;
    let new = app.catalog.current().new_run(plan, params).map_err(|e| ApiError::new(422, e))?;
    refuse_drill_while_stopped(app, &new.plan).await?;
    let state = if require_approval {
        RequestState::AwaitingApproval
    } else {
        RequestState::Queued
    };
    let request = super::catalog::request(new, String::new(), Origin::Api, state, caller.name.clone());
    queue(app, caller, request, crate::engine::runner::new_run_id, "run.start").await
}

/// Starts a run of the schedule's plan now, outside its cron (overlap is not applied).
pub async fn trigger_schedule(app: &AppState, caller: &Caller, name: &str) -> Result<RequestRow, ApiError> {
    caller.require(Scope::Run)?;
    let schedules = app.schedules.current();
    let Some(schedule) = schedules.iter().find(|s| s.spec.name == name) else {
        return Err(ApiError::not_found(format!("no schedule named `{name}`")));
    };
    let new = app
        .catalog
        .current()
        .new_run(&schedule.spec.plan, &schedule.spec.params)
        .map_err(|e| ApiError::new(422, e))?;
    refuse_drill_while_stopped(app, &new.plan).await?;
    let request = NewRequest {
        schedule: Some(name.to_owned()),
        ..super::catalog::request(new, String::new(), Origin::Schedule, RequestState::Queued, caller.name.clone())
    };
    let fresh_id = || format!("{name}-manual-{}", crate::engine::runner::new_run_id());
    queue(app, caller, request, fresh_id, "schedule.trigger").await
}

/// Stores a new request under a fresh id. Requests are keyed by id so that a retried
/// intake is stored once; here every call is a new request, so a clash is chance and a new
/// id is drawn rather than handing back someone else's request.
async fn queue(
    app: &AppState,
    caller: &Caller,
    mut request: NewRequest,
    fresh_id: impl Fn() -> String,
    action: &str,
) -> Result<RequestRow, ApiError> {
    let mut inserted = false;
    for _ in 0..ID_DRAWS {
        request.id = fresh_id();
        if app.journal.insert_request(&request).await.map_err(ApiError::journal)? {
            inserted = true;
            break;
        }
    }
    if !inserted {
        return Err(ApiError::new(503, "no free run id could be drawn; try again"));
    }
    app.wake.notify_one();
    tracing::info!(run = %request.id, plan = %request.plan_name, by = %caller.name, action, "run requested");
    audit(
        app,
        caller,
        action,
        Some(&request.id),
        None,
        Some(format!("plan {} ({})", request.plan_name, request.state.as_str())),
    )
    .await;
    app.journal
        .request(&request.id)
        .await
        .map_err(ApiError::journal)?
        .ok_or_else(|| ApiError::new(503, "the request was stored but cannot be read back; list the runs"))
}

async fn refuse_drill_while_stopped(app: &AppState, plan: &crate::plan::compiled::CompiledPlan) -> Result<(), ApiError> {
    if !emergency::is_drill(plan) {
        return Ok(());
    }
    match emergency::engaged(&app.journal).await.map_err(ApiError::journal)? {
        Some(stop) => Err(ApiError::conflict(format!(
            "the emergency stop is engaged (by {} at {}); no drill starts until someone with the admin scope releases it",
            stop.changed_by,
            stop.changed_at.format("%Y-%m-%d %H:%M:%S UTC")
        ))),
        None => Ok(()),
    }
}

/// Aborts a run (its `finally` runs and its faults are reverted), or cancels it if it has
/// not started. Says which: `cancelled` or `abort_requested`.
pub async fn abort(app: &AppState, caller: &Caller, id: &str, comment: Option<&str>, rollback: bool) -> Result<&'static str, ApiError> {
    caller.require(Scope::Run)?;
    if app
        .journal
        .cancel_request(id, &caller.name, comment)
        .await
        .map_err(ApiError::journal)?
    {
        audit(app, caller, "run.cancel", Some(id), comment, None).await;
        return Ok("cancelled");
    }
    let run = existing_run(app, id).await?;
    if run.status != RunStatus::Running {
        return Err(ApiError::conflict(format!("run {id} already finished ({})", run.status.as_str())));
    }
    let mode = rollback.then_some("rollback");
    app.journal
        .post_command(id, "abort", mode, &caller.name, comment)
        .await
        .map_err(ApiError::journal)?;
    tracing::warn!(run = %id, by = %caller.name, rollback, "abort requested");
    audit(
        app,
        caller,
        "run.abort",
        Some(id),
        comment,
        rollback.then(|| "with rollback".to_owned()),
    )
    .await;
    Ok("abort_requested")
}

/// Approves or rejects a run awaiting approval, or — with `step` — an `approval` step of a
/// running run. Says what happened: `approved`, `rejected` or `decision_posted`.
pub async fn decide(
    app: &AppState,
    caller: &Caller,
    id: &str,
    step: Option<&str>,
    comment: Option<&str>,
    kind: DecisionKind,
) -> Result<&'static str, ApiError> {
    caller.require(Scope::Approve)?;
    let approve = kind == DecisionKind::Approve;
    let Some(step) = step else {
        return match app
            .journal
            .decide_request(id, approve, &caller.name, comment)
            .await
            .map_err(ApiError::journal)?
        {
            Some(_) => {
                tracing::warn!(run = %id, by = %caller.name, approve, "run decided");
                app.wake.notify_one();
                audit(app, caller, &format!("run.{}", kind.as_str()), Some(id), comment, None).await;
                Ok(if approve { "approved" } else { "rejected" })
            }
            None => match app.journal.request(id).await.map_err(ApiError::journal)? {
                Some(r) => Err(ApiError::conflict(format!(
                    "run {id} is not awaiting approval (it is {}); to decide an approval step, name it in `step`",
                    r.state.as_str()
                ))),
                None => Err(ApiError::not_found(format!("no requested run `{id}`"))),
            },
        };
    };
    let (state, _, row) = crate::engine::runner::load(&app.journal, id).await.map_err(|e| match e {
        crate::engine::runner::EngineError::Journal(JournalError::NoSuchRun(_)) => ApiError::not_found(format!("no run `{id}`")),
        e => ApiError::new(500, e.to_string()),
    })?;
    let Some(unit) = state.plan.units.iter().find(|u| u.id == step) else {
        return Err(ApiError::not_found(format!("run {id} has no step `{step}`")));
    };
    if unit.kind != "approval" {
        return Err(ApiError::conflict(format!(
            "step `{step}` of run {id} is a `{}` step, not an approval",
            unit.kind
        )));
    }
    if row.status != RunStatus::Running {
        return Err(ApiError::conflict(format!("run {id} already finished ({})", row.status.as_str())));
    }
    app.journal
        .post_command(&row.id, kind.as_str(), Some(step), &caller.name, comment)
        .await
        .map_err(ApiError::journal)?;
    tracing::warn!(run = %id, step = %step, by = %caller.name, approve, "approval step decided");
    audit(
        app,
        caller,
        &format!("step.{}", kind.as_str()),
        Some(id),
        comment,
        Some(format!("step {step}")),
    )
    .await;
    Ok("decision_posted")
}

/// Pauses or resumes a schedule, recording who and why.
pub async fn set_paused(app: &AppState, caller: &Caller, name: &str, note: Option<&str>, paused: bool) -> Result<(), ApiError> {
    caller.require(Scope::Admin)?;
    if !app
        .journal
        .set_paused(name, paused, &caller.name, note)
        .await
        .map_err(ApiError::journal)?
    {
        return Err(ApiError::not_found(format!("no schedule named `{name}`")));
    }
    tracing::warn!(schedule = %name, paused, by = %caller.name, note = ?note, "schedule paused or resumed");
    let action = if paused { "schedule.pause" } else { "schedule.resume" };
    audit(app, caller, action, Some(name), note, None).await;
    Ok(())
}

/// The emergency stop's state after an engage or release, and what the engaging did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EmergencyStop {
    pub engaged: bool,
    /// Who engaged or released it last, when, and why.
    pub state: Option<SwitchState>,
    /// False if it already was in the position asked for.
    pub changed: bool,
    #[serde(flatten)]
    pub swept: emergency::Swept,
}

/// Engages the emergency stop: aborts every running drill (reverting its faults), cancels
/// drills not started, and holds every schedule until it is released.
pub async fn engage_emergency_stop(app: &AppState, caller: &Caller, note: Option<&str>) -> Result<EmergencyStop, ApiError> {
    caller.require(Scope::Run)?;
    let changed = app
        .journal
        .set_switch(EMERGENCY_STOP, true, &caller.name, note)
        .await
        .map_err(ApiError::journal)?;
    let state = app.journal.switch(EMERGENCY_STOP).await.map_err(ApiError::journal)?;
    let swept = match &state {
        Some(s) if s.engaged => emergency::enforce(&app.journal, s, &mut Default::default())
            .await
            .map_err(ApiError::journal)?,
        _ => emergency::Swept::default(),
    };
    tracing::error!(by = %caller.name, aborted = swept.aborted.len(), cancelled = swept.cancelled.len(), "EMERGENCY STOP engaged");
    audit(
        app,
        caller,
        "emergency_stop.engage",
        Some(EMERGENCY_STOP),
        note,
        Some(format!(
            "aborted {} runs, cancelled {} requests",
            swept.aborted.len(),
            swept.cancelled.len()
        )),
    )
    .await;
    Ok(EmergencyStop {
        engaged: true,
        state,
        changed,
        swept,
    })
}

/// Releases the emergency stop: schedules fire again (those paused on their own stay
/// paused) and drills may start.
pub async fn release_emergency_stop(app: &AppState, caller: &Caller, note: Option<&str>) -> Result<EmergencyStop, ApiError> {
    caller.require(Scope::Admin)?;
    let changed = app
        .journal
        .set_switch(EMERGENCY_STOP, false, &caller.name, note)
        .await
        .map_err(ApiError::journal)?;
    tracing::warn!(by = %caller.name, changed, "emergency stop released");
    audit(app, caller, "emergency_stop.release", Some(EMERGENCY_STOP), note, None).await;
    Ok(EmergencyStop {
        engaged: false,
        state: app.journal.switch(EMERGENCY_STOP).await.map_err(ApiError::journal)?,
        changed,
        swept: emergency::Swept::default(),
    })
}

pub async fn existing_run(app: &AppState, id: &str) -> Result<crate::journal::RunRow, ApiError> {
    match app.journal.run(id).await {
        Ok(r) => Ok(r),
        Err(JournalError::NoSuchRun(_)) => Err(ApiError::not_found(format!("no run `{id}`"))),
        Err(e) => Err(ApiError::journal(e)),
    }
}

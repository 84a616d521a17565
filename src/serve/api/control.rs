//! `/api/v1/emergency-stop`, `/api/v1/audit` and `/api/v1/plans/{name}/trend`: the
//! service-wide stop, who did what, and a plan's drill history.

use super::extract::{OptionalBody, Params};
use super::schedules::Note;
use super::{ApiError, AppState, Caller, Refusals, limit};
use crate::journal::audit::AuditEntry;
use crate::journal::switches::{EMERGENCY_STOP, SwitchState};
use crate::serve::actions::{self, EmergencyStop};
use crate::serve::config::Scope;
use crate::serve::trends::{PlanTrend, plan_trend};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

/// The emergency stop's state: engaged or not, by whom, when and why.
#[utoipa::path(get, path = "/api/v1/emergency-stop", tag = "control", security(("token" = [])),
    responses((status = 200, body = Option<SwitchState>), Refusals))]
pub async fn emergency_stop(State(app): State<AppState>, caller: Caller) -> Result<Json<Option<SwitchState>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(app.journal.switch(EMERGENCY_STOP).await.map_err(ApiError::journal)?))
}

/// Engages the emergency stop (scope `run`): every running drill is aborted and its faults
/// reverted, drills not started are cancelled, and every schedule is held until release.
#[utoipa::path(post, path = "/api/v1/emergency-stop", request_body(content = Option<Note>, content_type = "application/json"), tag = "control", security(("token" = [])),
    responses((status = 200, body = EmergencyStop), Refusals))]
pub async fn engage(
    State(app): State<AppState>,
    caller: Caller,
    OptionalBody(body): OptionalBody<Note>,
) -> Result<Json<EmergencyStop>, ApiError> {
    let note = super::note(body.note)?;
    Ok(Json(actions::engage_emergency_stop(&app, &caller, note.as_deref()).await?))
}

/// Releases the emergency stop (scope `admin`): schedules fire again and drills may start.
#[utoipa::path(post, path = "/api/v1/emergency-stop/release", request_body(content = Option<Note>, content_type = "application/json"), tag = "control", security(("token" = [])),
    responses((status = 200, body = EmergencyStop), Refusals))]
pub async fn release(
    State(app): State<AppState>,
    caller: Caller,
    OptionalBody(body): OptionalBody<Note>,
) -> Result<Json<EmergencyStop>, ApiError> {
    let note = super::note(body.note)?;
    Ok(Json(actions::release_emergency_stop(&app, &caller, note.as_deref()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this run, schedule or switch.
    pub target: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// What people did through the API and the dashboard, newest first.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), tag = "control", security(("token" = [])),
    responses((status = 200, body = [AuditEntry]), Refusals))]
pub async fn audit(State(app): State<AppState>, caller: Caller, Params(q): Params<AuditQuery>) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = limit(q.limit)?;
    Ok(Json(
        app.journal
            .audit_trail(q.target.as_deref(), limit)
            .await
            .map_err(ApiError::journal)?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// The last this many finished runs (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A plan's drills against its objectives: RTO, RPO and rows lost per run, p50/p95/max,
/// pass rate and the last passing drill.
#[utoipa::path(get, path = "/api/v1/plans/{name}/trend", params(("name" = String, Path), TrendQuery), tag = "plans", security(("token" = [])),
    responses((status = 200, body = PlanTrend), Refusals))]
pub async fn trend(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Params(q): Params<TrendQuery>,
) -> Result<Json<PlanTrend>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = limit(q.limit)?;
    Ok(Json(load_trend(&app, &name, limit).await?))
}

/// The trend of a plan the service knows.
pub async fn load_trend(app: &AppState, name: &str, limit: i64) -> Result<PlanTrend, ApiError> {
    let catalog = app.catalog.current();
    let entry = catalog.get(name).map_err(ApiError::not_found)?;
    let plan = &entry.plan;
    let now = app.journal.db_now().await.map_err(ApiError::journal)?;
    plan_trend(
        &app.journal,
        &app.metrics,
        name,
        (plan.rto, plan.rpo, plan.max_rows_lost),
        limit,
        now,
    )
    .await
    .map_err(ApiError::journal)
}

//! `/api/v1/schedules`: list, pause and resume (with who and why), trigger now.

use super::extract::OptionalBody;
use super::{ApiError, AppState, Caller, Refusals};
use crate::journal::schedules::OccurrenceOutcome;
use crate::serve::config::{Overlap, Scope};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A schedule, its state and its recent occurrences.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleItem {
    pub name: String,
    pub plan: String,
    pub cron: String,
    /// The expression as given to the cron engine (6/7 fields, Quartz day-of-week).
    pub cron_normalized: String,
    pub timezone: String,
    pub overlap: Overlap,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<DateTime<Utc>>,
    pub pause_note: Option<String>,
    pub next_at: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<String>,
    pub recent: Vec<OccurrenceItem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OccurrenceItem {
    pub scheduled_at: DateTime<Utc>,
    pub outcome: OccurrenceOutcome,
    pub run_id: Option<String>,
    pub reason: Option<String>,
}

/// Lists the schedules.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", security(("token" = [])),
    responses((status = 200, body = [ScheduleItem]), Refusals))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<Vec<ScheduleItem>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(items(&app, 20).await?))
}

/// Every schedule with its state and its `recent` newest occurrences.
pub async fn items(app: &AppState, recent: i64) -> Result<Vec<ScheduleItem>, ApiError> {
    let mut items = Vec::new();
    for s in app.schedules.current().iter() {
        let Some(row) = app.journal.schedule(&s.spec.name).await.map_err(ApiError::journal)? else {
            continue;
        };
        let recent = app
            .journal
            .occurrences(&s.spec.name, recent)
            .await
            .map_err(ApiError::journal)?
            .into_iter()
            .map(|o| OccurrenceItem {
                scheduled_at: o.scheduled_at,
                outcome: o.outcome,
                run_id: o.run_id,
                reason: o.reason,
            })
            .collect();
        items.push(ScheduleItem {
            name: s.spec.name.clone(),
            plan: s.spec.plan.clone(),
            cron: s.timing.cron.as_written().to_owned(),
            cron_normalized: s.timing.cron.normalized().to_owned(),
            timezone: s.spec.timezone.clone(),
            overlap: s.spec.overlap,
            paused: row.paused,
            paused_by: row.paused_by,
            paused_at: row.paused_at,
            pause_note: row.pause_note,
            next_at: row.next_at,
            last_fired_at: row.last_fired_at,
            last_run_id: row.last_run_id,
            recent,
        });
    }
    Ok(items)
}

/// Why a schedule is paused or resumed.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PauseResult {
    pub name: String,
    pub paused: bool,
    pub by: String,
    pub note: Option<String>,
}

/// Pauses a schedule: its occurrences are recorded as skipped, naming who paused it and why.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/pause", params(("name" = String, Path)), request_body(content = Option<Note>, content_type = "application/json"), tag = "schedules", security(("token" = [])),
    responses((status = 200, body = PauseResult), Refusals))]
pub async fn pause(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalBody(body): OptionalBody<Note>,
) -> Result<Json<PauseResult>, ApiError> {
    set_paused(app, caller, name, body, true).await
}

/// Resumes a paused schedule.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/resume", params(("name" = String, Path)), request_body(content = Option<Note>, content_type = "application/json"), tag = "schedules", security(("token" = [])),
    responses((status = 200, body = PauseResult), Refusals))]
pub async fn resume(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalBody(body): OptionalBody<Note>,
) -> Result<Json<PauseResult>, ApiError> {
    set_paused(app, caller, name, body, false).await
}

async fn set_paused(app: AppState, caller: Caller, name: String, note: Note, paused: bool) -> Result<Json<PauseResult>, ApiError> {
    let note = super::note(note.note)?;
    crate::serve::actions::set_paused(&app, &caller, &name, note.as_deref(), paused).await?;
    Ok(Json(PauseResult {
        name,
        paused,
        by: caller.name,
        note,
    }))
}

/// Starts a run of the schedule's plan now, outside its cron (overlap is not applied).
#[utoipa::path(post, path = "/api/v1/schedules/{name}/trigger", params(("name" = String, Path)), tag = "schedules", security(("token" = [])),
    responses((status = 202, body = super::runs::RunItem), Refusals))]
pub async fn trigger(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(axum::http::StatusCode, Json<super::runs::RunItem>), ApiError> {
    let row = crate::serve::actions::trigger_schedule(&app, &caller, &name).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(super::runs::RunItem::from_request(Some(&row))),
    ))
}

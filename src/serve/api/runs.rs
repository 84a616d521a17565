//! `/api/v1/runs`: runs and requested runs — list, show, start, abort, approve, reject,
//! and drill reports.

use super::extract::{Body, OptionalBody, Params};
use super::{ApiError, AppState, Caller, Refusals, limit};
use crate::drill::{measure, report};
use crate::journal::requests::{Origin, RequestFilter, RequestRow, RequestState};
use crate::journal::{DecisionKind, JournalError, RunRow};
use crate::serve::config::Scope;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A run, or a request that has not become one yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunItem {
    pub id: String,
    pub plan: String,
    /// `awaiting_approval`, `waiting`, `queued`, `rejected`, `cancelled`, `failed` (not started),
    /// or the run's: `running`, `interrupted`, `succeeded`, `failed`, `aborted`, `rolled_back`.
    pub status: String,
    /// `schedule`, `webhook`, `api`; absent for runs started from the command line.
    pub origin: Option<Origin>,
    pub requested_by: Option<String>,
    pub schedule: Option<String>,
    /// When its schedule's occurrence was due (apart from when it started).
    pub scheduled_at: Option<DateTime<Utc>>,
    pub trigger_id: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it, when it needed an approval.
    pub decided_by: Option<String>,
    pub decision_comment: Option<String>,
    pub detail: Option<String>,
}

impl RunItem {
    pub fn from_request(request: Option<&RequestRow>) -> RunItem {
        RunItem::new(request, None)
    }

    fn new(request: Option<&RequestRow>, run: Option<&RunRow>) -> RunItem {
        let status = match (request, run) {
            (_, Some(run)) => run.display_status().to_owned(),
            (Some(r), None) => r.state.as_str().to_owned(),
            (None, None) => "unknown".into(),
        };
        RunItem {
            id: run
                .map(|r| r.id.clone())
                .or_else(|| request.map(|r| r.id.clone()))
                .unwrap_or_default(),
            plan: run
                .map(|r| r.plan_name.clone())
                .or_else(|| request.map(|r| r.plan_name.clone()))
                .unwrap_or_default(),
            status,
            origin: request.map(|r| r.origin),
            requested_by: request.map(|r| r.requested_by.clone()),
            schedule: request.and_then(|r| r.schedule.clone()),
            scheduled_at: request.and_then(|r| r.scheduled_at),
            trigger_id: request.and_then(|r| r.trigger_id.clone()),
            requested_at: request.map(|r| r.created_at),
            started_at: run.map(|r| r.created_at),
            finished_at: run.and_then(|r| r.finished_at),
            decided_by: request.and_then(|r| r.decided_by.clone()),
            decision_comment: request.and_then(|r| r.decision_comment.clone()),
            detail: request.and_then(|r| r.detail.clone()),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs of this plan.
    pub plan: Option<String>,
    /// Only requests in this state (`awaiting_approval`, `waiting`, `queued`, …) or runs in this status.
    pub status: Option<String>,
    /// Only runs from this origin.
    pub origin: Option<Origin>,
    /// Only runs fired by this schedule.
    pub schedule: Option<String>,
    /// At most this many (default 100), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Lists runs and requested runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", params(RunsQuery), tag = "runs", security(("token" = [])),
    responses((status = 200, body = [RunItem]), Refusals))]
pub async fn list(State(app): State<AppState>, caller: Caller, Params(q): Params<RunsQuery>) -> Result<Json<Vec<RunItem>>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = limit(q.limit)?;
    let requests = app
        .journal
        .requests(&RequestFilter {
            plan: q.plan.clone(),
            state: None,
            origin: q.origin,
            schedule: q.schedule.clone(),
            limit,
        })
        .await
        .map_err(ApiError::journal)?;
    let mut items: Vec<RunItem> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &requests {
        let run = match r.state {
            RequestState::Started => app.journal.run(&r.id).await.ok(),
            _ => None,
        };
        seen.insert(r.id.clone());
        items.push(RunItem::new(Some(r), run.as_ref()));
    }
    if q.origin.is_none() && q.schedule.is_none() {
        for run in app.journal.runs(q.plan.as_deref(), limit).await.map_err(ApiError::journal)? {
            if seen.insert(run.id.clone()) {
                items.push(RunItem::new(None, Some(&run)));
            }
        }
    }
    if let Some(status) = &q.status {
        items.retain(|i| &i.status == status);
    }
    items.sort_by(|a, b| {
        let at = |i: &RunItem| i.requested_at.or(i.started_at);
        at(b).cmp(&at(a)).then(b.id.cmp(&a.id))
    });
    items.truncate(limit as usize);
    Ok(Json(items))
}

/// A run with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub item: RunItem,
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// The run's steps as `lifeboat runs show --output json` shows them; empty until it starts.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Value>,
    pub reason: Option<String>,
}

/// Shows one run (or requested run).
#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = String, Path)), tag = "runs", security(("token" = [])),
    responses((status = 200, body = RunDetail), Refusals))]
pub async fn show(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<RunDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let request = app.journal.request(&id).await.map_err(ApiError::journal)?;
    let run = match app.journal.run(&id).await {
        Ok(r) => Some(r),
        Err(JournalError::NoSuchRun(_)) => None,
        Err(e) => return Err(ApiError::journal(e)),
    };
    if request.is_none() && run.is_none() {
        return Err(ApiError::not_found(format!("no run or requested run `{id}`")));
    }
    let (params, steps, reason) = match &run {
        Some(row) => {
            let (state, _, row) = crate::engine::runner::load(&app.journal, &row.id)
                .await
                .map_err(|e| ApiError::new(500, e.to_string()))?;
            let view = crate::engine::view::RunView::new(&state, &row);
            let json = serde_json::to_value(&view).unwrap_or_default();
            let steps = json.get("steps").and_then(Value::as_array).cloned().unwrap_or_default();
            (state.params.clone(), steps, view.reason)
        }
        None => (request.as_ref().map(|r| r.params.clone()).unwrap_or_default(), Vec::new(), None),
    };
    Ok(Json(RunDetail {
        item: RunItem::new(request.as_ref(), run.as_ref()),
        params,
        steps,
        reason,
    }))
}

/// A run to start.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// A plan name from `GET /api/v1/plans`.
    pub plan: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// Hold it until someone with the `approve` scope approves it.
    #[serde(default)]
    pub require_approval: bool,
}

/// Requests a run of a plan; a free replica starts it.
#[utoipa::path(post, path = "/api/v1/runs", request_body = StartRun, tag = "runs", security(("token" = [])),
    responses((status = 202, body = RunItem), Refusals))]
pub async fn start(
    State(app): State<AppState>,
    caller: Caller,
    Body(body): Body<StartRun>,
) -> Result<(axum::http::StatusCode, Json<RunItem>), ApiError> {
    caller.require(Scope::Run)?;
    let new = app.catalog.new_run(&body.plan, &body.params).map_err(|e| ApiError::new(422, e))?;
    let state = if body.require_approval {
        RequestState::AwaitingApproval
    } else {
        RequestState::Queued
    };
    let request = crate::serve::catalog::request(new, crate::engine::runner::new_run_id(), Origin::Api, state, caller.name.clone());
    app.journal.insert_request(&request).await.map_err(ApiError::journal)?;
    app.wake.notify_one();
    tracing::info!(run = %request.id, plan = %request.plan_name, by = %caller.name, "run requested through the API");
    let row = app.journal.request(&request.id).await.map_err(ApiError::journal)?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(RunItem::from_request(row.as_ref()))))
}

/// An abort, approval or rejection.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Approvals of an `approval` step: the step's id. Omitted: the run's own approval.
    pub step: Option<String>,
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
    /// Aborts only: roll back the steps that succeeded.
    #[serde(default)]
    pub rollback: bool,
}

/// What a decision did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionResult {
    pub id: String,
    /// `approved`, `rejected`, `cancelled` (not started yet), `abort_requested`, `decision_posted`.
    pub result: String,
    pub by: String,
}

/// Aborts a run (its `finally` runs), or cancels it if it has not started.
#[utoipa::path(post, path = "/api/v1/runs/{id}/abort", params(("id" = String, Path)), request_body(content = Option<Decision>, content_type = "application/json"), tag = "runs", security(("token" = [])),
    responses((status = 200, body = DecisionResult), Refusals))]
pub async fn abort(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<Decision>,
) -> Result<Json<DecisionResult>, ApiError> {
    caller.require(Scope::Run)?;
    let body = Decision {
        comment: super::note(body.comment)?,
        ..body
    };
    let result = |r: &str| {
        Json(DecisionResult {
            id: id.clone(),
            result: r.into(),
            by: caller.name.clone(),
        })
    };
    if app
        .journal
        .cancel_request(&id, &caller.name, body.comment.as_deref())
        .await
        .map_err(ApiError::journal)?
    {
        return Ok(result("cancelled"));
    }
    let run = existing_run(&app, &id).await?;
    if run.status != crate::journal::RunStatus::Running {
        return Err(ApiError::conflict(format!("run {id} already finished ({})", run.status.as_str())));
    }
    let mode = body.rollback.then_some("rollback");
    app.journal
        .post_command(&id, "abort", mode, &caller.name, body.comment.as_deref())
        .await
        .map_err(ApiError::journal)?;
    tracing::warn!(run = %id, by = %caller.name, rollback = body.rollback, "abort requested through the API");
    Ok(result("abort_requested"))
}

/// Approves a run awaiting approval, or an `approval` step of a running run.
#[utoipa::path(post, path = "/api/v1/runs/{id}/approve", params(("id" = String, Path)), request_body(content = Option<Decision>, content_type = "application/json"), tag = "runs", security(("token" = [])),
    responses((status = 200, body = DecisionResult), Refusals))]
pub async fn approve(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<Decision>,
) -> Result<Json<DecisionResult>, ApiError> {
    decide(app, caller, id, body, DecisionKind::Approve).await
}

/// Rejects a run awaiting approval, or an `approval` step of a running run.
#[utoipa::path(post, path = "/api/v1/runs/{id}/reject", params(("id" = String, Path)), request_body(content = Option<Decision>, content_type = "application/json"), tag = "runs", security(("token" = [])),
    responses((status = 200, body = DecisionResult), Refusals))]
pub async fn reject(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<Decision>,
) -> Result<Json<DecisionResult>, ApiError> {
    decide(app, caller, id, body, DecisionKind::Reject).await
}

async fn decide(app: AppState, caller: Caller, id: String, body: Decision, kind: DecisionKind) -> Result<Json<DecisionResult>, ApiError> {
    caller.require(Scope::Approve)?;
    let body = Decision {
        comment: super::note(body.comment)?,
        ..body
    };
    let approve = kind == DecisionKind::Approve;
    let result = |r: &str| {
        Json(DecisionResult {
            id: id.clone(),
            result: r.into(),
            by: caller.name.clone(),
        })
    };
    let Some(step) = body.step else {
        return match app
            .journal
            .decide_request(&id, approve, &caller.name, body.comment.as_deref())
            .await
            .map_err(ApiError::journal)?
        {
            Some(_) => {
                tracing::warn!(run = %id, by = %caller.name, approve, "run decision through the API");
                app.wake.notify_one();
                Ok(result(if approve { "approved" } else { "rejected" }))
            }
            None => match app.journal.request(&id).await.map_err(ApiError::journal)? {
                Some(r) => Err(ApiError::conflict(format!(
                    "run {id} is not awaiting approval (it is {}); to decide an approval step, name it in `step`",
                    r.state.as_str()
                ))),
                None => Err(ApiError::not_found(format!("no requested run `{id}`"))),
            },
        };
    };
    let (state, _, row) = crate::engine::runner::load(&app.journal, &id).await.map_err(|e| match e {
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
    if row.status != crate::journal::RunStatus::Running {
        return Err(ApiError::conflict(format!("run {id} already finished ({})", row.status.as_str())));
    }
    app.journal
        .post_command(&row.id, kind.as_str(), Some(&step), &caller.name, body.comment.as_deref())
        .await
        .map_err(ApiError::journal)?;
    tracing::warn!(run = %id, step = %step, by = %caller.name, approve, "approval step decided through the API");
    Ok(result("decision_posted"))
}

async fn existing_run(app: &AppState, id: &str) -> Result<RunRow, ApiError> {
    match app.journal.run(id).await {
        Ok(r) => Ok(r),
        Err(JournalError::NoSuchRun(_)) => Err(ApiError::not_found(format!("no run `{id}`"))),
        Err(e) => Err(ApiError::journal(e)),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Default `json`.
    pub format: Option<ReportFormat>,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Json,
    Md,
    Html,
    Junit,
}

/// A run's drill report: RTO, RPO, verdict and the evidence.
#[utoipa::path(get, path = "/api/v1/runs/{id}/report", params(("id" = String, Path), ReportQuery), tag = "runs", security(("token" = [])),
    responses((status = 200, description = "The report in the format asked for",
            content((Object = "application/json"), (String = "text/markdown"), (String = "text/html"), (String = "application/xml"))), Refusals))]
pub async fn report(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(q): Params<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let (format, content_type) = match q.format.unwrap_or(ReportFormat::Json) {
        ReportFormat::Json => (report::Format::Json, "application/json"),
        ReportFormat::Md => (report::Format::Markdown, "text/markdown"),
        ReportFormat::Html => (report::Format::Html, "text/html"),
        ReportFormat::Junit => (report::Format::Junit, "application/xml"),
    };
    let run = existing_run(&app, &id).await?;
    let m = measure::measure(&app.journal, &run.id)
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, content_type)], report::render(&m, format)).into_response())
}

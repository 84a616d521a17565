//! `/api/v1/runs`: runs and requested runs — list, show, start, abort, approve, reject,
//! and drill reports.

use super::extract::{Body, OptionalBody, Params};
use super::{ApiError, AppState, Caller, Refusals, limit};
use crate::drill::{measure, report};
use crate::journal::listing::{Cursor, ListFilter, Trigger};
use crate::journal::requests::{Origin, RequestRow, RequestState};
use crate::journal::{DecisionKind, JournalError, RunRow};
use crate::serve::actions;
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
    /// Only requests in this state (`awaiting_approval`, `waiting`, `queued`, …) or runs in this
    /// status (`running`, `interrupted`, `succeeded`, …).
    pub status: Option<String>,
    /// Only runs from this origin.
    pub origin: Option<Origin>,
    /// Only runs started this way (`manual` also covers runs started from the command line).
    pub trigger: Option<Trigger>,
    /// Only runs fired by this schedule.
    pub schedule: Option<String>,
    /// Only runs older than this cursor: the `before` of the previous page's `Link: rel="next"`.
    pub before: Option<String>,
    /// At most this many (default 100), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Lists runs and requested runs, newest first, a page at a time: when there are more, the
/// `Link` header names the next page.
#[utoipa::path(get, path = "/api/v1/runs", params(RunsQuery), tag = "runs", security(("token" = [])),
    responses((status = 200, body = [RunItem], headers(("Link" = String, description = "`<…?before=…>; rel=\"next\"` when there are older runs"))), Refusals))]
pub async fn list(State(app): State<AppState>, caller: Caller, Params(q): Params<RunsQuery>) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let limit = limit(q.limit)?;
    let before = match q.before.as_deref() {
        Some(b) => Some(Cursor::decode(b).ok_or_else(|| {
            ApiError::bad_request(format!(
                "before={b}: not a cursor; pass the `before` of the previous page's Link header"
            ))
        })?),
        None => None,
    };
    // `running` and `interrupted` are told apart by the owner's liveness, not stored: both
    // are read as `running` and told apart here, reading on until the page is full.
    let by_liveness = matches!(q.status.as_deref(), Some("running" | "interrupted"));
    let mut filter = ListFilter {
        plan: q.plan.clone(),
        status: if by_liveness { Some("running".into()) } else { q.status.clone() },
        trigger: q.trigger,
        origin: q.origin.map(|o| o.as_str().to_owned()),
        schedule: q.schedule.clone(),
        before,
        limit: limit + 1,
    };
    let mut items: Vec<(RunItem, Cursor)> = Vec::new();
    loop {
        let rows = app.journal.list_runs(&filter).await.map_err(ApiError::journal)?;
        let exhausted = (rows.len() as i64) < filter.limit;
        for listed in &rows {
            let item = run_item(&app, listed).await?;
            if !by_liveness || Some(item.status.as_str()) == q.status.as_deref() {
                items.push((item, listed.cursor()));
            }
        }
        filter.before = rows.last().map(|r| r.cursor());
        if exhausted || items.len() as i64 > limit {
            break;
        }
    }
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let last = items.last().map(|(_, c)| c.clone());
    let items: Vec<RunItem> = items.into_iter().map(|(i, _)| i).collect();
    let mut response = Json(items).into_response();
    if let (true, Some(last)) = (more, last) {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        let origin = q.origin.map(|o| o.as_str().to_owned());
        let trigger = q.trigger.map(|t| t.as_str().to_owned());
        for (k, v) in [
            ("plan", &q.plan),
            ("status", &q.status),
            ("origin", &origin),
            ("trigger", &trigger),
            ("schedule", &q.schedule),
        ] {
            if let Some(v) = v {
                next.append_pair(k, v);
            }
        }
        next.append_pair("limit", &limit.to_string());
        next.append_pair("before", &last.encode());
        if let Ok(link) = header::HeaderValue::from_str(&format!("</api/v1/runs?{}>; rel=\"next\"", next.finish())) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// A listed run or request as the API shows it.
async fn run_item(app: &AppState, listed: &crate::journal::listing::Listed) -> Result<RunItem, ApiError> {
    let request = match listed.origin {
        Some(_) => app.journal.request(&listed.id).await.map_err(ApiError::journal)?,
        None => None,
    };
    let run = match request.as_ref().map(|r| r.state) {
        None | Some(RequestState::Started) => match app.journal.run(&listed.id).await {
            Ok(r) => Some(r),
            Err(JournalError::NoSuchRun(_)) => None,
            Err(e) => return Err(ApiError::journal(e)),
        },
        Some(_) => None,
    };
    Ok(RunItem::new(request.as_ref(), run.as_ref()))
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
    let row = actions::start_run(&app, &caller, &body.plan, &body.params, body.require_approval).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(RunItem::from_request(Some(&row)))))
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
    let comment = super::note(body.comment)?;
    let result = actions::abort(&app, &caller, &id, comment.as_deref(), body.rollback).await?;
    Ok(Json(DecisionResult {
        id,
        result: result.into(),
        by: caller.name,
    }))
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
    let comment = super::note(body.comment)?;
    let result = actions::decide(&app, &caller, &id, body.step.as_deref(), comment.as_deref(), kind).await?;
    Ok(Json(DecisionResult {
        id,
        result: result.into(),
        by: caller.name,
    }))
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
    let run = actions::existing_run(&app, &id).await?;
    let m = measure::measure(&app.journal, &run.id)
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, content_type)], report::render(&m, format)).into_response())
}

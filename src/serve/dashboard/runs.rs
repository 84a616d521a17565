//! `/ui/runs`: the runs list (filters, keyset paging over any number of runs) and the run
//! page (its DAG, steps, actions, drill findings and audit trail, live over SSE).

use super::layout::{self, Frame, Nav, badge, csrf_field, time};
use super::live::{StepSnapshot, steps_of};
use super::session::Viewer;
use super::{dag, page_stop};
use crate::drill::{measure, report};
use crate::engine::runner;
use crate::journal::listing::{Cursor, ListFilter, Trigger};
use crate::journal::requests::{RequestRow, RequestState};
use crate::journal::{JournalError, RunRow, RunStatus};
use crate::plan::compiled::{CompiledPlan, Role};
use crate::serve::api::{ApiError, AppState};
use crate::serve::config::Scope;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// A page of the runs list.
pub const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    plan: Option<String>,
    status: Option<String>,
    trigger: Option<String>,
    before: Option<String>,
    notice: Option<String>,
}

const STATUSES: &[&str] = &[
    "running",
    "succeeded",
    "failed",
    "aborted",
    "rolled_back",
    "awaiting_approval",
    "queued",
    "waiting",
    "rejected",
    "cancelled",
];

fn trigger_of(text: &str) -> Option<Trigger> {
    match text {
        "schedule" => Some(Trigger::Schedule),
        "alert" => Some(Trigger::Alert),
        "manual" => Some(Trigger::Manual),
        _ => None,
    }
}

fn trigger_label(origin: Option<&str>) -> &'static str {
    match origin {
        Some("schedule") => "schedule",
        Some("webhook") => "alert",
        Some("api") => "manual (API)",
        _ => "manual (CLI)",
    }
}

pub async fn list(State(app): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let filter = ListFilter {
        plan: empty(&q.plan),
        status: empty(&q.status),
        trigger: q.trigger.as_deref().and_then(trigger_of),
        before: q.before.as_deref().and_then(Cursor::decode),
        limit: PAGE + 1,
        ..Default::default()
    };
    let (mut rows, stop) = match tokio::try_join!(app.journal.list_runs(&filter), page_stop(&app)) {
        Ok(found) => found,
        Err(e) => return ApiError::journal(e).page(),
    };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let link = |before: Option<&Cursor>| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("plan", &filter.plan), ("status", &filter.status), ("trigger", &empty(&q.trigger))] {
            if let Some(v) = v {
                url.append_pair(k, v);
            }
        }
        if let Some(c) = before {
            url.append_pair("before", &c.encode());
        }
        format!("/ui/runs?{}", url.finish())
    };
    let selected = |given: &Option<String>, value: &str| given.as_deref() == Some(value);
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/ui/runs" {
            label { "plan"
                select name="plan" {
                    option value="" { "any" }
                    @for name in app.catalog.current().plans.keys() {
                        option value=(name) selected[selected(&filter.plan, name)] { (name) }
                    }
                }
            }
            label { "status"
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[selected(&filter.status, s)] { (s.replace('_', " ")) } }
                }
            }
            label { "trigger"
                select name="trigger" {
                    option value="" { "any" }
                    @for t in ["schedule", "alert", "manual"] { option value=(t) selected[selected(&q.trigger, t)] { (t) } }
                }
            }
            button type="submit" { "Filter" }
        }
        table id="runs" {
            thead { tr { th { "run" } th { "plan" } th { "status" } th { "trigger" } th { "requested by" } th { "at" } th { "took" } } }
            tbody {
                @for r in &rows {
                    tr data-run=(r.id) {
                        td { a href={"/ui/runs/" (r.id)} { code { (r.id) } } }
                        td { (r.plan_name) }
                        td { (badge(&r.status)) }
                        td { (trigger_label(r.origin.as_deref())) @if let Some(s) = &r.schedule { " " span.muted { (s) } } }
                        td { (r.requested_by.as_deref().unwrap_or("")) }
                        td { (time(r.at)) }
                        td { @if let Some(f) = r.finished_at { (crate::drill::measure::format_ms((f - r.at).num_milliseconds())) } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="7" .muted { "No runs match." } } }
            }
        }
        div.paging {
            @if filter.before.is_some() { a href=(link(None)) { "← Newest" } }
            @if more { @if let Some(last) = rows.last() { a id="older" href=(link(Some(&last.cursor()))) { "Older →" } } }
        }
    };
    let notice = q.notice.as_deref().and_then(super::forms::notice_text);
    layout::page(
        Frame {
            viewer: &viewer,
            title: "Runs",
            nav: Nav::Runs,
            stop: stop.as_ref(),
            notice,
        },
        body,
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    notice: Option<String>,
}

/// What the run page shows, loaded from the journal.
struct Loaded {
    request: Option<RequestRow>,
    run: Option<RunRow>,
    plan: Option<std::sync::Arc<CompiledPlan>>,
    steps: Vec<StepSnapshot>,
    measured: Option<measure::Measurement>,
}

async fn load(app: &AppState, id: &str) -> Result<Loaded, ApiError> {
    let request = app.journal.request(id).await.map_err(ApiError::journal)?;
    let run = match app.journal.run(id).await {
        Ok(r) => Some(r),
        Err(JournalError::NoSuchRun(_)) => None,
        Err(e) => return Err(ApiError::journal(e)),
    };
    let (plan, steps, measured) = match &run {
        Some(row) => {
            let (state, _, row) = runner::load(&app.journal, &row.id)
                .await
                .map_err(|e| ApiError::new(500, format!("run {id} cannot be replayed: {e}")))?;
            let measured = measure::measure_loaded(&app.journal, &state, &row).await.ok();
            (Some(state.plan.clone()), steps_of(&state), measured)
        }
        None => match &request {
            Some(r) => {
                let plan = crate::plan::compile(&r.plan_file, &r.plan_source, crate::steps::catalog()).ok();
                let steps = plan.as_ref().map(pending_steps).unwrap_or_default();
                (plan.map(std::sync::Arc::new), steps, None)
            }
            None => return Err(ApiError::not_found(format!("no run or requested run `{id}`"))),
        },
    };
    Ok(Loaded {
        request,
        run,
        plan,
        steps,
        measured,
    })
}

fn pending_steps(plan: &CompiledPlan) -> Vec<StepSnapshot> {
    plan.units
        .iter()
        .filter(|u| !matches!(u.role, Role::Compensation { .. }))
        .map(|u| StepSnapshot::pending(&u.id))
        .collect()
}

/// A plan's DAG before any run: every step pending.
pub fn draw_pending(plan: &CompiledPlan) -> String {
    draw(plan, &pending_steps(plan))
}

/// The plan's DAG with the steps shown (compensations only once attempted).
fn draw(plan: &CompiledPlan, steps: &[StepSnapshot]) -> String {
    let shown: Vec<usize> = plan
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| steps.iter().any(|s| s.id == u.id))
        .map(|(i, _)| i)
        .collect();
    let position = |unit: usize| shown.iter().position(|&i| i == unit);
    let nodes: Vec<dag::Node> = shown
        .iter()
        .map(|&i| {
            let u = &plan.units[i];
            let status = steps.iter().find(|s| s.id == u.id).map_or("pending", |s| s.status.as_str());
            dag::Node {
                id: &u.id,
                kind: &u.kind,
                lane: match u.role {
                    Role::Main => dag::Lane::Main,
                    Role::Finally => dag::Lane::Finally,
                    Role::Compensation { .. } => dag::Lane::Compensation,
                },
                needs: u.needs.iter().filter_map(|&n| position(n)).collect(),
                status,
            }
        })
        .collect();
    dag::render(&nodes)
}

pub async fn show(State(app): State<AppState>, viewer: Viewer, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    let (loaded, stop, trail) = match tokio::try_join!(load(&app, &id), async { page_stop(&app).await.map_err(ApiError::journal) }, async {
        app.journal.audit_trail(Some(&id), 50).await.map_err(ApiError::journal)
    },)
    {
        Ok(found) => found,
        Err(e) => return e.page(),
    };
    let status = match (&loaded.run, &loaded.request) {
        (Some(run), _) => run.display_status().to_owned(),
        (None, Some(r)) => r.state.as_str().to_owned(),
        (None, None) => "unknown".to_owned(),
    };
    let plan_name = loaded
        .run
        .as_ref()
        .map(|r| r.plan_name.clone())
        .or_else(|| loaded.request.as_ref().map(|r| r.plan_name.clone()))
        .unwrap_or_default();
    let finished = loaded.run.as_ref().is_some_and(|r| r.status != RunStatus::Running)
        || loaded
            .request
            .as_ref()
            .is_some_and(|r| matches!(r.state, RequestState::Rejected | RequestState::Cancelled | RequestState::Failed));
    let awaiting = loaded
        .steps
        .iter()
        .filter(|s| s.awaiting_approval)
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let body = html! {
        div id="run" data-live-run=(id) data-finished=(finished) data-started=(loaded.run.is_some())
            data-awaiting=(awaiting) data-seq="0" {
            h1 { "Run " code { (id) } " " span id="run-status" class={"badge " (status)} { (status.replace('_', " ")) } }
            dl.kv {
                dt { "plan" } dd { a href={"/ui/drills/" (plan_name)} { (plan_name) } }
                @if let Some(r) = &loaded.request {
                    dt { "trigger" } dd { (trigger_label(Some(r.origin.as_str()))) @if let Some(s) = &r.schedule { " · schedule " (s) } }
                    dt { "requested by" } dd { (r.requested_by) " at " (time(r.created_at)) }
                    @if let Some(at) = r.scheduled_at { dt { "scheduled for" } dd { (time(at)) } }
                    @if let Some(by) = &r.decided_by {
                        dt { "decided by" } dd { (by) @if let Some(c) = &r.decision_comment { ": " (c) } }
                    }
                    @if let Some(d) = &r.detail { dt { "detail" } dd { (d) } }
                }
                @if let Some(run) = &loaded.run {
                    dt { "started" } dd { (time(run.created_at)) }
                    @if let Some(f) = run.finished_at { dt { "finished" } dd { (time(f)) } }
                }
                @if let Some(m) = &loaded.measured { @if let Some(reason) = &m.reason { dt { "reason" } dd { (reason) } } }
            }
            (actions(&viewer, &id, &loaded, finished))
            @if let Some(plan) = &loaded.plan {
                h2 { "Steps" }
                div.dag-wrap { (layout::raw(draw(plan, &loaded.steps))) }
                table id="steps" {
                    thead { tr { th { "step" } th { "kind" } th { "status" } th { "attempts" } th { "started" } th { "took" } th { "outputs / error" } } }
                    tbody {
                        @for s in &loaded.steps {
                            tr data-step=(s.id) {
                                td { code { (s.id) } }
                                td { (plan.by_id.get(&s.id).map_or("", |&i| plan.units[i].kind.as_str())) }
                                td.step-status { (s.status) }
                                td.step-attempts { (s.attempts) }
                                td { @if let Some(t) = s.started_at { (t.format("%H:%M:%S%.3f")) } }
                                td { @if let Some(ms) = s.duration_ms { (crate::drill::measure::format_ms(ms)) } }
                                td { @if let Some(d) = &s.detail { pre { (d) } } }
                            }
                        }
                    }
                }
            }
            @if let Some(m) = &loaded.measured {
                @if loaded.run.as_ref().is_some_and(|r| r.status != RunStatus::Running) {
                    h2 { "Verdict " (badge(if m.passed { "passed" } else { "failed" })) }
                    p { a href={"/ui/runs/" (id) "/report"} { "Full report (HTML)" } span.muted { " · API: " code { "GET /api/v1/runs/" (id) "/report?format=json" } } }
                }
                (layout::raw(report::html::sections(m)))
            }
            @if !trail.is_empty() {
                h2 { "Audit" }
                table id="audit" { tbody { @for e in &trail {
                    tr { td { (time(e.at)) } td { b { (e.actor) } } td { (e.action) } td { (e.detail.as_deref().unwrap_or("")) } td { (e.comment.as_deref().unwrap_or("")) } }
                } } }
            }
        }
    };
    let notice = q.notice.as_deref().and_then(super::forms::notice_text);
    layout::page(
        Frame {
            viewer: &viewer,
            title: &format!("Run {id}"),
            nav: Nav::Runs,
            stop: stop.as_ref(),
            notice,
        },
        body,
    )
    .into_response()
}

/// The buttons the viewer's scopes allow for this run's state.
fn actions(viewer: &Viewer, id: &str, loaded: &Loaded, finished: bool) -> Markup {
    let caller = &viewer.caller;
    let awaiting = loaded.request.as_ref().is_some_and(|r| r.state == RequestState::AwaitingApproval);
    let waiting_steps: Vec<&StepSnapshot> = loaded.steps.iter().filter(|s| s.awaiting_approval).collect();
    let comment = html! { input type="text" name="comment" placeholder="comment" maxlength="1000"; };
    html! {
        div.actions {
            @if awaiting && caller.may(Scope::Approve) {
                form.inline method="post" action={"/ui/runs/" (id) "/approve"} {
                    (csrf_field(viewer)) (comment) button.primary type="submit" id="approve-run" { "Approve run" }
                }
                form.inline method="post" action={"/ui/runs/" (id) "/reject"} {
                    (csrf_field(viewer)) (comment) button.danger type="submit" id="reject-run" { "Reject" }
                }
            }
            @if caller.may(Scope::Approve) {
                @for s in &waiting_steps {
                    form.inline method="post" action={"/ui/runs/" (id) "/approve"} {
                        (csrf_field(viewer)) input type="hidden" name="step" value=(s.id); (comment)
                        button.primary type="submit" id={"approve-" (s.id)} { "Approve " (s.id) }
                    }
                    form.inline method="post" action={"/ui/runs/" (id) "/reject"} {
                        (csrf_field(viewer)) input type="hidden" name="step" value=(s.id);
                        button.danger type="submit" id={"reject-" (s.id)} { "Reject " (s.id) }
                    }
                }
            }
            @if !finished && caller.may(Scope::Run) {
                form.inline method="post" action={"/ui/runs/" (id) "/abort"} {
                    (csrf_field(viewer)) (comment)
                    label { input type="checkbox" name="rollback" value="true"; " roll back" }
                    button.danger type="submit" id="abort" { @if loaded.run.is_some() { "Abort" } @else { "Cancel" } }
                }
            }
            @if !waiting_steps.is_empty() && !caller.may(Scope::Approve) {
                span.muted { "Waiting for an approval; your token lacks the approve scope." }
            }
        }
    }
}

/// The finished run's full drill report, as `lifeboat drill` writes it.
pub async fn report(State(app): State<AppState>, _viewer: Viewer, Path(id): Path<String>) -> Response {
    let run = match crate::serve::actions::existing_run(&app, &id).await {
        Ok(r) => r,
        Err(e) => return e.page(),
    };
    match measure::measure(&app.journal, &run.id).await {
        Ok(m) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report::render(&m, report::Format::Html),
        )
            .into_response(),
        Err(e) => ApiError::new(500, format!("run {id} cannot be measured: {e}")).page(),
    }
}

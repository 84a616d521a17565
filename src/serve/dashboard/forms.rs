//! The dashboard's actions: each form posts here, is checked for its CSRF token, and calls
//! the same action as the JSON API ([`crate::serve::actions`]); the browser is sent back
//! to the page with a notice, or shown why it was refused.

use super::session::Viewer;
use crate::journal::DecisionKind;
use crate::serve::actions;
use crate::serve::api::{ApiError, AppState};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The notices a redirect may ask a page to show (a fixed set, so a link cannot make a
/// page say anything else).
pub fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "requested" => "Run requested; a free replica starts it.",
        "held" => "Run requested and held for approval.",
        "approved" => "Approved.",
        "rejected" => "Rejected.",
        "decision_posted" => "Decision posted; the run goes on when its owner reads it.",
        "abort_requested" => "Abort requested; the run's finally steps run and its faults are reverted.",
        "cancelled" => "Cancelled before it started.",
        "paused" => "Schedule paused.",
        "resumed" => "Schedule resumed.",
        "stopped" => "Emergency stop engaged: running drills are being aborted and their faults reverted.",
        "released" => "Emergency stop released: schedules fire again.",
        _ => return None,
    })
}

/// Runs a form's action once its CSRF token checks out (the future does nothing until
/// then), and sends the browser to the page the action names, with its notice.
async fn act(
    viewer: &Viewer,
    headers: &HeaderMap,
    csrf: &str,
    action: impl Future<Output = Result<(String, &'static str), ApiError>>,
) -> Response {
    if let Err(refused) = viewer.check_form(headers, csrf) {
        return refused.into_response();
    }
    match action.await {
        Ok((path, notice)) => Redirect::to(&format!("{path}?notice={notice}")).into_response(),
        Err(e) => e.page(),
    }
}

/// A comment or note from a form: blank means none; bounded like the API's.
fn comment(text: &Option<String>) -> Result<Option<&str>, ApiError> {
    let text = text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    crate::serve::api::check_note(text)?;
    Ok(text)
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    step: Option<String>,
    comment: Option<String>,
    rollback: Option<String>,
}

pub async fn abort(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    act(&viewer, &headers, &f.csrf, async {
        let result = actions::abort(&app, &viewer.caller, &id, comment(&f.comment)?, f.rollback.is_some()).await?;
        Ok((format!("/ui/runs/{id}"), result))
    })
    .await
}

pub async fn approve(state: State<AppState>, viewer: Viewer, headers: HeaderMap, id: Path<String>, form: Form<DecisionForm>) -> Response {
    decide(state, viewer, headers, id, form, DecisionKind::Approve).await
}

pub async fn reject(state: State<AppState>, viewer: Viewer, headers: HeaderMap, id: Path<String>, form: Form<DecisionForm>) -> Response {
    decide(state, viewer, headers, id, form, DecisionKind::Reject).await
}

async fn decide(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
    kind: DecisionKind,
) -> Response {
    act(&viewer, &headers, &f.csrf, async {
        let step = f.step.as_deref().filter(|s| !s.is_empty());
        let result = actions::decide(&app, &viewer.caller, &id, step, comment(&f.comment)?, kind).await?;
        Ok((format!("/ui/runs/{id}"), result))
    })
    .await
}

/// The start form: `csrf`, `require_approval`, and one `param.<name>` field per param.
pub async fn start(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(plan): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    act(&viewer, &headers, field("csrf").unwrap_or(""), async {
        // Empty fields mean "use the default": a form always sends every input.
        let params: BTreeMap<String, serde_json::Value> = f
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("param.")?.to_owned(), v)))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, serde_json::Value::String(v.clone())))
            .collect();
        let held = field("require_approval").is_some();
        let request = actions::start_run(&app, &viewer.caller, &plan, &params, held).await?;
        Ok((format!("/ui/runs/{}", request.id), if held { "held" } else { "requested" }))
    })
    .await
}

#[derive(Deserialize)]
pub struct NoteForm {
    csrf: String,
    note: Option<String>,
}

pub async fn pause(state: State<AppState>, viewer: Viewer, headers: HeaderMap, name: Path<String>, form: Form<NoteForm>) -> Response {
    set_paused(state, viewer, headers, name, form, true).await
}

pub async fn resume(state: State<AppState>, viewer: Viewer, headers: HeaderMap, name: Path<String>, form: Form<NoteForm>) -> Response {
    set_paused(state, viewer, headers, name, form, false).await
}

async fn set_paused(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<NoteForm>,
    paused: bool,
) -> Response {
    act(&viewer, &headers, &f.csrf, async {
        actions::set_paused(&app, &viewer.caller, &name, comment(&f.note)?, paused).await?;
        Ok(("/ui/schedules".to_owned(), if paused { "paused" } else { "resumed" }))
    })
    .await
}

pub async fn trigger(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    act(&viewer, &headers, &f.csrf, async {
        let request = actions::trigger_schedule(&app, &viewer.caller, &name).await?;
        Ok((format!("/ui/runs/{}", request.id), "requested"))
    })
    .await
}

pub async fn engage(state: State<AppState>, viewer: Viewer, headers: HeaderMap, form: Form<NoteForm>) -> Response {
    emergency_stop(state, viewer, headers, form, true).await
}

pub async fn release(state: State<AppState>, viewer: Viewer, headers: HeaderMap, form: Form<NoteForm>) -> Response {
    emergency_stop(state, viewer, headers, form, false).await
}

async fn emergency_stop(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<NoteForm>,
    engage: bool,
) -> Response {
    act(&viewer, &headers, &f.csrf, async {
        let note = comment(&f.note)?;
        if engage {
            actions::engage_emergency_stop(&app, &viewer.caller, note).await?;
        } else {
            actions::release_emergency_stop(&app, &viewer.caller, note).await?;
        }
        Ok(("/ui/runs".to_owned(), if engage { "stopped" } else { "released" }))
    })
    .await
}

//! `/ui/audit`: who did what through the API and the dashboard.

use super::layout::{self, Frame, Nav, time};
use super::page_stop;
use super::session::Viewer;
use crate::serve::api::{ApiError, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

pub async fn list(State(app): State<AppState>, viewer: Viewer) -> Response {
    let (trail, stop) = match tokio::try_join!(app.journal.audit_trail(None, 500), page_stop(&app)) {
        Ok(found) => found,
        Err(e) => return ApiError::journal(e).page(),
    };
    let body = html! {
        h1 { "Audit" }
        p.muted { "The newest 500 actions taken through the API and the dashboard." }
        table id="audit" {
            thead { tr { th { "at" } th { "who" } th { "action" } th { "on" } th { "what it did" } th { "comment" } } }
            tbody { @for e in &trail {
                tr {
                    td { (time(e.at)) } td { b { (e.actor) } } td { code { (e.action) } }
                    td { @if let Some(t) = &e.target {
                        @if e.action.starts_with("run.") || e.action.starts_with("step.") || e.action == "schedule.trigger" { a href={"/ui/runs/" (t)} { code { (t) } } }
                        @else { code { (t) } }
                    } }
                    td { (e.detail.as_deref().unwrap_or("")) } td { (e.comment.as_deref().unwrap_or("")) }
                }
            } }
        }
    };
    layout::page(
        Frame {
            viewer: &viewer,
            title: "Audit",
            nav: Nav::Audit,
            stop: stop.as_ref(),
            notice: None,
        },
        body,
    )
    .into_response()
}

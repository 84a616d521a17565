//! The web dashboard, served by `lifeboat serve` itself under `/ui`: runs (list, live run
//! page with its DAG), drills and their trends, plans (start with a form), schedules,
//! the audit trail, and the emergency stop.
//!
//! Pages are rendered on the server (maud), so everything can be read without JavaScript;
//! one small embedded script repaints a run page from server-sent events. Every action is
//! a form posting to a handler that calls the same function as the JSON API
//! ([`crate::serve::actions`]), so both are scoped and audited alike. Sign-in is with an
//! API token ([`session`]); a viewer without a scope sees no button for it.

mod audit;
pub mod dag;
mod drills;
mod forms;
mod layout;
mod live;
mod plans;
mod runs;
mod schedules;
pub mod session;
mod sign_in;

use super::api::{ApiError, AppState};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route("/ui/runs", get(runs::list))
        .route("/ui/runs/{id}", get(runs::show))
        .route("/ui/runs/{id}/events", get(live::events))
        .route("/ui/runs/{id}/report", get(runs::report))
        .route("/ui/runs/{id}/abort", post(forms::abort))
        .route("/ui/runs/{id}/approve", post(forms::approve))
        .route("/ui/runs/{id}/reject", post(forms::reject))
        .route("/ui/plans", get(plans::list))
        .route("/ui/plans/{name}", get(plans::start_form).post(forms::start))
        .route("/ui/drills", get(drills::list))
        .route("/ui/drills/{plan}", get(drills::show))
        .route("/ui/schedules", get(schedules::list))
        .route("/ui/schedules/{name}/pause", post(forms::pause))
        .route("/ui/schedules/{name}/resume", post(forms::resume))
        .route("/ui/schedules/{name}/trigger", post(forms::trigger))
        .route("/ui/emergency-stop", post(forms::engage))
        .route("/ui/emergency-stop/release", post(forms::release))
        .route("/ui/audit", get(audit::list))
        .route("/ui/assets/dashboard.css", get(|| asset(layout::CSS, "text/css; charset=utf-8")))
        .route(
            "/ui/assets/dashboard.js",
            get(|| asset(layout::JS, "text/javascript; charset=utf-8")),
        )
        .layer(axum::middleware::map_response(secure_headers))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")],
        body,
    )
        .into_response()
}

/// No inline script and nothing from elsewhere runs in a page; pages are not framed and
/// not cached (they show who is signed in and what they may do).
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// An API refusal shown to a browser.
impl ApiError {
    pub fn page(self) -> Response {
        layout::error_page(self.status(), self.message())
    }
}

/// The emergency stop, for the banner every page shows.
async fn page_stop(app: &AppState) -> Result<Option<crate::journal::switches::SwitchState>, crate::journal::JournalError> {
    super::emergency::engaged(&app.journal).await
}

//! The HTTP API (axum): plans, runs, schedules, triggers and reports under `/api/v1`,
//! webhooks under `/webhooks`, `/metrics`, `/healthz`, and the OpenAPI document generated
//! from the handlers' types at `/openapi.json`.
//!
//! Every `/api/v1` call needs `Authorization: Bearer <token>`; a token's scopes (read,
//! run, approve, admin) decide what it may do, and its name is the identity recorded for
//! approvals, aborts and pauses. Errors are `{"error": "..."}` with a status that says
//! whose fault it is.

pub mod control;
mod extract;
mod plans;
mod runs;
pub mod schedules;

use super::catalog::Catalog;
use super::config::{Scope, Token, Webhook};
use super::live::Live;
use super::metrics::Metrics;
use crate::journal::{Journal, JournalError};
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;
use utoipa::OpenApi;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub journal: Journal,
    pub catalog: Arc<Live<Catalog>>,
    pub tokens: Arc<Vec<Token>>,
    pub webhooks: Arc<Vec<Webhook>>,
    pub schedules: Arc<Live<Vec<super::config::Schedule>>>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// Wakes this replica's worker when a request was queued.
    pub wake: Arc<Notify>,
    /// Cancelled when the service stops: long-lived answers (live streams) end with it.
    pub stop: tokio_util::sync::CancellationToken,
}

/// An error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// The refusals any call may get, each with an [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// The request is malformed (its query string, or a body that is not valid JSON).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No, a wrong or a forged credential.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the scope the call needs.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such run, schedule, step or receiver.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The run or request is not in a state that allows the call.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is too large.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// The body is JSON of the wrong shape, or names a plan, param or value the service refuses.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// The journal is unavailable; try again.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, message)
    }

    /// The journal is unreachable or busy: the client may retry.
    pub fn journal(e: JournalError) -> ApiError {
        tracing::error!(error = %e, "journal error while answering an API call");
        ApiError::new(503, format!("the journal is not available: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(ErrorBody { error: self.message })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"lifeboat\""));
        }
        response
    }
}

/// The authenticated caller of an API call.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    scopes: Vec<Scope>,
}

impl Caller {
    pub fn of(token: &Token) -> Caller {
        Caller {
            name: token.name.clone(),
            scopes: token.scopes.clone(),
        }
    }

    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Refuses the call unless the token has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.may(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                format!("token `{}` lacks the `{}` scope this call needs", self.name, scope_name(scope)),
            ))
        }
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read",
        Scope::Run => "run",
        Scope::Approve => "approve",
        Scope::Admin => "admin",
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::new(401, "this call needs `Authorization: Bearer <token>`"))?;
        match find_token(&app.tokens, presented) {
            Some(t) => Ok(Caller::of(t)),
            None => {
                tracing::warn!(path = %parts.uri.path(), "API call with an unknown token refused");
                Err(ApiError::new(401, "the bearer token is not one of the service's tokens"))
            }
        }
    }
}

/// The token whose secret was presented.
pub fn find_token<'a>(tokens: &'a [Token], presented: &str) -> Option<&'a Token> {
    // Digests compared in full: the time taken does not tell how much of a token matched.
    let presented = Sha256::digest(presented.as_bytes());
    // Every token is compared, so the time taken does not tell which one matched.
    tokens.iter().fold(None, |found, t| {
        let expected = Sha256::digest(t.secret.as_bytes());
        if constant_time_eq(&expected, &presented) { Some(t) } else { found }
    })
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(OpenApi)]
#[openapi(
    info(title = "lifeboat", description = "Disaster-recovery runs, drills, schedules and incident triggers"),
    paths(
        plans::list,
        plans::validate,
        runs::list,
        runs::show,
        runs::start,
        runs::abort,
        runs::approve,
        runs::reject,
        runs::report,
        schedules::list,
        schedules::pause,
        schedules::resume,
        schedules::trigger,
        plans::triggers,
        control::emergency_stop,
        control::engage,
        control::release,
        control::audit,
        control::trend,
        super::intake::receive,
    ),
    components(schemas(ErrorBody, runs::ReportFormat, crate::journal::listing::Trigger)),
    modifiers(&BearerAuth),
    tags(
        (name = "plans"), (name = "runs"), (name = "schedules"), (name = "triggers"), (name = "control"), (name = "webhooks")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router(app: AppState) -> Router {
    let max_body = app.max_body_bytes;
    Router::new()
        .route("/api/v1/plans", get(plans::list))
        .route("/api/v1/plans/validate", post(plans::validate))
        .route("/api/v1/runs", get(runs::list).post(runs::start))
        .route("/api/v1/runs/{id}", get(runs::show))
        .route("/api/v1/runs/{id}/abort", post(runs::abort))
        .route("/api/v1/runs/{id}/approve", post(runs::approve))
        .route("/api/v1/runs/{id}/reject", post(runs::reject))
        .route("/api/v1/runs/{id}/report", get(runs::report))
        .route("/api/v1/schedules", get(schedules::list))
        .route("/api/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/api/v1/schedules/{name}/trigger", post(schedules::trigger))
        .route("/api/v1/triggers", get(plans::triggers))
        .route("/api/v1/plans/{name}/trend", get(control::trend))
        .route("/api/v1/emergency-stop", get(control::emergency_stop).post(control::engage))
        .route("/api/v1/emergency-stop/release", post(control::release))
        .route("/api/v1/audit", get(control::audit))
        .route("/webhooks/{name}", post(super::intake::receive))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/openapi.json", get(openapi))
        .merge(super::dashboard::router())
        .fallback(|| async { ApiError::not_found("no such path; GET /openapi.json lists the API") })
        .method_not_allowed_fallback(|| async { ApiError::new(405, "method not allowed on this path; GET /openapi.json lists the API") })
        // One byte more than the limit reaches the handler, which answers 413 itself.
        .layer(axum::extract::DefaultBodyLimit::max(max_body + 1))
        .with_state(app)
}

/// OpenMetrics for scrapers that ask for it, Prometheus' classic text format otherwise.
async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let body = app.metrics.render(&app.journal, &app.catalog.current()).await;
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            super::metrics::to_prometheus_text(&body),
        )
            .into_response()
    }
}

/// The OpenAPI document, with the names this service knows (plans, schedules, webhook
/// receivers) as the allowed values where a call takes one.
async fn openapi(State(app): State<AppState>) -> axum::Json<serde_json::Value> {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let catalog = app.catalog.current();
    let plans: Vec<&String> = catalog.plans.keys().collect();
    if let Some(plan) = doc.pointer_mut("/components/schemas/StartRun/properties/plan") {
        plan["enum"] = serde_json::json!(plans);
    }
    let names = |path: &str| -> Option<serde_json::Value> {
        Some(serde_json::json!(match path {
            p if p.starts_with("/api/v1/schedules/") => app.schedules.current().iter().map(|s| s.spec.name.clone()).collect::<Vec<_>>(),
            p if p.starts_with("/api/v1/plans/{") => app.catalog.current().plans.keys().cloned().collect(),
            p if p.starts_with("/webhooks/") => app.webhooks.iter().map(|w| w.name.clone()).collect(),
            _ => return None,
        }))
    };
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for (path, item) in paths.iter_mut() {
            let Some(allowed) = names(path) else { continue };
            for operation in item.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                for param in operation.get_mut("parameters").and_then(|p| p.as_array_mut()).into_iter().flatten() {
                    if param["in"] == "path" {
                        param["schema"]["enum"] = allowed.clone();
                    }
                }
            }
        }
    }
    axum::Json(doc)
}

/// Free text a person gives (comments, notes): bounded, so that logs stay readable.
pub fn note(text: Option<String>) -> Result<Option<String>, ApiError> {
    check_note(text.as_deref())?;
    Ok(text)
}

/// Refuses a comment or note longer than [`NOTE_MAX`] characters.
pub fn check_note(text: Option<&str>) -> Result<(), ApiError> {
    match text.map(|t| t.chars().count()) {
        Some(n) if n > NOTE_MAX => Err(ApiError::new(
            422,
            format!("a comment or note of {n} characters; keep it under {NOTE_MAX}"),
        )),
        _ => Ok(()),
    }
}

pub const NOTE_MAX: usize = 1000;

/// Runs' and other lists' `limit`: 1..=1000, default 100.
pub fn limit(given: Option<i64>) -> Result<i64, ApiError> {
    match given {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!("limit={n}: give a number from 1 to 1000"))),
    }
}

//! Incident webhooks turned into runs: authenticate, parse, route each firing alert to a
//! plan, and store the trigger with its request in one transaction before answering.
//!
//! # Guarantees
//! Nothing starts from a request that is unauthenticated, forged, stale, malformed or too
//! large: it is refused (401/400/413) and logged before anything is stored. An alert is
//! acknowledged (2xx) only once its trigger is durable, so Alertmanager resends what was
//! not stored; resends and duplicates meet the trigger's unique key and start nothing.

use super::api::{ApiError, AppState};
use super::config::{Webhook, WebhookAuth};
use super::webhook::{self, WebhookError, alertmanager};
use crate::journal::requests::{NewRequest, Origin, RequestState};
use crate::journal::triggers::{NewTrigger, Stored};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::Utc;
use serde::Serialize;
use std::time::Instant;

/// What happened to each alert of a delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub alerts: Vec<AlertOutcome>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertOutcome {
    pub fingerprint: String,
    /// `started` (a run was requested), `awaiting_approval`, `duplicate`, `resolved` (ignored), `unrouted`.
    pub outcome: String,
    pub run_id: Option<String>,
    pub route: Option<String>,
}

/// Receives a webhook delivery.
#[utoipa::path(
    post,
    path = "/webhooks/{name}",
    params(("name" = String, Path, description = "The receiver's name in the service configuration")),
    request_body(content = String, description = "Alertmanager webhook payload version 4 (or Grafana's), as JSON", content_type = "application/json"),
    responses(
        (status = 200, description = "Every firing alert is stored (or was a duplicate)", body = Delivery),
        super::api::Refusals,
    ),
    tag = "webhooks"
)]
pub async fn receive(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Delivery>, ApiError> {
    let Some(hook) = app.webhooks.iter().find(|w| w.name == name) else {
        return Err(ApiError::not_found(format!("no webhook receiver named `{name}`")));
    };
    let refuse = |e: WebhookError, outcome: &str| {
        app.metrics.webhook(&hook.name, outcome);
        tracing::warn!(webhook = %hook.name, error = %e, "webhook refused");
        ApiError::new(e.status(), e.to_string())
    };
    if body.len() > app.max_body_bytes {
        app.metrics.webhook(&hook.name, "too_large");
        tracing::warn!(webhook = %hook.name, bytes = body.len(), "webhook refused: body too large");
        return Err(ApiError::new(413, format!("the body is larger than {} bytes", app.max_body_bytes)));
    }
    authenticate(hook, &headers, &body).map_err(|e| refuse(e, "unauthorized"))?;
    let payload = match hook.auth {
        WebhookAuth::Signed { .. } if is_grafana(&body) => alertmanager::parse_grafana(&body),
        _ => alertmanager::parse(&body),
    }
    .map_err(|e| refuse(e, "bad_request"))?;
    let mut alerts = Vec::new();
    for alert in &payload.alerts {
        let started = Instant::now();
        let outcome = accept(&app, hook, alert).await?;
        app.metrics.journal_op("store_trigger", started.elapsed());
        app.metrics.webhook(&hook.name, &outcome.outcome);
        alerts.push(outcome);
    }
    if alerts.iter().any(|a| a.outcome == "started" || a.outcome == "awaiting_approval") {
        app.wake.notify_one();
    }
    Ok(axum::Json(Delivery { alerts }))
}

fn is_grafana(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("version")
                .and_then(|v| v.as_str())
                .map(|v| v == alertmanager::GRAFANA_VERSION)
        })
        .unwrap_or(false)
}

fn authenticate(hook: &Webhook, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    match &hook.auth {
        WebhookAuth::Credentials(expected) => {
            let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            webhook::check_authorization(expected, header)
        }
        WebhookAuth::Signed { scheme, secret, max_age } => {
            let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            webhook::verify(scheme, secret, &lookup, body, Utc::now(), *max_age)
        }
    }
}

async fn accept(app: &AppState, hook: &Webhook, alert: &alertmanager::Alert) -> Result<AlertOutcome, ApiError> {
    let fingerprint = webhook::fingerprint(alert);
    if alert.status == alertmanager::AlertStatus::Resolved {
        tracing::info!(webhook = %hook.name, fingerprint = %fingerprint, "resolved alert ignored");
        return Ok(AlertOutcome {
            fingerprint,
            outcome: "resolved".into(),
            run_id: None,
            route: None,
        });
    }
    let (dedupe_fingerprint, starts_at) = webhook::dedupe_key(alert);
    let trigger_id = uuid::Uuid::now_v7().to_string();
    let source = format!("webhook/{}", hook.name);
    let route = webhook::route(&hook.routes, &alert.labels);
    let mut trigger = NewTrigger {
        id: trigger_id.clone(),
        source,
        fingerprint: dedupe_fingerprint,
        starts_at,
        route: route.map(|r| r.name.clone()),
        labels: alert.labels.clone(),
        outcome: "unrouted".into(),
        run_id: None,
        detail: None,
    };
    let request = match route {
        None => None,
        Some(route) => {
            let params = webhook::render_params(route, alert).map_err(|e| {
                tracing::warn!(webhook = %hook.name, route = %route.name, error = %e, "alert refused: its params cannot be rendered");
                ApiError::new(e.status(), format!("route `{}`: {e}", route.name))
            })?;
            let given = params.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            let new = app
                .catalog
                .current()
                .new_run(&route.plan, &given)
                .map_err(|e| ApiError::new(422, format!("route `{}`: {e}", route.name)))?;
            let run_id = format!("{}-{}", crate::engine::runner::new_run_id(), &trigger_id[trigger_id.len() - 4..]);
            let state = if route.require_approval {
                RequestState::AwaitingApproval
            } else {
                RequestState::Queued
            };
            trigger.outcome = if route.require_approval {
                "awaiting_approval".into()
            } else {
                "started".into()
            };
            trigger.run_id = Some(run_id.clone());
            let requested_by = format!(
                "webhook {} (alert {})",
                hook.name,
                alert.labels.get("alertname").cloned().unwrap_or_default()
            );
            Some(NewRequest {
                trigger_id: Some(trigger_id.clone()),
                ..super::catalog::request(new, run_id, Origin::Webhook, state, requested_by)
            })
        }
    };
    let stored = app
        .journal
        .store_trigger(&trigger, request.as_ref())
        .await
        .map_err(ApiError::journal)?;
    Ok(match stored {
        Stored::New => {
            tracing::info!(webhook = %hook.name, fingerprint = %fingerprint, outcome = %trigger.outcome, run = ?trigger.run_id, "alert stored");
            AlertOutcome {
                fingerprint,
                outcome: trigger.outcome,
                run_id: trigger.run_id,
                route: trigger.route,
            }
        }
        Stored::Duplicate { run_id } => AlertOutcome {
            fingerprint,
            outcome: "duplicate".into(),
            run_id,
            route: trigger.route,
        },
    })
}

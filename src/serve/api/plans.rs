//! `/api/v1/plans` (list, validate) and `/api/v1/triggers` (incident triggers received).

use super::extract::{Body, Params};
use super::{ApiError, AppState, Caller, Refusals, limit};
use crate::plan::{self, diagnostic};
use crate::serve::config::Scope;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A plan the service may run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanItem {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    pub lock: Option<String>,
    pub steps: usize,
    /// Declared params: name → whether required.
    pub params: BTreeMap<String, bool>,
}

/// Lists the plans the service may run.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", security(("token" = [])),
    responses((status = 200, body = [PlanItem]), Refusals))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<Vec<PlanItem>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(
        app.catalog
            .current()
            .plans
            .values()
            .map(|e| PlanItem {
                name: e.plan.name.clone(),
                file: e.file.clone(),
                description: e.plan.description.clone(),
                lock: e.plan.lock.clone(),
                steps: e.plan.units.iter().filter(|u| u.role == plan::Role::Main).count(),
                params: e.plan.params.iter().map(|(k, p)| (k.clone(), p.required)).collect(),
            })
            .collect(),
    ))
}

/// A plan to check.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The plan's YAML text.
    pub source: String,
    /// The file name to use in messages (default `plan.yaml`).
    pub file: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidateResult {
    pub valid: bool,
    pub name: Option<String>,
    pub problems: Vec<Problem>,
}

/// One problem, with where it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub step: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

/// Compiles a plan and reports every problem (nothing is stored or run).
#[utoipa::path(post, path = "/api/v1/plans/validate", request_body = ValidateRequest, tag = "plans", security(("token" = [])),
    responses((status = 200, body = ValidateResult), Refusals))]
pub async fn validate(caller: Caller, Body(body): Body<ValidateRequest>) -> Result<Json<ValidateResult>, ApiError> {
    caller.require(Scope::Read)?;
    let file = body.file.unwrap_or_else(|| "plan.yaml".into());
    Ok(Json(match plan::compile(&file, &body.source, crate::steps::catalog()) {
        Ok(compiled) => ValidateResult {
            valid: true,
            name: Some(compiled.name),
            problems: Vec::new(),
        },
        Err(diags) => ValidateResult {
            valid: false,
            name: None,
            problems: diags
                .iter()
                .map(|d: &diagnostic::Diagnostic| Problem {
                    file: d.file.clone(),
                    line: d.pos.line,
                    column: d.pos.col,
                    step: d.step.clone(),
                    message: d.message.clone(),
                    help: d.help.clone(),
                })
                .collect(),
        },
    }))
}

/// An incident trigger received.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerItem {
    pub id: String,
    pub source: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub received_at: DateTime<Utc>,
    pub route: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub outcome: String,
    pub run_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggersQuery {
    /// At most this many (default 100), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Lists incident triggers, newest first.
#[utoipa::path(get, path = "/api/v1/triggers", params(TriggersQuery), tag = "triggers", security(("token" = [])),
    responses((status = 200, body = [TriggerItem]), Refusals))]
pub async fn triggers(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params<TriggersQuery>,
) -> Result<Json<Vec<TriggerItem>>, ApiError> {
    caller.require(Scope::Read)?;
    let rows = app.journal.triggers(limit(q.limit)?).await.map_err(ApiError::journal)?;
    Ok(Json(
        rows.into_iter()
            .map(|t| TriggerItem {
                id: t.id,
                source: t.source,
                fingerprint: t.fingerprint,
                starts_at: t.starts_at,
                received_at: t.received_at,
                route: t.route,
                labels: t.labels,
                outcome: t.outcome,
                run_id: t.run_id,
            })
            .collect(),
    ))
}

//! A plan's drill history against its objectives: RTO, RPO and rows lost per finished
//! run, their p50/p95/max, the pass rate and the last passing drill. The dashboard draws
//! it; `GET /api/v1/plans/{name}/trend` returns it.

use super::metrics::Metrics;
use crate::drill::measure::Measurement;
use crate::drill::trend::{Summary, summarize};
use crate::journal::{Journal, RunStatus};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// One finished drill.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    pub run_id: String,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub rto_ms: Option<i64>,
    pub rpo_ms: Option<i64>,
    pub rows_lost: Option<u64>,
    pub passed: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlanTrend {
    pub plan: String,
    pub rto_objective_ms: Option<i64>,
    pub rpo_objective_ms: Option<i64>,
    pub rows_lost_objective: Option<u64>,
    /// Oldest first.
    pub points: Vec<TrendPoint>,
    #[schema(value_type = Object)]
    pub summary: Summary,
    /// Passed drills over finished drills, 0..=1; absent without any.
    pub pass_rate: Option<f64>,
    pub rows_lost_max: Option<u64>,
    pub last_pass: Option<TrendPoint>,
    /// Seconds since the last passing drill finished.
    pub last_pass_age_s: Option<i64>,
}

/// The last `limit` finished runs of `plan`, measured (each once: `metrics` keeps finished
/// runs' measurements). Runs whose events cannot be
/// replayed are left out (and logged): one damaged run must not hide the others.
pub async fn plan_trend(
    journal: &Journal,
    metrics: &Metrics,
    plan: &str,
    objectives: (Option<std::time::Duration>, Option<std::time::Duration>, Option<u64>),
    limit: i64,
    now: DateTime<Utc>,
) -> Result<PlanTrend, crate::journal::JournalError> {
    let mut measured: Vec<Arc<Measurement>> = Vec::new();
    for row in journal.runs(Some(plan), limit).await? {
        if row.status == RunStatus::Running {
            continue;
        }
        match metrics.measurement(journal, &row.id).await {
            Ok(m) => measured.push(m),
            Err(e) => tracing::warn!(run = %row.id, error = %e, "left out of the trend: cannot measure it"),
        }
    }
    measured.reverse();
    let points: Vec<TrendPoint> = measured
        .iter()
        .map(|m| TrendPoint {
            run_id: m.run_id.clone(),
            finished_at: m.finished_at,
            status: m.status.clone(),
            rto_ms: m.rto_ms,
            rpo_ms: m.rpo_ms,
            rows_lost: m.rows_lost,
            passed: m.passed,
        })
        .collect();
    let last_pass = points.iter().rev().find(|p| p.passed).cloned();
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as i64);
    Ok(PlanTrend {
        plan: plan.to_owned(),
        rto_objective_ms: ms(objectives.0),
        rpo_objective_ms: ms(objectives.1),
        rows_lost_objective: objectives.2,
        summary: summarize(&measured),
        pass_rate: (!points.is_empty()).then(|| points.iter().filter(|p| p.passed).count() as f64 / points.len() as f64),
        rows_lost_max: points.iter().filter_map(|p| p.rows_lost).max(),
        last_pass_age_s: last_pass.as_ref().and_then(|p| p.finished_at).map(|t| (now - t).num_seconds()),
        last_pass,
        points,
    })
}

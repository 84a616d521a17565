//! From a run's journal to its measurement and verdict.

use crate::engine::state::{RunState, UnitStatus};
use crate::evidence::fault::{FaultHistory, FaultRecord, Reverted};
use crate::evidence::outcome::{FaultApplied, Outcome, ProbePassed, RpoMeasured};
use crate::journal::{Event, Journal, JournalError, Recorded, RunStatus};
use crate::plan::compiled::Role;
use crate::plan::model::Mark;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub run_id: String,
    pub plan: String,
    pub description: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub disaster: Option<Marker>,
    pub recovered: Option<Marker>,
    pub rto_ms: Option<i64>,
    pub rpo_ms: Option<i64>,
    pub rows_lost: Option<u64>,
    /// The first lost canary sequence numbers.
    pub lost_seqs: Vec<i64>,
    pub objectives: Vec<ObjectiveResult>,
    /// True when the run succeeded and every objective was met.
    pub passed: bool,
    pub steps: Vec<StepRecord>,
    pub faults: Vec<FaultReport>,
    pub guard_breaches: Vec<GuardBreach>,
}

/// When a drill clock started or stopped, and on what evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    pub step: String,
    pub at: DateTime<Utc>,
    pub evidence: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectiveResult {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: String,
    pub role: &'static str,
    pub status: String,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub mark: Option<&'static str>,
    pub error: Option<String>,
    pub outputs: Map<String, Value>,
}

/// A fault as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub step: String,
    pub injected_at: Option<DateTime<Utc>>,
    pub evidence: Value,
    pub reverted_at: Option<DateTime<Utc>>,
    pub revert: Option<Reverted>,
    /// A persistent fault without a recorded revert.
    pub left_active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuardBreach {
    pub guard: String,
    pub at: DateTime<Utc>,
    pub error: String,
    pub failures: u32,
}

/// Measures the run `run_id` (id or unique prefix).
pub async fn measure(journal: &Journal, run_id: &str) -> Result<Measurement, crate::engine::runner::EngineError> {
    let (state, _, row) = crate::engine::runner::load(journal, run_id).await?;
    Ok(measure_loaded(journal, &state, &row).await?)
}

/// Measures a run its caller has replayed already.
pub async fn measure_loaded(journal: &Journal, state: &RunState, row: &crate::journal::RunRow) -> Result<Measurement, JournalError> {
    let events = journal.events(&row.id).await?;
    let faults = faults(journal, &row.id).await?;
    Ok(compute(state, &events, faults, row.status, row.finished_at))
}

async fn faults(journal: &Journal, run_id: &str) -> Result<Vec<FaultReport>, JournalError> {
    let records = crate::evidence::read_all::<FaultRecord>(journal, run_id).await?;
    Ok(FaultHistory::by_step(records)
        .into_iter()
        .filter_map(|(step, history)| {
            let left_active = history.left_active();
            let injected = history.injected?;
            Some(FaultReport {
                step,
                injected_at: Some(injected.injected_at),
                evidence: Value::Object(injected.evidence),
                reverted_at: history.reverted.as_ref().map(|r| r.reverted_at),
                revert: history.reverted,
                left_active,
            })
        })
        .collect())
}

pub fn compute(
    state: &RunState,
    events: &[Recorded],
    faults: Vec<FaultReport>,
    status: RunStatus,
    finished_at: Option<DateTime<Utc>>,
) -> Measurement {
    let plan = &state.plan;
    let mut steps = Vec::new();
    let mut disaster = None;
    let mut recovered = None;
    let mut rpo: Option<(i64, u64, Vec<i64>, String)> = None;
    for (i, unit) in plan.units.iter().enumerate() {
        let u = &state.units[i];
        let (outputs, error) = match &u.status {
            UnitStatus::Succeeded { outputs, .. } => (outputs.clone(), None),
            UnitStatus::Failed { error, .. } => (Map::new(), Some(error.clone())),
            UnitStatus::Skipped { reason } => (Map::new(), Some(reason.clone())),
            _ => (Map::new(), None),
        };
        let succeeded = matches!(u.status, UnitStatus::Succeeded { .. });
        match unit.mark {
            Some(Mark::Disaster) if succeeded => {
                disaster = Some(match FaultApplied::from_outputs(&outputs).map(|f| f.injected_at) {
                    Some(at) => Marker {
                        step: unit.id.clone(),
                        at,
                        evidence: "the injector's observation (outputs.injected_at)".into(),
                    },
                    None => Marker {
                        step: unit.id.clone(),
                        at: u.finished_at.unwrap_or(state.started_at),
                        evidence: "the step's completion (it recorded no injection time)".into(),
                    },
                });
            }
            Some(Mark::Recovered) if succeeded => {
                recovered = Some(match ProbePassed::from_outputs(&outputs).map(|p| p.passed_at) {
                    Some(at) => Marker {
                        step: unit.id.clone(),
                        at,
                        evidence: "the probe's first passing check (outputs.passed_at)".into(),
                    },
                    None => Marker {
                        step: unit.id.clone(),
                        at: u.finished_at.unwrap_or(state.started_at),
                        evidence: "the step's completion".into(),
                    },
                });
            }
            _ => {}
        }
        if unit.kind == "validation.rpo"
            && succeeded
            && rpo.is_none()
            && let Some(measured) = RpoMeasured::from_outputs(&outputs)
        {
            rpo = Some((
                measured.rpo_ms.unwrap_or(-1),
                measured.rows_lost,
                measured.lost_seqs,
                unit.id.clone(),
            ));
        }
        steps.push(StepRecord {
            id: unit.id.clone(),
            kind: unit.kind.clone(),
            role: match unit.role {
                Role::Main => "step",
                Role::Finally => "finally",
                Role::Compensation { .. } => "compensation",
            },
            status: u.status.label().to_owned(),
            attempts: u.attempts,
            started_at: u.started_at,
            finished_at: u.finished_at,
            mark: unit.mark.map(|m| match m {
                Mark::Disaster => "disaster",
                Mark::Recovered => "recovered",
            }),
            error,
            outputs,
        });
    }
    let rto_ms = match (&disaster, &recovered) {
        (Some(d), Some(r)) => Some((r.at - d.at).num_milliseconds().max(0)),
        _ => None,
    };
    let rpo_ms = rpo.as_ref().and_then(|r| (r.0 >= 0).then_some(r.0));
    let rows_lost = rpo.as_ref().map(|r| r.1);
    let mut objectives = Vec::new();
    if let Some(target) = plan.rto {
        let target_ms = target.as_millis() as i64;
        objectives.push(match rto_ms {
            Some(ms) => ObjectiveResult {
                name: "RTO".into(),
                target: crate::plan::duration::format(target),
                measured: format_ms(ms),
                met: ms <= target_ms,
                note: None,
            },
            None => ObjectiveResult {
                name: "RTO".into(),
                target: crate::plan::duration::format(target),
                measured: "not measured".into(),
                met: false,
                note: Some(match (&disaster, &recovered) {
                    (None, _) => "no step marked `disaster` succeeded".into(),
                    _ => "the step marked `recovered` never passed".into(),
                }),
            },
        });
    }
    if let Some(target) = plan.rpo {
        let target_ms = target.as_millis() as i64;
        objectives.push(match (rpo_ms, &rpo) {
            (Some(ms), _) => ObjectiveResult {
                name: "RPO".into(),
                target: crate::plan::duration::format(target),
                measured: format_ms(ms),
                met: ms <= target_ms,
                note: None,
            },
            (None, Some(_)) => ObjectiveResult {
                name: "RPO".into(),
                target: crate::plan::duration::format(target),
                measured: "unbounded".into(),
                met: false,
                note: Some("no acknowledged canary row written before the disaster survived".into()),
            },
            (None, None) => ObjectiveResult {
                name: "RPO".into(),
                target: crate::plan::duration::format(target),
                measured: "not measured".into(),
                met: false,
                note: Some("no validation.rpo step succeeded".into()),
            },
        });
    }
    if let Some(max) = plan.max_rows_lost {
        objectives.push(match rows_lost {
            Some(n) => ObjectiveResult {
                name: "rows lost".into(),
                target: format!("≤ {max}"),
                measured: n.to_string(),
                met: n <= max,
                note: None,
            },
            None => ObjectiveResult {
                name: "rows lost".into(),
                target: format!("≤ {max}"),
                measured: "not measured".into(),
                met: false,
                note: Some("no validation.rpo step succeeded".into()),
            },
        });
    }
    let left_active: Vec<&str> = faults.iter().filter(|f| f.left_active).map(|f| f.step.as_str()).collect();
    objectives.push(ObjectiveResult {
        name: "run completed".into(),
        target: "succeeded, no fault left active".into(),
        measured: if left_active.is_empty() {
            status.as_str().to_owned()
        } else {
            format!("{}; faults left active: {}", status.as_str(), left_active.join(", "))
        },
        met: status == RunStatus::Succeeded && left_active.is_empty(),
        note: state.finished.as_ref().and_then(|(_, r)| r.clone()),
    });
    let guard_breaches = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::GuardBreached { guard, error, failures } => Some(GuardBreach {
                guard: guard.clone(),
                at: r.at,
                error: error.clone(),
                failures: *failures,
            }),
            _ => None,
        })
        .collect();
    Measurement {
        run_id: state.run_id.clone(),
        plan: plan.name.clone(),
        description: plan.description.clone(),
        status: status.as_str().to_owned(),
        reason: state.finished.as_ref().and_then(|(_, r)| r.clone()),
        started_at: state.started_at,
        finished_at,
        passed: objectives.iter().all(|o| o.met),
        disaster,
        recovered,
        rto_ms,
        rpo_ms,
        rows_lost,
        lost_seqs: rpo.map(|r| r.2).unwrap_or_default(),
        objectives,
        steps,
        faults,
        guard_breaches,
    }
}

/// A measured duration in milliseconds, as people read it: `850ms`, `4.213s`, `2m 5.0s`.
pub fn format_ms(ms: i64) -> String {
    match ms {
        ..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.3}s", ms as f64 / 1000.0),
        _ => format!("{}m {:.1}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0),
    }
}

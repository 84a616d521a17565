//! The emergency stop: one switch, kept in the journal, that stops every drill at once.
//!
//! While it is engaged every running drill is aborted (its faults are reverted by the
//! abort, as by a breached guard), drills not started yet are cancelled, every schedule
//! is treated as paused, and no drill is started; each replica enforces it on its own
//! journal scan, so a drill that raced the engaging is caught within a scan. Runs that are
//! not drills — an incident failover — go on. Releasing it resumes the schedules with the
//! pause state each had before.
//!
//! A drill is a run of a plan that declares objectives or injects a fault.

use crate::engine::runner;
use crate::journal::requests::{RequestFilter, RequestState};
use crate::journal::switches::{EMERGENCY_STOP, SwitchState};
use crate::journal::{Journal, JournalError};
use crate::plan::compiled::CompiledPlan;
use crate::{plan, steps};
use std::collections::HashMap;

/// Whether runs of this plan are drills: the emergency stop aborts those.
pub fn is_drill(plan: &CompiledPlan) -> bool {
    plan.rto.is_some() || plan.rpo.is_some() || plan.max_rows_lost.is_some() || plan.units.iter().any(|u| injects_fault(&u.kind))
}

fn injects_fault(kind: &str) -> bool {
    (kind.starts_with("chaos.") && kind != "chaos.revert")
        || kind.starts_with("chaos_mesh.")
        || kind.starts_with("litmus.")
        || kind.starts_with("chaostoolkit.")
}

/// What one enforcement did.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Swept {
    /// Running drills an abort was posted to.
    pub aborted: Vec<String>,
    /// Drills requested but not started, now cancelled.
    pub cancelled: Vec<String>,
}

/// The stop's state, if engaged.
pub async fn engaged(journal: &Journal) -> Result<Option<SwitchState>, JournalError> {
    journal.engaged(EMERGENCY_STOP).await
}

/// Whether each run or request seen so far is a drill: a plan does not change under a run,
/// so a replica enforcing the stop every second replays and compiles each only once.
pub type DrillVerdicts = HashMap<String, bool>;

/// Aborts every running drill that has no abort posted yet and cancels every drill not
/// started, in the name of whoever engaged the stop. Idempotent: replicas call it on every
/// scan while the stop is engaged. Before each abort or cancel the stop is read again, so a
/// sweep that began before a release does not act after it.
pub async fn enforce(journal: &Journal, stop: &SwitchState, verdicts: &mut DrillVerdicts) -> Result<Swept, JournalError> {
    let comment = format!(
        "emergency stop engaged by {}{}",
        stop.changed_by,
        stop.note.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
    );
    let mut swept = Swept::default();
    for run in journal.running_runs().await? {
        if !run_is_drill(journal, &run.id, verdicts).await? || journal.abort_requested(&run.id).await? {
            continue;
        }
        if !still_engaged(journal, stop).await? {
            return Ok(swept);
        }
        journal
            .post_command(&run.id, "abort", None, &stop.changed_by, Some(&comment))
            .await?;
        tracing::warn!(run = %run.id, by = %stop.changed_by, "emergency stop: drill aborted");
        swept.aborted.push(run.id);
    }
    for state in [RequestState::Queued, RequestState::AwaitingApproval, RequestState::Waiting] {
        let pending = journal
            .requests(&RequestFilter {
                state: Some(state),
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        for request in pending {
            let drill = *verdicts
                .entry(request.id.clone())
                .or_insert_with(|| plan::compile(&request.plan_file, &request.plan_source, steps::catalog()).is_ok_and(|p| is_drill(&p)));
            if !drill {
                continue;
            }
            if !still_engaged(journal, stop).await? {
                return Ok(swept);
            }
            if journal.cancel_request(&request.id, &stop.changed_by, Some(&comment)).await? {
                tracing::warn!(run = %request.id, by = %stop.changed_by, "emergency stop: requested drill cancelled");
                swept.cancelled.push(request.id);
            }
        }
    }
    Ok(swept)
}

async fn run_is_drill(journal: &Journal, run_id: &str, verdicts: &mut DrillVerdicts) -> Result<bool, JournalError> {
    if let Some(&known) = verdicts.get(run_id) {
        return Ok(known);
    }
    let drill = match runner::load(journal, run_id).await {
        Ok((state, _, _)) => is_drill(&state.plan),
        Err(runner::EngineError::Journal(e)) => return Err(e),
        // A run whose plan no longer loads cannot be driven either; leave it to `runs show`.
        Err(_) => false,
    };
    verdicts.insert(run_id.to_owned(), drill);
    Ok(drill)
}

/// The same engaging is still in force (not released, nor released and engaged again).
async fn still_engaged(journal: &Journal, stop: &SwitchState) -> Result<bool, JournalError> {
    Ok(journal
        .engaged(EMERGENCY_STOP)
        .await?
        .is_some_and(|now| now.changed_at == stop.changed_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(objectives: &str, kind: &str) -> CompiledPlan {
        let source = format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: p\nspec:\n{objectives}  steps:\n    - id: a\n      kind: {kind}\n      with: {{ duration: 1s }}\n"
        );
        plan::compile("p.yaml", &source, steps::catalog()).unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn a_drill_declares_objectives_or_injects_a_fault() {
        assert!(!is_drill(&compiled("", "sleep")), "a plain recovery is not a drill");
        assert!(is_drill(&compiled("  objectives: { rto: 5m }\n", "sleep")));
        assert!(is_drill(&compiled("  objectives: { rows_lost: 0 }\n", "sleep")));
        assert!(is_drill(&compiled("", "chaos.stress")));
        for kind in [
            "chaos.process_kill",
            "chaos_mesh.experiment",
            "litmus.experiment",
            "chaostoolkit.experiment",
        ] {
            assert!(injects_fault(kind), "{kind}");
        }
        assert!(!injects_fault("chaos.revert"), "reverting is not injecting");
    }
}

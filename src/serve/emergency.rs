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

/// Aborts every running drill that has no abort posted yet and cancels every drill not
/// started, in the name of whoever engaged the stop. Idempotent: replicas call it on every
/// scan while the stop is engaged.
pub async fn enforce(journal: &Journal, stop: &SwitchState) -> Result<Swept, JournalError> {
    let comment = format!(
        "emergency stop engaged by {}{}",
        stop.changed_by,
        stop.note.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
    );
    let mut swept = Swept::default();
    for run in journal.running_runs().await? {
        if journal.abort_requested(&run.id).await? {
            continue;
        }
        let drill = match runner::load(journal, &run.id).await {
            Ok((state, _, _)) => is_drill(&state.plan),
            Err(runner::EngineError::Journal(e)) => return Err(e),
            // A run whose plan no longer loads cannot be driven either; leave it to `runs show`.
            Err(_) => false,
        };
        if drill {
            journal
                .post_command(&run.id, "abort", None, &stop.changed_by, Some(&comment))
                .await?;
            tracing::warn!(run = %run.id, by = %stop.changed_by, "emergency stop: drill aborted");
            swept.aborted.push(run.id);
        }
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
            let drill = plan::compile(&request.plan_file, &request.plan_source, steps::catalog()).is_ok_and(|p| is_drill(&p));
            if drill && journal.cancel_request(&request.id, &stop.changed_by, Some(&comment)).await? {
                tracing::warn!(run = %request.id, by = %stop.changed_by, "emergency stop: requested drill cancelled");
                swept.cancelled.push(request.id);
            }
        }
    }
    Ok(swept)
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

//! `Run` resources become journal requests, and what the journal knows of each run is
//! written back to its status.
//!
//! # Guarantees
//! - A `Run` is requested once: the request id is derived from the object's name and uid
//!   and is a key in the journal, so every replica may reconcile it and only one request
//!   exists; the workers' owner compare-and-swap decides who drives it.
//! - A `Run` deleted while its run is active keeps the finalizer `lifeboat.dev/abort-run`
//!   until the run is cancelled (not started) or aborted and finished (its `finally` steps
//!   ran and its faults were reverted).
//! - `spec` is read once, when the request is made; later edits are reported in the
//!   `Accepted` condition and otherwise ignored (a run's plan and params never change).

use super::Context;
use super::crd::{Phase, Run, RunStatus, StepState};
use super::status;
use crate::engine::runner;
use crate::journal::requests::{Origin, RequestRow, RequestState};
use crate::journal::{JournalError, RunStatus as JournalStatus};
use crate::serve::catalog;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const FINALIZER: &str = "lifeboat.dev/abort-run";

/// How often an active run's status is refreshed from the journal.
const ACTIVE_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Engine(String),
    /// Not a failure: a deleted run is still finishing its abort.
    #[error("run {0} is being aborted; the Run goes once it has finished")]
    Aborting(String),
}

/// Reconciles the namespace's runs until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let api: Api<Run> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// The journal id of a `Run`'s request (and run): its name and the start of its uid, so a
/// `Run` deleted and created again under the same name is a new run.
pub fn request_id(run: &Run) -> String {
    let uid = run.uid().unwrap_or_default();
    format!("{}-{}", run.name_any(), uid.get(..8).unwrap_or(&uid))
}

async fn reconcile(run: Arc<Run>, ctx: Arc<Context>) -> Result<Action, finalizer::Error<RunError>> {
    let api: Api<Run> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let finished = run.status.as_ref().and_then(|s| s.phase).is_some_and(Phase::is_final);
    if finished && run.meta().deletion_timestamp.is_none() {
        // Nothing is left to abort: the finalizer goes, so deleting a finished Run needs no
        // operator (and an uninstalled one cannot hold a namespace's deletion up).
        release_finalizer(&api, &run)
            .await
            .map_err(|e| finalizer::Error::ApplyFailed(e.into()))?;
        return apply(&run, &ctx, &api).await.map_err(finalizer::Error::ApplyFailed);
    }
    finalizer(&api, FINALIZER, run, |event| async {
        match event {
            finalizer::Event::Apply(run) => apply(&run, &ctx, &api).await,
            finalizer::Event::Cleanup(run) => cleanup(&run, &ctx).await,
        }
    })
    .await
}

async fn release_finalizer(api: &Api<Run>, run: &Run) -> Result<(), kube::Error> {
    let Some(at) = run.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        { "op": "test", "path": format!("/metadata/finalizers/{at}"), "value": FINALIZER },
        { "op": "remove", "path": format!("/metadata/finalizers/{at}") },
    ]))
    .expect("a JSON patch");
    api.patch(
        &run.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::<()>::Json(patch),
    )
    .await?;
    Ok(())
}

fn error_policy(run: Arc<Run>, error: &finalizer::Error<RunError>, _: Arc<Context>) -> Action {
    match error {
        finalizer::Error::CleanupFailed(RunError::Aborting(_)) => Action::requeue(ACTIVE_REFRESH),
        e => {
            tracing::warn!(run = %run.name_any(), error = %e, "cannot reconcile the Run; retrying");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

async fn apply(run: &Run, ctx: &Context, api: &Api<Run>) -> Result<Action, RunError> {
    let id = request_id(run);
    let name = run.name_any();
    let generation = run.meta().generation;
    let existing = run.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
    let mut request = ctx.journal.request(&id).await?;
    if request.is_none() && run.status.as_ref().is_some_and(|s| s.run_id.is_some()) {
        // Accepted once, yet unknown to the journal: it was replaced or lost. Running the
        // plan again (perhaps long after) is never what the Run asked for.
        let message = format!(
            "the journal has no request {id}, though this Run was accepted: the journal was replaced or lost, so it is not run again (create a new Run to run the plan)"
        );
        let observed = RunStatus {
            conditions: vec![status::condition(
                existing,
                "Accepted",
                false,
                "JournalMissing",
                message.clone(),
                generation,
            )],
            message: Some(message),
            ..run.status.clone().unwrap_or_default()
        };
        status::write(api, run, run.status.as_ref(), &observed).await?;
        return Ok(Action::await_change());
    }
    if request.is_none() {
        let catalog = ctx.sources.catalog.current();
        let refused = match catalog.get(&run.spec.plan) {
            Err(e) => Some((
                Phase::Pending,
                "PlanNotReady",
                format!("{e}; waiting for the RecoveryPlan to exist here and compile"),
            )),
            Ok(_) => match catalog.new_run(&run.spec.plan, &run.spec.params) {
                Err(e) => Some((Phase::Failed, "InvalidParams", format!("spec.params: {e}"))),
                Ok(new) => {
                    let by = format!("kubernetes:{}/{name}", ctx.namespace);
                    let new_request = catalog::request(new, id.clone(), Origin::Api, RequestState::Queued, by);
                    if ctx.journal.insert_request(&new_request).await? {
                        tracing::info!(run = %id, resource = %name, plan = %run.spec.plan, "requested the run of a Run resource");
                    }
                    request = ctx.journal.request(&id).await?;
                    None
                }
            },
        };
        if let Some((phase, reason, message)) = refused {
            let observed = RunStatus {
                observed_generation: generation,
                conditions: vec![status::condition(existing, "Accepted", false, reason, message.clone(), generation)],
                phase: Some(phase),
                message: Some(message),
                ..Default::default()
            };
            status::write(api, run, run.status.as_ref(), &observed).await?;
            return Ok(if phase.is_final() {
                Action::await_change()
            } else {
                Action::requeue(Duration::from_secs(2))
            });
        }
    }
    let Some(request) = request else {
        return Err(RunError::Engine(format!("request {id} vanished from the journal")));
    };
    let mut observed = observe(ctx, &request).await?;
    observed.observed_generation = generation;
    let spec_edited = !requested_as_specified(run, &request);
    observed.conditions = vec![status::condition(
        existing,
        "Accepted",
        !spec_edited,
        if spec_edited { "SpecChanged" } else { "Requested" },
        if spec_edited {
            "spec changed after the run was requested; the run keeps the plan and params it started with (create a new Run instead)".into()
        } else {
            format!("journal request {id}")
        },
        generation,
    )];
    let finished = observed.phase.is_some_and(Phase::is_final);
    if finished {
        let reason = format!("{:?}", observed.phase.unwrap_or(Phase::Failed));
        let message = observed.message.clone().unwrap_or_default();
        observed
            .conditions
            .push(status::condition(existing, "Finished", true, &reason, message, generation));
    }
    status::write(api, run, run.status.as_ref(), &observed).await?;
    Ok(if finished {
        Action::await_change()
    } else {
        Action::requeue(ACTIVE_REFRESH)
    })
}

/// Whether the request still says what the `Run`'s spec says (its plan, and each param given
/// as the request resolved it).
fn requested_as_specified(run: &Run, request: &RequestRow) -> bool {
    run.spec.plan == request.plan_name
        && run.spec.params.iter().all(|(name, value)| {
            request.params.get(name).map(crate::plan::template::value_as_text) == Some(crate::plan::template::value_as_text(value))
        })
}

/// The status the journal gives a request and its run (conditions left to the caller).
async fn observe(ctx: &Context, request: &RequestRow) -> Result<RunStatus, RunError> {
    let pending = |phase: Phase, message: Option<String>| RunStatus {
        phase: Some(phase),
        run_id: Some(request.id.clone()),
        message,
        ..Default::default()
    };
    match request.state {
        RequestState::AwaitingApproval | RequestState::Waiting | RequestState::Queued => return Ok(pending(Phase::Pending, None)),
        RequestState::Rejected | RequestState::Cancelled => return Ok(pending(Phase::Aborted, request.detail.clone())),
        RequestState::Failed => return Ok(pending(Phase::Failed, request.detail.clone())),
        RequestState::Started => {}
    }
    // Replaying a run costs its whole event log; its view changes only with a new event.
    let newest = ctx.journal.last_event(&request.id).await?.map(|(seq, _)| seq);
    if let Some(seq) = newest
        && let Some((seen, view)) = ctx.run_views.lock().unwrap_or_else(|p| p.into_inner()).get(&request.id)
        && *seen == seq
    {
        return Ok(view.clone());
    }
    let (state, _, row) = match runner::load(&ctx.journal, &request.id).await {
        Ok(loaded) => loaded,
        Err(runner::EngineError::Journal(JournalError::NoSuchRun(_))) => return Ok(pending(Phase::Pending, None)),
        Err(e) => return Err(RunError::Engine(e.to_string())),
    };
    let measured = crate::drill::measure::measure_loaded(&ctx.journal, &state, &row).await?;
    let phase = match row.status {
        JournalStatus::Running => Phase::Running,
        JournalStatus::Succeeded => Phase::Succeeded,
        JournalStatus::Failed => Phase::Failed,
        JournalStatus::Aborted => Phase::Aborted,
        JournalStatus::RolledBack => Phase::RolledBack,
    };
    let seconds = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1000.0);
    let drill = crate::serve::emergency::is_drill(&state.plan);
    let view = RunStatus {
        phase: Some(phase),
        run_id: Some(row.id.clone()),
        started_at: Some(status::rfc3339(measured.started_at)),
        finished_at: measured.finished_at.map(status::rfc3339),
        steps: measured
            .steps
            .iter()
            .map(|s| StepState {
                id: s.id.clone(),
                status: s.status.clone(),
                attempts: s.attempts,
            })
            .collect(),
        rto: measured.rto_ms.map(|ms| format!("{:.2}s", ms as f64 / 1000.0)),
        rto_seconds: seconds(measured.rto_ms),
        rpo_seconds: seconds(measured.rpo_ms),
        verdict: (drill && phase.is_final()).then(|| if measured.passed { "Pass" } else { "Fail" }.to_owned()),
        report: Some(format!("/api/v1/runs/{}/report", row.id)),
        message: measured.reason.clone(),
        ..Default::default()
    };
    if let Some(seq) = newest {
        ctx.run_views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.id.clone(), (seq, view.clone()));
    }
    Ok(view)
}

/// The cancelled request that stands for a `Run` deleted before it was requested.
fn tombstone(run: &Run, id: &str, why: &str) -> crate::journal::requests::NewRequest {
    crate::journal::requests::NewRequest {
        id: id.to_owned(),
        origin: Origin::Api,
        plan_file: String::new(),
        plan_name: run.spec.plan.clone(),
        plan_source: String::new(),
        params: Default::default(),
        state: RequestState::Cancelled,
        requested_by: format!("kubernetes ({why})"),
        schedule: None,
        scheduled_at: None,
        trigger_id: None,
        not_before: chrono::Utc::now(),
    }
}

/// A deleted `Run`: cancels its request, or aborts its run and waits for it to finish.
async fn cleanup(run: &Run, ctx: &Context) -> Result<Action, RunError> {
    let id = request_id(run);
    ctx.run_views.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    let why = "its Run resource was deleted";
    if ctx.journal.cancel_request(&id, "kubernetes", Some(why)).await? {
        tracing::info!(run = %id, "cancelled the request of a deleted Run");
        return Ok(Action::await_change());
    }
    let row = match ctx.journal.run(&id).await {
        Ok(row) => row,
        Err(JournalError::NoSuchRun(_)) => {
            // Never requested: a tombstone takes the id, so a replica that read the Run
            // before its deletion cannot request it after the object is gone.
            return if ctx.journal.insert_request(&tombstone(run, &id, why)).await? {
                Ok(Action::await_change())
            } else {
                Err(RunError::Aborting(id))
            };
        }
        Err(e) => return Err(e.into()),
    };
    if row.status != JournalStatus::Running {
        return Ok(Action::await_change());
    }
    if !ctx.journal.abort_requested(&id).await? {
        ctx.journal.post_command(&id, "abort", None, "kubernetes", Some(why)).await?;
        tracing::warn!(run = %id, "aborting the run of a deleted Run");
    }
    Err(RunError::Aborting(id))
}

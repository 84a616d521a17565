//! `DrillSchedule` resources become the service's schedules. The scheduler (one leader,
//! by the journal's lease) fires them exactly as it fires a configured schedule; this
//! module keeps the set current, maps `spec.suspend` to a pause recorded in the journal, and
//! writes each resource's `Ready` condition, next occurrence and last run.

use super::Context;
use super::crd::{DrillSchedule, DrillScheduleStatus};
use super::follow::{self, Follower};
use super::status;
use crate::journal::requests::RequestFilter;
use crate::serve::config::{Schedule, ScheduleSpec, valid_name};
use kube::api::{Api, DynamicObject};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often statuses are refreshed without a change to the resources (next and last run
/// move with time, not with the objects).
const REFRESH: Duration = Duration::from_secs(5);

/// Follows the namespace's drill schedules until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let mut schedules = Follower::new::<DrillSchedule>(&ctx, Some(REFRESH));
    loop {
        let set = tokio::select! {
            _ = stop.cancelled() => break,
            set = schedules.next() => set,
        };
        let Some(set) = set else { break };
        sync(&ctx, &schedules.api, &set).await;
    }
}

async fn sync(ctx: &Context, api: &Api<DynamicObject>, resources: &[Arc<DynamicObject>]) {
    let catalog = ctx.sources.catalog.current();
    let now = match ctx.journal.db_now().await {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the journal's clock; schedules unchanged this round");
            return;
        }
    };
    let mut schedules = Vec::new();
    for resource in resources {
        let name = resource.name_any();
        let built = follow::typed::<DrillSchedule>(resource)
            .map_err(|e| ("Invalid", format!("the resource does not read as a schedule: {e}")))
            .and_then(|typed| schedule(&typed).map(|s| (s, typed.spec.suspend)))
            .and_then(|(s, suspend)| match catalog.new_run(&s.spec.plan, &s.spec.params) {
                Ok(_) => Ok((s, suspend)),
                Err(e) if catalog.get(&s.spec.plan).is_err() => {
                    Err(("PlanNotReady", format!("{e}; the RecoveryPlan must exist here and compile")))
                }
                Err(e) => Err(("InvalidParams", format!("spec.params: {e}"))),
            });
        let generation = resource.meta().generation;
        let current: Option<DrillScheduleStatus> = follow::status_of(resource);
        let existing = current.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
        let observed = match &built {
            Ok((s, suspend)) => DrillScheduleStatus {
                observed_generation: generation,
                conditions: vec![if *suspend {
                    status::condition(existing, "Ready", false, "Suspended", "spec.suspend is true".into(), generation)
                } else {
                    status::condition(existing, "Ready", true, "Scheduled", String::new(), generation)
                }],
                next_schedule_time: (!suspend).then(|| s.timing.next_after(now)).flatten().map(status::rfc3339),
                last_run: last_run(ctx, &name).await,
            },
            Err((reason, message)) => DrillScheduleStatus {
                observed_generation: generation,
                conditions: vec![status::condition(existing, "Ready", false, reason, message.clone(), generation)],
                next_schedule_time: None,
                last_run: last_run(ctx, &name).await,
            },
        };
        if let Ok((s, suspend)) = built {
            follow_suspend(ctx, &name, suspend).await;
            schedules.push(s);
        }
        if let Err(e) = status::write(api, resource.as_ref(), current.as_ref(), &observed).await {
            tracing::warn!(schedule = %name, error = %e, "cannot write the DrillSchedule's status");
        }
    }
    ctx.sources.schedules.update(|_| schedules);
}

/// Who pauses a schedule for its `spec.suspend`.
const SUSPENDED_BY: &str = "kubernetes";

/// Keeps the journal's pause in step with `spec.suspend`: suspending pauses, and un-suspending
/// resumes only a pause that `spec.suspend` made (one made from the API or dashboard stays).
async fn follow_suspend(ctx: &Context, name: &str, suspend: bool) {
    // The scheduler registers a new schedule on its next tick; until then there is no row.
    let row = match ctx.journal.schedule(name).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(schedule = %name, error = %e, "cannot read the schedule's pause");
            return;
        }
    };
    let ours = row.paused_by.as_deref() == Some(SUSPENDED_BY);
    if row.paused == suspend || (!suspend && !ours) {
        return;
    }
    match ctx
        .journal
        .set_paused(name, suspend, SUSPENDED_BY, Some("spec.suspend of the DrillSchedule"))
        .await
    {
        Ok(_) => tracing::info!(schedule = %name, suspend, "schedule suspended or resumed from its DrillSchedule"),
        Err(e) => tracing::warn!(schedule = %name, error = %e, "cannot record the DrillSchedule's suspend"),
    }
}

async fn last_run(ctx: &Context, schedule: &str) -> Option<String> {
    let filter = RequestFilter {
        schedule: Some(schedule.to_owned()),
        limit: 1,
        ..Default::default()
    };
    match ctx.journal.requests(&filter).await {
        Ok(rows) => rows.into_iter().next().map(|r| r.id),
        Err(e) => {
            tracing::warn!(schedule = %schedule, error = %e, "cannot read the schedule's runs");
            None
        }
    }
}

/// The schedule a resource stands for, or why it cannot be one.
fn schedule(resource: &DrillSchedule) -> Result<Schedule, (&'static str, String)> {
    let name = resource.name_any();
    if !valid_name(&name) {
        return Err((
            "Invalid",
            format!("metadata.name `{name}` may hold only letters, digits and `-` (it becomes part of run ids)"),
        ));
    }
    let spec = &resource.spec;
    let spec = ScheduleSpec {
        name: name.clone(),
        plan: spec.plan.clone(),
        cron: spec.cron.clone(),
        timezone: spec.timezone.clone(),
        params: spec.params.clone(),
        overlap: spec.overlap,
        catch_up: spec.catch_up.clone(),
        jitter: spec.jitter.clone(),
        blackouts: spec.blackouts.clone(),
    };
    Schedule::build(spec, format!("drillschedule/{name}")).map_err(|problems| {
        let problems: Vec<String> = problems
            .iter()
            .map(|(field, e)| format!("spec.{}: {e}", if *field == "catch_up" { "catchUp" } else { field }))
            .collect();
        ("Invalid", problems.join("; "))
    })
}

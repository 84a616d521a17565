//! `DrillSchedule` resources become the service's schedules. The scheduler (one leader,
//! by the journal's lease) fires them exactly as it fires a configured schedule; this
//! module keeps the set current, maps `spec.suspend` to a pause recorded in the journal, and
//! writes each resource's `Ready` condition, next occurrence and last run.

use super::Context;
use super::crd::{DrillSchedule, DrillScheduleStatus};
use super::status;
use crate::journal::requests::RequestFilter;
use crate::serve::config::{Schedule, ScheduleSpec, valid_name};
use crate::serve::schedule::{CronSpec, Timing, parse_duration, parse_tz};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often statuses are refreshed without a change to the resources (next and last run
/// move with time, not with the objects).
const REFRESH: Duration = Duration::from_secs(5);

/// Follows the namespace's drill schedules until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let api: Api<DrillSchedule> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()).default_backoff());
    let mut events = std::pin::pin!(events);
    let mut suspended: HashMap<String, bool> = HashMap::new();
    let mut ready = false;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = events.next() => event,
            _ = tokio::time::sleep(REFRESH), if ready => Some(Ok(watcher::Event::InitDone)),
        };
        match event {
            Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
            Some(Ok(_)) => {
                ready = true;
                sync(&ctx, &api, &reader, &mut suspended).await;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "watching DrillSchedules failed; retrying"),
            None => break,
        }
    }
}

async fn sync(ctx: &Context, api: &Api<DrillSchedule>, reader: &Store<DrillSchedule>, suspended: &mut HashMap<String, bool>) {
    let catalog = ctx.sources.catalog.current();
    let mut schedules = Vec::new();
    for resource in reader.state() {
        let name = resource.name_any();
        let built = schedule(&resource).and_then(|s| match catalog.get(&s.spec.plan) {
            Ok(_) => Ok(s),
            Err(e) => Err(("PlanNotReady", format!("{e}; the RecoveryPlan must exist here and compile"))),
        });
        let generation = resource.meta().generation;
        let existing = resource.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
        let observed = match &built {
            Ok(s) => DrillScheduleStatus {
                observed_generation: generation,
                conditions: vec![status::condition(existing, "Ready", true, "Scheduled", String::new(), generation)],
                next_schedule_time: s.timing.next_after(chrono::Utc::now()).map(status::rfc3339),
                last_run: last_run(ctx, &name).await,
            },
            Err((reason, message)) => DrillScheduleStatus {
                observed_generation: generation,
                conditions: vec![status::condition(existing, "Ready", false, reason, message.clone(), generation)],
                next_schedule_time: None,
                last_run: last_run(ctx, &name).await,
            },
        };
        if let Ok(s) = built {
            schedules.push(s);
            follow_suspend(ctx, &name, resource.spec.suspend, suspended).await;
        }
        if let Err(e) = status::write(api, &name, resource.status.as_ref(), &observed).await {
            tracing::warn!(schedule = %name, error = %e, "cannot write the DrillSchedule's status");
        }
    }
    ctx.sources.schedules.update(|_| schedules);
}

/// Pauses or resumes the schedule when `spec.suspend` changes (or is first seen true), so a
/// pause made from the API or dashboard is not undone by a resource that did not change.
async fn follow_suspend(ctx: &Context, name: &str, suspend: bool, seen: &mut HashMap<String, bool>) {
    let changed = match seen.get(name) {
        Some(&before) => before != suspend,
        None => suspend,
    };
    if !changed {
        seen.insert(name.to_owned(), suspend);
        return;
    }
    // The scheduler registers a new schedule on its next tick; until then there is no row.
    match ctx
        .journal
        .set_paused(name, suspend, "kubernetes", Some("spec.suspend of the DrillSchedule"))
        .await
    {
        Ok(true) => {
            tracing::info!(schedule = %name, suspend, "schedule suspended or resumed from its DrillSchedule");
            seen.insert(name.to_owned(), suspend);
        }
        Ok(false) => {}
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
    let spec = &resource.spec;
    let invalid = |field: &str, e: &dyn std::fmt::Display| ("Invalid", format!("spec.{field}: {e}"));
    if !valid_name(&name) {
        return Err((
            "Invalid",
            format!("metadata.name `{name}` may hold only letters, digits and `-` (it becomes part of run ids)"),
        ));
    }
    let cron = CronSpec::parse(&spec.cron).map_err(|e| invalid("cron", &e))?;
    let tz = parse_tz(&spec.timezone).map_err(|e| invalid("timezone", &e))?;
    let duration = |field: &str, text: &Option<String>| match text {
        Some(text) => parse_duration(text).map_err(|e| invalid(field, &e)),
        None => Ok(Duration::ZERO),
    };
    let jitter = duration("jitter", &spec.jitter)?;
    let catch_up = duration("catchUp", &spec.catch_up)?;
    let timing = Timing::new(cron, tz, spec.blackouts.clone(), jitter).map_err(|e| invalid("blackouts", &e))?;
    Ok(Schedule {
        location: format!("drillschedule/{name}"),
        spec: ScheduleSpec {
            name,
            plan: spec.plan.clone(),
            cron: spec.cron.clone(),
            timezone: spec.timezone.clone(),
            params: spec.params.clone(),
            overlap: spec.overlap,
            catch_up: spec.catch_up.clone(),
            jitter: spec.jitter.clone(),
            blackouts: spec.blackouts.clone(),
        },
        timing,
        catch_up,
    })
}

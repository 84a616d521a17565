//! The scheduler: the replica holding the `scheduler` lease decides, every tick, the
//! occurrences of each schedule that came due, and stores the decisions with the requests
//! they fire (see [`crate::journal::schedules`] for why each fires once).
//!
//! # Expected flow
//! Each tick the replica takes or renews the lease (by the database's clock), then for each
//! schedule reads its position, decides the occurrences in `(position, now]` and stores
//! them in one transaction that checks the lease term and the position it read.
//!
//! # Lateness
//! An occurrence at most [`LATE_TOLERANCE`] late (a leader died and another took over) fires
//! as usual. Older ones were missed while no scheduler ran: the schedule's `catch_up` window
//! decides whether the latest of them still fires; the others are recorded as missed, with
//! the reason.

use super::config::{Overlap, Schedule};
use super::metrics::Metrics;
use super::schedule::catch_up;
use crate::journal::requests::{NewRequest, Origin, RequestState};
use crate::journal::schedules::{Decided, Occurrence, OccurrenceOutcome, ScheduleRow, Term};
use crate::journal::switches::SwitchState;
use crate::journal::{Journal, JournalError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const LEASE: &str = "scheduler";
pub const LEASE_TTL: Duration = Duration::from_secs(5);
pub const TICK: Duration = Duration::from_millis(250);
/// How late an occurrence may be and still count as on time (see the module doc).
pub const LATE_TOLERANCE: Duration = Duration::from_secs(60);
/// Occurrences decided per schedule per tick; more are decided on the next ticks.
const PAGE: usize = 200;

/// A schedule as the emergency stop holds it: paused, by whoever engaged the stop.
fn held_by_emergency_stop(row: ScheduleRow, stop: &SwitchState) -> ScheduleRow {
    ScheduleRow {
        paused: true,
        paused_by: Some(format!("the emergency stop (engaged by {})", stop.changed_by)),
        pause_note: stop.note.clone(),
        ..row
    }
}

/// The run id of a schedule's occurrence: the same on every replica and every restart.
pub fn run_id(schedule: &str, scheduled: DateTime<Utc>) -> String {
    format!("{schedule}-{}", scheduled.format("%Y%m%dT%H%M%S%.3fZ")).replace(".000Z", "Z")
}

pub struct Scheduler {
    pub journal: Journal,
    pub sources: super::Sources,
    pub replica: String,
    pub metrics: Arc<Metrics>,
}

impl Scheduler {
    /// Registers the current schedules in the journal (keeping their pause and position).
    pub async fn register(&self) -> Result<(), JournalError> {
        self.register_changed(&mut HashMap::new()).await
    }

    /// Registers the schedules whose definition is not in `registered` (new or changed since
    /// the last call), and remembers them there.
    async fn register_changed(&self, registered: &mut HashMap<String, String>) -> Result<(), JournalError> {
        let schedules = self.sources.schedules.current();
        let mut now = None;
        for s in schedules.iter() {
            let definition = serde_json::to_string(&s.spec).expect("schedules serialize");
            if registered.get(&s.spec.name) == Some(&definition) {
                continue;
            }
            let now = match now {
                Some(now) => now,
                None => *now.insert(self.journal.db_now().await?),
            };
            self.journal.upsert_schedule(&s.spec.name, &definition, now).await?;
            self.metrics.schedule_known(&s.spec.name);
            registered.insert(s.spec.name.clone(), definition);
        }
        Ok(())
    }

    /// Leads when it can, until `stop`; gives the lease up on the way out.
    pub async fn run(self, stop: CancellationToken) {
        let mut term: Option<Term> = None;
        let mut registered = HashMap::new();
        loop {
            if let Err(e) = self.register_changed(&mut registered).await {
                tracing::warn!(error = %e, "cannot register the schedules in the journal; trying again next tick");
            }
            match self.journal.acquire_lease(LEASE, &self.replica, LEASE_TTL).await {
                Ok(now_term) => {
                    if now_term != term {
                        match &now_term {
                            Some(t) => tracing::info!(replica = %self.replica, term = t.term, "leading the scheduler"),
                            None if term.is_some() => tracing::warn!(replica = %self.replica, "lost the scheduler lease"),
                            None => {}
                        }
                    }
                    term = now_term;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach the journal to renew the scheduler lease"),
            }
            self.metrics.set_leader(term.is_some());
            if let Some(t) = &term {
                // Unknown whether stopped: decide nothing this tick rather than fire a drill.
                let stop = super::emergency::engaged(&self.journal)
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot read the emergency stop; deciding nothing this tick"));
                let schedules = self.sources.schedules.current();
                for schedule in stop.as_ref().map_or(&[][..], |_| &schedules[..]) {
                    let stop = stop.as_ref().ok().and_then(Option::as_ref);
                    if let Err(e) = self.tick(t, schedule, stop).await {
                        tracing::warn!(schedule = %schedule.spec.name, error = %e, "scheduler tick failed; trying again next tick");
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
        if let Some(t) = term
            && let Err(e) = self.journal.release_lease(&t).await
        {
            tracing::warn!(error = %e, "could not release the scheduler lease; it expires on its own");
        }
    }

    async fn tick(&self, term: &Term, schedule: &Schedule, stop: Option<&SwitchState>) -> Result<(), JournalError> {
        let name = &schedule.spec.name;
        if schedule.spec.overlap == Overlap::BufferOne
            && let Some(id) = self.journal.release_buffered(name).await?
        {
            tracing::info!(schedule = %name, run = %id, "queued the buffered occurrence; the previous run ended");
        }
        let Some(row) = self.journal.schedule(name).await? else {
            return Ok(());
        };
        let row = match stop {
            Some(stop) => held_by_emergency_stop(row, stop),
            None => row,
        };
        let now = self.journal.db_now().await?;
        if now <= row.considered_until {
            return Ok(());
        }
        let active = self.journal.active_runs_of_schedule(name).await?;
        let waiting = !self
            .journal
            .requests(&crate::journal::requests::RequestFilter {
                schedule: Some(name.clone()),
                state: Some(RequestState::Waiting),
                limit: 1,
                ..Default::default()
            })
            .await?
            .is_empty();
        let decided = decide(schedule, &row, now, &active, waiting);
        let mut requests = Vec::new();
        let plan = self.sources.catalog.current().new_run(&schedule.spec.plan, &schedule.spec.params);
        let mut occurrences = decided.occurrences;
        for o in &mut occurrences {
            if !matches!(o.outcome, OccurrenceOutcome::Fired | OccurrenceOutcome::Buffered) {
                continue;
            }
            match &plan {
                Ok(new) => {
                    let state = if o.outcome == OccurrenceOutcome::Buffered {
                        RequestState::Waiting
                    } else {
                        RequestState::Queued
                    };
                    let id = o.run_id.clone().expect("fired occurrences have a run id");
                    requests.push(NewRequest {
                        schedule: Some(name.clone()),
                        scheduled_at: Some(o.scheduled_at),
                        not_before: o.fire_at.unwrap_or(o.scheduled_at),
                        ..super::catalog::request(new.clone(), id, Origin::Schedule, state, format!("schedule {name}"))
                    })
                }
                Err(e) => {
                    o.outcome = OccurrenceOutcome::Skipped;
                    o.reason = Some(format!("the plan cannot start: {e}"));
                    o.run_id = None;
                }
            }
        }
        let fired: Vec<_> = occurrences
            .iter()
            .filter(|o| o.outcome == OccurrenceOutcome::Fired)
            .map(|o| o.scheduled_at)
            .collect();
        let stored = self
            .journal
            .store_decisions(
                term,
                &Decided {
                    schedule: name.clone(),
                    from: row.considered_until,
                    until: decided.until,
                    next_at: schedule.timing.next_after(decided.until),
                    occurrences: occurrences.clone(),
                    requests,
                },
            )
            .await?;
        if !stored {
            tracing::warn!(schedule = %name, "schedule decisions not stored: the lease or the position changed meanwhile");
            return Ok(());
        }
        for o in &occurrences {
            self.metrics.occurrence(name, o.outcome);
            match o.outcome {
                OccurrenceOutcome::Fired | OccurrenceOutcome::Buffered => {
                    tracing::info!(schedule = %name, scheduled_at = %o.scheduled_at, run = ?o.run_id, outcome = o.outcome.as_str(), "occurrence fired")
                }
                _ => {
                    tracing::info!(schedule = %name, scheduled_at = %o.scheduled_at, outcome = o.outcome.as_str(), reason = ?o.reason, "occurrence not fired")
                }
            }
        }
        if schedule.spec.overlap == Overlap::CancelOther && !fired.is_empty() {
            for run in &active {
                self.cancel_other(name, run).await?;
            }
        }
        Ok(())
    }

    /// Overlap `cancel_other`: the earlier run is aborted (or, not started yet, cancelled).
    async fn cancel_other(&self, schedule: &str, run: &str) -> Result<(), JournalError> {
        let by = format!("schedule {schedule}");
        let reason = "a newer occurrence of its schedule started (overlap: cancel_other)";
        if !self.journal.cancel_request(run, &by, Some(reason)).await? {
            self.journal.post_command(run, "abort", None, &by, Some(reason)).await?;
        }
        tracing::warn!(schedule = %schedule, run = %run, "cancelled the schedule's earlier run");
        Ok(())
    }
}

/// The decisions of one tick: pure, from the schedule's stored row and what is active.
pub struct TickDecision {
    pub occurrences: Vec<Occurrence>,
    /// The new position: `now`, or the last occurrence decided if there were more.
    pub until: DateTime<Utc>,
}

pub fn decide(schedule: &Schedule, row: &ScheduleRow, now: DateTime<Utc>, active: &[String], waiting: bool) -> TickDecision {
    let name = &schedule.spec.name;
    let timing = &schedule.timing;
    let from = row.considered_until;
    let on_time_from = (now - chrono::TimeDelta::from_std(LATE_TOLERANCE).unwrap_or_default()).max(from);
    let mut out = Vec::new();
    let mut truncated = false;
    // Occurrences older than the tolerance: missed while no scheduler ran.
    if on_time_from > from {
        let late = catch_up(timing, from, on_time_from, schedule.catch_up, PAGE);
        truncated |= late.truncated;
        for (t, reason) in late.missed {
            out.push(occurrence(name, t, now, OccurrenceOutcome::Missed, Some(reason)));
        }
        if let Some(t) = late.fire {
            out.push(occurrence(
                name,
                t,
                now,
                OccurrenceOutcome::Fired,
                Some("caught up after downtime".into()),
            ));
        }
    }
    if !truncated {
        let on_time = timing.occurrences(on_time_from, now, PAGE);
        truncated = on_time.len() == PAGE;
        if !on_time.is_empty() {
            // A caught-up occurrence is superseded by one that is on time.
            for o in out.iter_mut().filter(|o| o.outcome == OccurrenceOutcome::Fired) {
                o.outcome = OccurrenceOutcome::Missed;
                o.reason = Some("superseded by a later occurrence that is on time".into());
            }
        }
        out.extend(
            on_time
                .into_iter()
                .map(|t| occurrence(name, t, now, OccurrenceOutcome::Fired, None)),
        );
    }
    out.sort_by_key(|o| o.scheduled_at);
    let until = if truncated {
        out.last().map_or(now, |o| o.scheduled_at)
    } else {
        now
    };
    let mut active: Vec<String> = active.to_vec();
    let mut waiting = waiting;
    for o in out.iter_mut().filter(|o| o.outcome == OccurrenceOutcome::Fired) {
        if row.paused {
            o.outcome = OccurrenceOutcome::Skipped;
            o.reason = Some(format!(
                "the schedule is paused{}{}",
                row.paused_by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default(),
                row.pause_note.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
            ));
            continue;
        }
        if let Some(b) = timing.blackout_at(o.scheduled_at) {
            o.outcome = OccurrenceOutcome::Skipped;
            o.reason = Some(format!(
                "in a blackout window{}",
                b.reason().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
            continue;
        }
        let id = run_id(name, o.scheduled_at);
        match schedule.spec.overlap {
            Overlap::Skip if !active.is_empty() => {
                o.outcome = OccurrenceOutcome::Skipped;
                o.reason = Some(format!(
                    "run {} of this schedule is still active (overlap: skip)",
                    active.join(", ")
                ));
                continue;
            }
            Overlap::BufferOne if !active.is_empty() => {
                if waiting {
                    o.outcome = OccurrenceOutcome::Skipped;
                    o.reason = Some("an occurrence is already waiting for the active run (overlap: buffer_one)".into());
                    continue;
                }
                o.outcome = OccurrenceOutcome::Buffered;
                o.reason = Some(format!("waits for run {} to end (overlap: buffer_one)", active.join(", ")));
                waiting = true;
            }
            _ => {}
        }
        o.fire_at = Some(timing.fire_time(name, o.scheduled_at));
        o.run_id = Some(id.clone());
        if o.outcome == OccurrenceOutcome::Fired {
            if schedule.spec.overlap == Overlap::CancelOther {
                active.clear();
            }
            active.push(id);
        }
    }
    TickDecision { occurrences: out, until }
}

fn occurrence(
    schedule: &str,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
    outcome: OccurrenceOutcome,
    reason: Option<String>,
) -> Occurrence {
    Occurrence {
        schedule: schedule.to_owned(),
        scheduled_at,
        decided_at: now,
        outcome,
        run_id: None,
        fire_at: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::config::ScheduleSpec;
    use crate::serve::schedule::{Blackout, CronSpec, Timing, parse_tz};
    use chrono::TimeZone;

    fn schedule(cron: &str, overlap: Overlap, catch_up: Duration, blackouts: Vec<Blackout>) -> Schedule {
        Schedule {
            location: "test.yaml:1:1".into(),
            spec: ScheduleSpec {
                name: "drill".into(),
                plan: "p".into(),
                cron: cron.into(),
                timezone: "UTC".into(),
                params: Default::default(),
                overlap,
                catch_up: None,
                jitter: None,
                blackouts: blackouts.clone(),
            },
            timing: Timing::new(CronSpec::parse(cron).unwrap(), parse_tz("UTC").unwrap(), blackouts, Duration::ZERO).unwrap(),
            catch_up,
        }
    }

    fn row(from: DateTime<Utc>, paused: bool) -> ScheduleRow {
        ScheduleRow {
            name: "drill".into(),
            definition: String::new(),
            paused,
            paused_by: paused.then(|| "alice".into()),
            paused_at: None,
            pause_note: paused.then(|| "migration".into()),
            considered_until: from,
            next_at: None,
            last_fired_at: None,
            last_run_id: None,
        }
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, s).unwrap()
    }

    fn outcomes(d: &TickDecision) -> Vec<(String, OccurrenceOutcome)> {
        d.occurrences
            .iter()
            .map(|o| (o.scheduled_at.format("%H:%M:%S").to_string(), o.outcome))
            .collect()
    }

    use OccurrenceOutcome::{Buffered, Fired, Missed, Skipped};

    #[test]
    fn on_time_occurrences_fire_with_ids_derived_from_schedule_and_time() {
        let s = schedule("*/10 * * * * *", Overlap::Allow, Duration::ZERO, vec![]);
        let d = decide(&s, &row(at(10, 0, 0), false), at(10, 0, 25), &[], false);
        assert_eq!(outcomes(&d), [("10:00:10".into(), Fired), ("10:00:20".into(), Fired)]);
        assert_eq!(d.occurrences[0].run_id.as_deref(), Some("drill-20261201T100010Z"));
        assert_eq!(d.until, at(10, 0, 25));
    }

    #[test]
    fn overlap_policies_decide_what_a_second_occurrence_does_while_a_run_is_active() {
        let active = vec!["drill-20261201T095950Z".to_owned()];
        let from = row(at(10, 0, 0), false);
        let skip = decide(
            &schedule("*/10 * * * * *", Overlap::Skip, Duration::ZERO, vec![]),
            &from,
            at(10, 0, 15),
            &active,
            false,
        );
        assert_eq!(outcomes(&skip), [("10:00:10".into(), Skipped)]);
        assert!(skip.occurrences[0].reason.as_ref().unwrap().contains("drill-20261201T095950Z"));
        let buffer = decide(
            &schedule("*/10 * * * * *", Overlap::BufferOne, Duration::ZERO, vec![]),
            &from,
            at(10, 0, 25),
            &active,
            false,
        );
        assert_eq!(outcomes(&buffer), [("10:00:10".into(), Buffered), ("10:00:20".into(), Skipped)]);
        let allow = decide(
            &schedule("*/10 * * * * *", Overlap::Allow, Duration::ZERO, vec![]),
            &from,
            at(10, 0, 15),
            &active,
            false,
        );
        assert_eq!(outcomes(&allow), [("10:00:10".into(), Fired)]);
        let cancel = decide(
            &schedule("*/10 * * * * *", Overlap::CancelOther, Duration::ZERO, vec![]),
            &from,
            at(10, 0, 15),
            &active,
            false,
        );
        assert_eq!(outcomes(&cancel), [("10:00:10".into(), Fired)]);
        // A first occurrence fires in every policy: `skip` skips only beside an active run.
        let skip_second = decide(
            &schedule("*/10 * * * * *", Overlap::Skip, Duration::ZERO, vec![]),
            &from,
            at(10, 0, 25),
            &[],
            false,
        );
        assert_eq!(outcomes(&skip_second), [("10:00:10".into(), Fired), ("10:00:20".into(), Skipped)]);
    }

    #[test]
    fn a_paused_schedule_skips_and_says_who_paused_it_and_why() {
        let s = schedule("*/10 * * * * *", Overlap::Allow, Duration::ZERO, vec![]);
        let d = decide(&s, &row(at(10, 0, 0), true), at(10, 0, 15), &[], false);
        assert_eq!(outcomes(&d), [("10:00:10".into(), Skipped)]);
        assert_eq!(
            d.occurrences[0].reason.as_deref(),
            Some("the schedule is paused by alice: migration")
        );
        assert!(d.occurrences[0].run_id.is_none());
    }

    #[test]
    fn an_occurrence_in_a_blackout_is_skipped_naming_the_window() {
        let freeze = Blackout::fixed("2026-12-01T10:00:05", "2026-12-01T10:00:15", Some("change freeze")).unwrap();
        let s = schedule("*/10 * * * * *", Overlap::Allow, Duration::ZERO, vec![freeze]);
        let d = decide(&s, &row(at(10, 0, 0), false), at(10, 0, 25), &[], false);
        assert_eq!(outcomes(&d), [("10:00:10".into(), Skipped), ("10:00:20".into(), Fired)]);
        assert!(d.occurrences[0].reason.as_ref().unwrap().contains("change freeze"));
    }

    #[test]
    fn after_downtime_only_the_latest_occurrence_within_the_catch_up_window_fires() {
        // Hourly; the scheduler was down from 07:30 to 09:30: 09:00 is caught up, 08:00 is too old.
        let s = schedule("0 0 * * * *", Overlap::Allow, Duration::from_secs(3 * 3600 / 2), vec![]);
        let d = decide(&s, &row(at(7, 30, 0), false), at(9, 30, 0), &[], false);
        assert_eq!(outcomes(&d), [("08:00:00".into(), Missed), ("09:00:00".into(), Fired)]);
        assert_eq!(d.occurrences[1].reason.as_deref(), Some("caught up after downtime"));
        // Down until 10:00:30: 10:00 is on time, and the caught-up 09:00 is superseded by it.
        let d = decide(&s, &row(at(7, 30, 0), false), at(10, 0, 30), &[], false);
        assert_eq!(
            outcomes(&d),
            [("08:00:00".into(), Missed), ("09:00:00".into(), Missed), ("10:00:00".into(), Fired)]
        );
        assert_eq!(
            d.occurrences[1].reason.as_deref(),
            Some("superseded by a later occurrence that is on time")
        );
        let no_window = schedule("0 0 * * * *", Overlap::Allow, Duration::ZERO, vec![]);
        let d = decide(&no_window, &row(at(7, 30, 0), false), at(9, 30, 0), &[], false);
        assert_eq!(outcomes(&d), [("08:00:00".into(), Missed), ("09:00:00".into(), Missed)]);
    }

    #[test]
    fn a_late_but_tolerated_occurrence_fires_after_a_leader_change() {
        let s = schedule("* * * * * *", Overlap::Allow, Duration::ZERO, vec![]);
        let d = decide(&s, &row(at(10, 0, 0), false), at(10, 0, 12), &[], false);
        assert_eq!(d.occurrences.len(), 12);
        assert!(d.occurrences.iter().all(|o| o.outcome == Fired));
    }
}

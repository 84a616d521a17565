//! When scheduled drills fire: lifeboat's cron dialect, time zones and their DST transitions,
//! blackout windows, deterministic jitter, and catch-up after downtime.
//!
//! Pure computation over instants: nothing here reads the clock (callers pass `now`), stores state
//! or fires anything.
//!
//! # The cron dialect ([`CronSpec`])
//!
//! Fields are separated by whitespace (runs of it collapse). Three forms are read:
//!
//! * **6 or 7 fields, Quartz style**, handed to the `cron` crate (0.17) as written:
//!   `second minute hour day-of-month month day-of-week [year]`. Day-of-week numbers are Quartz
//!   numbers, **1 = SUN … 7 = SAT** (0 is refused); names `SUN`..`SAT` (also `MON`, `Monday`,
//!   `TUES`, `THURS`, any case) are clearer. Months are 1-12 or `JAN`..`DEC`; years 1970-2100 (the
//!   crate knows no others, so nothing fires after 2100). Items: `*`, `n`, `a-b`, `*/step`,
//!   `a-b/step`, `n/step` (n to the maximum), lists `a,b`. `?` is accepted in day-of-month and
//!   day-of-week only and means exactly `*`. `L`, `W` and `#` are not supported by the crate.
//! * **5 fields, crontab style**: `minute hour day-of-month month day-of-week`, read as the 6-field
//!   form with `0` seconds prepended. Its day-of-week field uses **Unix numbering: 0 or 7 = Sunday,
//!   1 = Monday … 6 = Saturday**, and is translated into a Quartz list of names, so `0 9 * * 1-5`
//!   becomes `0 0 9 * * MON,TUE,WED,THU,FRI` (Monday to Friday, never Sunday to Thursday). The field
//!   is a comma list of items: `*`, a number 0-7, a name, a range `a-b` of numbers or names, `*/step`
//!   or `a-b/step` (step 1-7). A range may end on Sunday as the last day of the week (`5-7`,
//!   `FRI-SUN`); otherwise ranges must not run backwards. `n/step` is refused (write `n-6/step`), and
//!   so is Quartz syntax (`?`, `L`, `#`), with a pointer to the 6-field form. A day field that covers
//!   every day is written `*`.
//!   Crontab (Vixie cron, cronie) fires on a day matching EITHER day field when neither starts with
//!   `*`; lifeboat always requires BOTH, so a 5-field expression where neither day-of-month nor
//!   day-of-week starts with `*` (or `?`) is refused rather than silently meaning something else:
//!   write it in the 6-field form to require both, or as two schedules.
//! * **Shorthands**, alone: `@yearly`/`@annually` = `0 0 0 1 1 *`, `@monthly` = `0 0 0 1 * *`,
//!   `@weekly` = `0 0 0 * * SUN`, `@daily`/`@midnight` = `0 0 0 * * *`, `@hourly` = `0 0 * * * *`
//!   (any case). `@reboot` and others are refused.
//!
//! In every form a day must match day-of-month **and** day-of-week: `0 0 12 13 * FRI` is noon on
//! Friday the 13th only. [`CronSpec::normalized`] is the 6/7-field text given to the crate; errors
//! from the crate are rewritten to name the expression, the field and the form's field order, with
//! an example.
//!
//! # Time zones and daylight-saving time
//!
//! A schedule's fields are wall-clock times in its IANA time zone ([`parse_tz`]). On transition days:
//!
//! * **Gap** (spring forward; e.g. 02:00-03:00 on 2026-03-29 in Europe/Berlin and on 2026-03-08 in
//!   America/New_York): a local time that does not exist that day is **skipped**, not moved; a daily
//!   02:30 schedule does not fire that day. (This is what the `cron` crate does.)
//! * **Overlap** (fall back; e.g. 02:00-03:00 on 2026-10-25 in Europe/Berlin, 01:00-02:00 on
//!   2026-11-01 in America/New_York): a local time that happens twice fires **once, at its first
//!   (summer-time) instant**. The crate yields both instants; lifeboat drops the second. So an hourly
//!   or every-10-minutes schedule does **not** fire during the repeated hour's second pass: in Berlin
//!   on 2026-10-25 an hourly schedule fires at 00:00Z (02:00 CEST) and next at 02:00Z (03:00 CET).
//!
//! # Blackouts, jitter, catch-up
//!
//! * An occurrence whose scheduled instant is inside a [`Blackout`] window is in blackout: fixed
//!   windows cover `[start, end)`, recurring ones `[t, t + duration)` for each instant `t` of their
//!   cron expression (same dialect, same zone, same DST rules; `duration` is elapsed time). The
//!   caller records such an occurrence as skipped, naming the window ([`Timing::blackout_at`]).
//! * Jitter delays a firing by a deterministic amount in `[0, jitter)` derived from the schedule name
//!   and the scheduled instant ([`Timing::jitter_for`]), so every replica computes the same fire time.
//! * After downtime, [`catch_up`] fires at most the latest missed occurrence, and only if it is less
//!   than the catch-up window old; all others are reported as missed with a reason.
//!
//! Durations (`duration`, `jitter`, `window`) are written as by [`parse_duration`]: `90s`, `5m`,
//! `1h30m`, `2d`, `250ms`.

pub mod blackout;
mod calendar;
mod catch_up;
mod cron_dialect;
mod duration;
mod error;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

pub use blackout::Blackout;
pub use calendar::{WallTime, parse_tz};
pub use catch_up::{CatchUp, CatchUpDecision, catch_up};
pub use cron_dialect::CronSpec;
pub use duration::{duration_text, format_duration, parse_duration};
pub use error::ScheduleError;

/// A schedule's timing: cron + time zone + blackout windows + jitter.
#[derive(Clone, Debug)]
pub struct Timing {
    /// When it fires, in wall-clock time of `tz`.
    pub cron: CronSpec,
    /// The zone `cron` and the blackout windows are read in.
    pub tz: Tz,
    /// Windows in which occurrences are skipped.
    pub blackouts: Vec<Blackout>,
    /// Upper bound (exclusive) of the deterministic delay added to each occurrence; zero for none.
    pub jitter: Duration,
}

impl Timing {
    /// A timing whose blackout windows have been checked in `tz` (`Blackout::validate`).
    pub fn new(cron: CronSpec, tz: Tz, blackouts: Vec<Blackout>, jitter: Duration) -> Result<Timing, ScheduleError> {
        let timing = Timing {
            cron,
            tz,
            blackouts,
            jitter,
        };
        timing.validate()?;
        Ok(timing)
    }

    /// Checks what `new` checks, for a `Timing` built from its fields.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.blackouts.iter().try_for_each(|blackout| blackout.validate(self.tz))
    }

    /// Scheduled instants strictly after `after` and at or before `until`, in order, with the DST rules
    /// applied; at most `limit` of them. To page, call again with `after` = the last instant returned.
    /// Blackouts and jitter are not applied (see `blackout_at`, `jitter_for`).
    pub fn occurrences(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        if limit == 0 || until <= after {
            return Vec::new();
        }
        self.upcoming(after).take_while(|&t| t <= until).take(limit).collect()
    }

    /// The first scheduled instant strictly after `after` (None if the expression never fires again).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.upcoming(after).next()
    }

    /// The latest scheduled instant in `(after, until]`, if any (DST rules applied).
    pub fn latest_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        calendar::latest_in(self.cron.schedule(), self.tz, after, until)
    }

    /// The blackout window covering `scheduled`, if any (the first one listed, when several do).
    pub fn blackout_at(&self, scheduled: DateTime<Utc>) -> Option<&Blackout> {
        self.blackouts.iter().find(|blackout| blackout.covers(self.tz, scheduled))
    }

    /// Deterministic delay in `[0, jitter)` for the occurrence of schedule `schedule` at `scheduled`, so
    /// every replica computes the same fire time. Derivation (stable across releases, do not change):
    /// SHA-256 over the UTF-8 name, a `0x00` byte, the instant's Unix seconds as big-endian `i64` and
    /// its sub-second nanoseconds as big-endian `u32`; the first 16 digest bytes as a big-endian `u128`
    /// `h`; the delay is `h mod jitter_ms` whole milliseconds, or `h mod jitter_ns` nanoseconds when the
    /// jitter is below one millisecond. Zero jitter gives zero.
    pub fn jitter_for(&self, schedule: &str, scheduled: DateTime<Utc>) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let digest = Sha256::new()
            .chain_update(schedule.as_bytes())
            .chain_update([0u8])
            .chain_update(scheduled.timestamp().to_be_bytes())
            .chain_update(scheduled.timestamp_subsec_nanos().to_be_bytes())
            .finalize();
        let mut head = [0u8; 16];
        head.copy_from_slice(&digest[..16]);
        let h = u128::from_be_bytes(head);
        let millis = self.jitter.as_millis();
        if millis > 0 {
            let delay = h % millis;
            Duration::new(
                u64::try_from(delay / 1_000).unwrap_or(u64::MAX),
                ((delay % 1_000) * 1_000_000) as u32,
            )
        } else {
            // Below a millisecond, `as_nanos` is below 1e6 and so is the remainder.
            Duration::from_nanos((h % self.jitter.as_nanos()) as u64)
        }
    }

    /// When the occurrence at `scheduled` actually fires: `scheduled + jitter_for(schedule, scheduled)`.
    pub fn fire_time(&self, schedule: &str, scheduled: DateTime<Utc>) -> DateTime<Utc> {
        let delay = TimeDelta::from_std(self.jitter_for(schedule, scheduled)).unwrap_or(TimeDelta::MAX);
        scheduled.checked_add_signed(delay).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Scheduled instants strictly after `after`, in order, without an end (DST rules applied).
    fn upcoming(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        calendar::upcoming(self.cron.schedule(), self.tz, after)
    }
}

#[cfg(test)]
mod tests;

//! Wall-clock time in a schedule's time zone: `parse_tz`, the DST rules applied to cron instants
//! (a local time in a spring-forward gap is skipped; one repeated at fall-back fires once, at its
//! first instant), and `WallTime`, a blackout boundary written as a local or an offset date-time.

use std::fmt;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::ScheduleError;

/// Parses an IANA time-zone name (`Europe/Berlin`, `America/New_York`, `UTC`). Names are
/// case-sensitive; a wrong case gets the right spelling suggested.
pub fn parse_tz(name: &str) -> Result<Tz, ScheduleError> {
    let trimmed = name.trim();
    if let Ok(tz) = trimmed.parse::<Tz>() {
        return Ok(tz);
    }
    let problem = if trimmed.is_empty() {
        "is empty; write an IANA time-zone name such as `Europe/Berlin`, `America/New_York` or `UTC`".to_owned()
    } else if let Some(tz) = chrono_tz::TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(trimmed)) {
        format!("is not a known time zone (names are case-sensitive); write `{}`", tz.name())
    } else if trimmed.starts_with(['+', '-']) || trimmed.chars().any(|c| c.is_ascii_digit()) {
        "is not a time-zone name: fixed offsets do not follow daylight-saving time; write the IANA name of the place, \
         such as `Europe/Berlin`, or `UTC`"
            .to_owned()
    } else {
        "is not a known IANA time-zone name; write `Area/City` such as `Europe/Berlin`, `America/New_York`, \
         `Asia/Tokyo`, or `UTC` (abbreviations like `CEST` or `PST` are not zones)"
            .to_owned()
    };
    Err(ScheduleError::TimeZone {
        name: name.to_owned(),
        problem,
    })
}

/// Whether a cron candidate (a matching local time the `cron` crate turned into an instant) is one
/// lifeboat fires at: every instant except the second (later) instance of a local time that the
/// fall-back transition repeats. Gaps never reach here: the crate skips local times that do not exist.
fn is_first_instance(tz: Tz, candidate: &DateTime<Tz>) -> bool {
    match tz.from_local_datetime(&candidate.naive_local()) {
        LocalResult::Ambiguous(earlier, _) => earlier == *candidate,
        _ => true,
    }
}

/// The `cron` crate knows the years 1970-2100 only, and instants far outside them must not reach it:
/// before 1970 its `year as u32` wraps (finding nothing, or walking every occurrence back from 2100),
/// and near the end of chrono's range its `+ 1s` overflows and panics. These bounds (two days of
/// margin for any zone's offset) clamp what is handed to it.
fn crate_floor() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH - TimeDelta::days(2)
}

/// 2101-01-02T00:00:00Z; see `crate_floor`.
fn crate_ceiling() -> DateTime<Utc> {
    DateTime::from_timestamp(4_134_067_200, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The scheduled instants of `schedule` in `tz` strictly after `after`, in increasing order, with the
/// DST rules applied. Ends when the crate runs out (its years stop at 2100).
pub(super) fn upcoming(schedule: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    let start = after.max(crate_floor());
    let raw = (after < crate_ceiling()).then(|| schedule.after(&start.with_timezone(&tz)));
    // The crate's raw sequence is not monotonic across a fall-back (it yields the earlier instance of a
    // repeated local time, then the later, then the next local time's earlier instance); with the
    // later instances dropped it is, and the `> after` filter removes the earlier instances of local
    // times repeated before `after` (when `after` itself is in the repeated hour's second pass).
    raw.into_iter()
        .flatten()
        .filter(move |candidate| is_first_instance(tz, candidate))
        .map(|candidate| candidate.with_timezone(&Utc))
        .filter(move |instant| *instant > after)
}

/// The latest scheduled instant in `(floor, at]`, with the DST rules applied.
pub(super) fn latest_in(schedule: &cron::Schedule, tz: Tz, floor: DateTime<Utc>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if at <= floor || at <= crate_floor() {
        return None;
    }
    let at = at.min(crate_ceiling());
    // Walk back from `at`. The crate's reverse search is by local time, so it finds the latest
    // occurrence whose local time is at or before `at`'s local time.
    let start = at.checked_add_signed(TimeDelta::nanoseconds(1)).unwrap_or(at);
    let backwards = schedule
        .after(&start.with_timezone(&tz))
        .rev()
        .filter(|candidate| is_first_instance(tz, candidate))
        .map(|candidate| candidate.with_timezone(&Utc))
        .find(|instant| *instant <= at)
        .filter(|instant| *instant > floor);
    // When `at` is in the second pass of a repeated hour, occurrences with a LATER local time (the rest
    // of the hour's first pass) are earlier instants than `at`; walk forward to pick them up. Bounded by
    // the length of the repeated hour: normally the first step already passes `at`.
    let from = backwards.unwrap_or(floor);
    upcoming(schedule, tz, from)
        .take_while(|instant| *instant <= at)
        .last()
        .or(backwards)
}

/// A blackout boundary: a local wall-clock time in the schedule's time zone, or an instant with a
/// fixed offset (RFC 3339).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallTime {
    /// `2026-12-20T00:00:00` (or `2026-12-20`): read in the schedule's time zone.
    Local(NaiveDateTime),
    /// `2026-12-20T00:00:00+01:00` / `…Z`: an exact instant.
    Offset(DateTime<FixedOffset>),
}

impl WallTime {
    /// Parses RFC 3339 with an offset, or a local `YYYY-MM-DDTHH:MM[:SS[.fff]]` (`T` or a space), or a
    /// date `YYYY-MM-DD` (midnight).
    pub fn parse(text: &str) -> Result<WallTime, ScheduleError> {
        let trimmed = text.trim();
        if let Ok(instant) = DateTime::parse_from_rfc3339(trimmed) {
            return Ok(WallTime::Offset(instant));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
            if let Ok(local) = NaiveDateTime::parse_from_str(trimmed, format) {
                return Ok(WallTime::Local(local));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
            return Ok(WallTime::Local(date.and_time(chrono::NaiveTime::MIN)));
        }
        let problem = if trimmed.is_empty() {
            "is empty"
        } else {
            "is not a date-time this reader knows"
        };
        Err(ScheduleError::DateTime {
            text: text.to_owned(),
            problem: problem.to_owned(),
        })
    }

    /// The instant this boundary denotes in `tz`. A local time repeated at fall-back is its first
    /// instance; a local time skipped at spring-forward is read with the offset in force before the
    /// jump (so 02:30 in a 02:00→03:00 gap is 03:30 after it), as java.time does.
    pub fn resolve(&self, tz: Tz) -> DateTime<Utc> {
        match self {
            WallTime::Offset(instant) => instant.with_timezone(&Utc),
            WallTime::Local(local) => resolve_local(tz, *local),
        }
    }
}

/// A local time in `tz` as an instant, by the rules of `WallTime::resolve`.
pub(super) fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => instant.with_timezone(&Utc),
        LocalResult::None => {
            // Transitions are months apart, so the offset a day earlier is the one before the gap.
            let before = local.checked_sub_signed(TimeDelta::days(1)).unwrap_or(local);
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = local
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
                .unwrap_or(local);
            Utc.from_utc_datetime(&utc)
        }
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WallTime::Local(local) => write!(f, "{}", local.format("%Y-%m-%dT%H:%M:%S%.f")),
            WallTime::Offset(instant) => f.write_str(&instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn time_zones_parse_and_errors_say_how_to_fix() {
        assert_eq!(parse_tz("Europe/Berlin").unwrap(), chrono_tz::Europe::Berlin);
        assert_eq!(parse_tz("UTC").unwrap(), chrono_tz::UTC);
        assert_eq!(parse_tz(" America/New_York ").unwrap(), chrono_tz::America::New_York);

        let message = parse_tz("europe/berlin").unwrap_err().to_string();
        assert!(
            message.contains("`europe/berlin`") && message.contains("write `Europe/Berlin`"),
            "{message}"
        );
        let message = parse_tz("+02:00").unwrap_err().to_string();
        assert!(message.contains("`+02:00`") && message.contains("fixed offsets"), "{message}");
        let message = parse_tz("Mars/Olympus").unwrap_err().to_string();
        assert!(message.contains("`Mars/Olympus`") && message.contains("Area/City"), "{message}");
        let message = parse_tz("").unwrap_err().to_string();
        assert!(message.contains("empty") && message.contains("UTC"), "{message}");
    }

    #[test]
    fn wall_times_parse_in_every_documented_shape() {
        let berlin = chrono_tz::Europe::Berlin;
        let midnight = utc("2026-12-19T23:00:00Z");
        for text in [
            "2026-12-20T00:00:00",
            "2026-12-20 00:00:00",
            "2026-12-20T00:00",
            "2026-12-20",
            "2026-12-20T00:00:00+01:00",
        ] {
            assert_eq!(WallTime::parse(text).unwrap().resolve(berlin), midnight, "{text}");
        }
        assert_eq!(
            WallTime::parse("2026-12-19T23:00:00Z").unwrap().resolve(chrono_tz::Asia::Tokyo),
            midnight
        );
        assert_eq!(WallTime::parse("2026-12-20T00:00:00").unwrap().to_string(), "2026-12-20T00:00:00");
        assert_eq!(
            WallTime::parse("2026-12-20T00:00:00+01:00").unwrap().to_string(),
            "2026-12-20T00:00:00+01:00"
        );

        let message = WallTime::parse("20.12.2026").unwrap_err().to_string();
        assert!(
            message.contains("`20.12.2026`") && message.contains("2026-12-20T00:00:00"),
            "{message}"
        );
    }

    #[test]
    fn local_times_in_gaps_and_overlaps_resolve_predictably() {
        let berlin = chrono_tz::Europe::Berlin;
        let local = |text: &str| WallTime::parse(text).unwrap().resolve(berlin);
        // 2026-03-29 02:30 does not exist in Berlin: read with CET (+01:00), it is 03:30 CEST.
        assert_eq!(local("2026-03-29T02:30:00"), utc("2026-03-29T01:30:00Z"));
        // 2026-10-25 02:30 happens twice: the first (CEST) instance.
        assert_eq!(local("2026-10-25T02:30:00"), utc("2026-10-25T00:30:00Z"));
    }
}

//! `Blackout`: a window in which a schedule's occurrences are skipped, either fixed (`start`–`end`)
//! or recurring (opened at each instant of a cron expression, lasting `duration`), both evaluated in
//! the schedule's time zone, with its serde form.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::{WallTime, upcoming};
use super::{CronSpec, ScheduleError, format_duration, parse_duration};

/// A blackout window. Deserializes from (and serializes to) one of
///
/// ```text
/// { start: "2026-12-20T00:00:00", end: "2027-01-03T00:00:00", reason: "change freeze" }
/// { cron: "0 0 9 * * MON-FRI", duration: "8h", reason: "business hours" }
/// ```
///
/// `reason` is optional. `start`/`end` are local times in the schedule's time zone, or RFC 3339 with
/// an offset; the window is `[start, end)`. A recurring window opens at each instant of `cron` (in
/// lifeboat's dialect, in the schedule's time zone, with the same DST rules as the schedule) and
/// covers `[t, t + duration)`, `duration` being elapsed time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BlackoutDoc", into = "BlackoutDoc")]
pub enum Blackout {
    /// `[start, end)`.
    Fixed {
        start: WallTime,
        end: WallTime,
        reason: Option<String>,
    },
    /// `[t, t + duration)` for every instant `t` of `cron`.
    Recurring {
        cron: CronSpec,
        duration: Duration,
        reason: Option<String>,
    },
}

impl Blackout {
    /// A fixed window from text (see `WallTime::parse`).
    pub fn fixed(start: &str, end: &str, reason: Option<&str>) -> Result<Blackout, ScheduleError> {
        let blackout = Blackout::Fixed {
            start: WallTime::parse(start)?,
            end: WallTime::parse(end)?,
            reason: reason.map(str::to_owned),
        };
        blackout.check_shape()?;
        Ok(blackout)
    }

    /// A recurring window from text (a cron expression in lifeboat's dialect and a `parse_duration` duration).
    pub fn recurring(cron: &str, duration: &str, reason: Option<&str>) -> Result<Blackout, ScheduleError> {
        let blackout = Blackout::Recurring {
            cron: CronSpec::parse(cron)?,
            duration: parse_duration(duration)?,
            reason: reason.map(str::to_owned),
        };
        blackout.check_shape()?;
        Ok(blackout)
    }

    /// The reason as written, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Blackout::Fixed { reason, .. } | Blackout::Recurring { reason, .. } => reason.as_deref(),
        }
    }

    /// Whether `instant` lies in this window, evaluated in `tz`.
    pub fn covers(&self, tz: Tz, instant: DateTime<Utc>) -> bool {
        match self {
            Blackout::Fixed { start, end, .. } => start.resolve(tz) <= instant && instant < end.resolve(tz),
            Blackout::Recurring { cron, duration, .. } => {
                // The window that covers `instant` opened at some t with instant - duration < t <= instant.
                let length = TimeDelta::from_std(*duration).unwrap_or(TimeDelta::MAX);
                let look_back = instant.checked_sub_signed(length).unwrap_or(DateTime::<Utc>::MIN_UTC);
                upcoming(cron.schedule(), tz, look_back)
                    .next()
                    .is_some_and(|opened| opened <= instant)
            }
        }
    }

    /// Checks the window in `tz`: a fixed window must end after it starts.
    pub fn validate(&self, tz: Tz) -> Result<(), ScheduleError> {
        self.check_shape()?;
        if let Blackout::Fixed { start, end, .. } = self
            && end.resolve(tz) <= start.resolve(tz)
        {
            return Err(self.invalid(format!(
                "ends at or before it starts in {tz} ({} to {}); the end is exclusive and must be later than the start",
                start.resolve(tz).to_rfc3339(),
                end.resolve(tz).to_rfc3339()
            )));
        }
        Ok(())
    }

    /// The checks that need no time zone: a non-zero duration, and a fixed window whose ends (when
    /// written in the same style) are in order.
    fn check_shape(&self) -> Result<(), ScheduleError> {
        match self {
            Blackout::Recurring { duration, .. } if duration.is_zero() => {
                Err(self.invalid("has a zero `duration`; give how long each window lasts, e.g. `8h`".to_owned()))
            }
            Blackout::Fixed { start, end, .. } => {
                let inverted = match (start, end) {
                    (WallTime::Local(start), WallTime::Local(end)) => end <= start,
                    (WallTime::Offset(start), WallTime::Offset(end)) => end <= start,
                    _ => false,
                };
                if inverted {
                    Err(self.invalid("ends at or before it starts; the end is exclusive and must be later than the start".to_owned()))
                } else {
                    Ok(())
                }
            }
            Blackout::Recurring { .. } => Ok(()),
        }
    }

    fn invalid(&self, problem: String) -> ScheduleError {
        ScheduleError::Blackout {
            window: format!("`{self}`"),
            problem,
        }
    }
}

/// `change freeze (2026-12-20T00:00:00 to 2027-01-03T00:00:00)`, `business hours (0 0 9 * * MON-FRI for 8h)`;
/// without a reason, just the parenthesised part. Meant for the "skipped: in blackout …" record.
impl fmt::Display for Blackout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window = match self {
            Blackout::Fixed { start, end, .. } => format!("{start} to {end}"),
            Blackout::Recurring { cron, duration, .. } => format!("{cron} for {}", format_duration(*duration)),
        };
        match self.reason() {
            Some(reason) => write!(f, "{reason} ({window})"),
            None => write!(f, "({window})"),
        }
    }
}

/// The serde shape of a blackout: the keys of both kinds, exactly one kind's present.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlackoutDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl TryFrom<BlackoutDoc> for Blackout {
    type Error = ScheduleError;

    fn try_from(doc: BlackoutDoc) -> Result<Blackout, ScheduleError> {
        let reason = doc.reason.as_deref();
        match (&doc.start, &doc.end, &doc.cron, &doc.duration) {
            (Some(start), Some(end), None, None) => Blackout::fixed(start, end, reason),
            (None, None, Some(cron), Some(duration)) => Blackout::recurring(cron, duration, reason),
            _ => Err(ScheduleError::Blackout {
                window: describe_keys(&doc),
                problem: "give either `start` and `end` (a fixed window, e.g. start: \"2026-12-20T00:00:00\", end: \
                          \"2027-01-03T00:00:00\") or `cron` and `duration` (a recurring window, e.g. cron: \"0 0 9 * * MON-FRI\", \
                          duration: \"8h\"), not a mix"
                    .to_owned(),
            }),
        }
    }
}

/// `with keys start, cron` — for the error about a blackout that has the wrong set of keys.
fn describe_keys(doc: &BlackoutDoc) -> String {
    let present: Vec<&str> = [
        ("start", &doc.start),
        ("end", &doc.end),
        ("cron", &doc.cron),
        ("duration", &doc.duration),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_some())
    .map(|(key, _)| key)
    .collect();
    if present.is_empty() {
        "with none of start/end/cron/duration".to_owned()
    } else {
        format!("with keys {}", present.join(", "))
    }
}

impl From<Blackout> for BlackoutDoc {
    fn from(blackout: Blackout) -> BlackoutDoc {
        match blackout {
            Blackout::Fixed { start, end, reason } => BlackoutDoc {
                start: Some(start.to_string()),
                end: Some(end.to_string()),
                reason,
                ..BlackoutDoc::default()
            },
            Blackout::Recurring { cron, duration, reason } => BlackoutDoc {
                cron: Some(cron.as_written().to_owned()),
                duration: Some(format_duration(duration)),
                reason,
                ..BlackoutDoc::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn fixed_window_is_half_open_in_the_schedule_zone() {
        let freeze = Blackout::fixed("2026-12-20T00:00:00", "2027-01-03T00:00:00", Some("change freeze")).unwrap();
        // Midnight in Berlin (CET, +01:00) is 23:00 UTC the day before.
        assert!(!freeze.covers(BERLIN, utc("2026-12-19T22:59:59Z")));
        assert!(freeze.covers(BERLIN, utc("2026-12-19T23:00:00Z")));
        assert!(freeze.covers(BERLIN, utc("2027-01-02T22:59:59Z")));
        assert!(!freeze.covers(BERLIN, utc("2027-01-02T23:00:00Z")));
        // The same local window in New York is six hours later.
        assert!(!freeze.covers(chrono_tz::America::New_York, utc("2026-12-20T04:59:59Z")));
        assert!(freeze.covers(chrono_tz::America::New_York, utc("2026-12-20T05:00:00Z")));
        assert_eq!(freeze.reason(), Some("change freeze"));
        assert_eq!(freeze.to_string(), "change freeze (2026-12-20T00:00:00 to 2027-01-03T00:00:00)");
    }

    #[test]
    fn fixed_window_with_offsets_ignores_the_zone() {
        let window = Blackout::fixed("2026-06-01T10:00:00+02:00", "2026-06-01T12:00:00Z", None).unwrap();
        for tz in [BERLIN, chrono_tz::Asia::Tokyo] {
            assert!(!window.covers(tz, utc("2026-06-01T07:59:59Z")));
            assert!(window.covers(tz, utc("2026-06-01T08:00:00Z")));
            assert!(window.covers(tz, utc("2026-06-01T11:59:59Z")));
            assert!(!window.covers(tz, utc("2026-06-01T12:00:00Z")));
        }
    }

    #[test]
    fn recurring_window_covers_duration_after_each_opening() {
        let hours = Blackout::recurring("0 0 9 * * MON-FRI", "8h", Some("business hours")).unwrap();
        // 2026-07-06 is a Monday; Berlin is on CEST (+02:00), so 09:00 local is 07:00 UTC.
        assert!(!hours.covers(BERLIN, utc("2026-07-06T06:59:59Z")));
        assert!(hours.covers(BERLIN, utc("2026-07-06T07:00:00Z")));
        assert!(hours.covers(BERLIN, utc("2026-07-06T14:59:59Z")));
        assert!(!hours.covers(BERLIN, utc("2026-07-06T15:00:00Z")));
        // Friday afternoon is covered, Saturday and Sunday are not.
        assert!(hours.covers(BERLIN, utc("2026-07-10T12:00:00Z")));
        assert!(!hours.covers(BERLIN, utc("2026-07-11T10:00:00Z")));
        assert!(!hours.covers(BERLIN, utc("2026-07-12T10:00:00Z")));
        // In winter (CET, +01:00) the window is an hour later in UTC.
        assert!(!hours.covers(BERLIN, utc("2026-01-05T07:30:00Z")));
        assert!(hours.covers(BERLIN, utc("2026-01-05T08:00:00Z")));
        assert_eq!(hours.to_string(), "business hours (0 0 9 * * MON-FRI for 8h)");
    }

    #[test]
    fn recurring_window_longer_than_its_period_spans_midnight() {
        // Nightly from 22:00 for 10 hours, written in crontab form.
        let nightly = Blackout::recurring("0 22 * * *", "10h", None).unwrap();
        let utc_zone = chrono_tz::UTC;
        assert!(nightly.covers(utc_zone, utc("2026-05-02T07:59:59Z")));
        assert!(!nightly.covers(utc_zone, utc("2026-05-02T08:00:00Z")));
        assert!(!nightly.covers(utc_zone, utc("2026-05-02T21:59:59Z")));
        assert!(nightly.covers(utc_zone, utc("2026-05-02T22:00:00Z")));
    }

    #[test]
    fn deserializes_both_shapes_and_round_trips() {
        let fixed: Blackout =
            serde_json::from_str(r#"{"start": "2026-12-20T00:00:00", "end": "2027-01-03T00:00:00", "reason": "change freeze"}"#).unwrap();
        assert_eq!(
            fixed,
            Blackout::fixed("2026-12-20T00:00:00", "2027-01-03T00:00:00", Some("change freeze")).unwrap()
        );
        let recurring: Blackout = serde_json::from_str(r#"{"cron": "0 0 9 * * MON-FRI", "duration": "8h"}"#).unwrap();
        assert_eq!(recurring.reason(), None);
        assert!(matches!(&recurring, Blackout::Recurring { duration, .. } if *duration == Duration::from_secs(8 * 3600)));

        for blackout in [fixed, recurring] {
            let json = serde_json::to_string(&blackout).unwrap();
            assert_eq!(serde_json::from_str::<Blackout>(&json).unwrap(), blackout, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Blackout::recurring("0 9 * * 1-5", "1h30m", None).unwrap()).unwrap(),
            r#"{"cron":"0 9 * * 1-5","duration":"1h30m"}"#
        );
    }

    #[test]
    fn bad_blackouts_say_what_to_write() {
        let err = |json: &str| serde_json::from_str::<Blackout>(json).unwrap_err().to_string();
        let message = err(r#"{"start": "2026-12-20T00:00:00", "cron": "@daily"}"#);
        assert!(
            message.contains("with keys start, cron") && message.contains("`cron` and `duration`"),
            "{message}"
        );
        let message = err(r#"{"reason": "x"}"#);
        assert!(message.contains("none of start/end/cron/duration"), "{message}");
        let message = err(r#"{"start": "2026-12-20", "end": "2026-12-20"}"#);
        assert!(message.contains("ends at or before it starts"), "{message}");
        let message = err(r#"{"cron": "@daily", "duration": "0s"}"#);
        assert!(message.contains("zero `duration`"), "{message}");
        let message = err(r#"{"cron": "0 9 * *", "duration": "1h"}"#);
        assert!(message.contains("cron `0 9 * *`"), "{message}");
        let message = err(r#"{"start": "tomorrow", "end": "2026-12-20"}"#);
        assert!(message.contains("date-time `tomorrow`"), "{message}");
        let message = err(r#"{"cron": "@daily", "duration": "8h", "until": "x"}"#);
        assert!(message.contains("until"), "{message}");

        // Mixed styles can only be checked once the zone is known.
        let mixed = Blackout::fixed("2026-12-20T00:30:00", "2026-12-20T00:00:00+01:00", None).unwrap();
        let message = mixed.validate(BERLIN).unwrap_err().to_string();
        assert!(message.contains("ends at or before it starts in Europe/Berlin"), "{message}");
        assert!(mixed.validate(chrono_tz::America::New_York).is_err());
        assert!(mixed.validate(chrono_tz::Asia::Tokyo).is_ok());
    }
}

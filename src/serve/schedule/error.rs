//! `ScheduleError`: every way a schedule's timing text can be wrong. Each message quotes the input,
//! says what is wrong with it and how to write it instead.

/// An invalid cron expression, time zone, duration, date-time or blackout window.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is empty or blank.
    #[error(
        "cron expression is empty: write e.g. `0 9 * * MON-FRI` (5 fields: minute hour day-of-month month day-of-week) \
         or `0 0 9 * * MON-FRI` (6 fields, with seconds first)"
    )]
    EmptyCron,

    /// The cron expression has a number of fields other than 5, 6 or 7.
    #[error(
        "cron `{text}`: has {found} field(s); write 5 fields `minute hour day-of-month month day-of-week` (e.g. `0 9 * * MON-FRI`), \
         6 fields `second minute hour day-of-month month day-of-week` (e.g. `0 0 9 * * MON-FRI`), or 7 with a year last"
    )]
    CronFieldCount { text: String, found: usize },

    /// An `@…` shorthand the dialect does not know, or a shorthand followed by more text.
    #[error(
        "cron `{text}`: unknown shorthand `{shorthand}`; write one of @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight, @hourly alone, or spell the fields out (e.g. `0 9 * * MON-FRI`)"
    )]
    CronShorthand { text: String, shorthand: String },

    /// The day-of-week field of a 5-field (crontab) expression cannot be translated.
    #[error("cron `{text}`: day-of-week `{field}`: {problem}")]
    CronDayOfWeek { text: String, field: String, problem: String },

    /// A 5-field expression restricts both day-of-month and day-of-week, which crontab ORs and lifeboat ANDs.
    #[error(
        "cron `{text}`: day-of-month `{dom}` and day-of-week `{dow}` are both restricted; crontab fires when EITHER matches, \
         lifeboat only when BOTH match, so the expression would not mean what it means in crontab. To require both, write \
         the 6-field form (e.g. `0 {example}`); to fire on either, use two schedules, one with `*` as the day-of-month and \
         one with `*` as the day-of-week"
    )]
    CronDayAmbiguity {
        text: String,
        dom: String,
        dow: String,
        example: String,
    },

    /// The `cron` crate refused the (normalized) expression.
    #[error("cron `{text}`: {problem}; {hint}")]
    CronInvalid { text: String, problem: String, hint: String },

    /// An unknown time-zone name.
    #[error("time zone `{name}`: {problem}")]
    TimeZone { name: String, problem: String },

    /// A duration that is not in the `1h30m` form.
    #[error("duration `{text}`: {problem}")]
    Duration { text: String, problem: String },

    /// A blackout start/end that is not a date-time.
    #[error(
        "date-time `{text}`: {problem}; write a local time in the schedule's time zone such as `2026-12-20T00:00:00` \
         (or `2026-12-20`), or RFC 3339 with an offset such as `2026-12-20T00:00:00+01:00`"
    )]
    DateTime { text: String, problem: String },

    /// A blackout window that is malformed (missing or conflicting keys, empty or inverted window).
    #[error("blackout {window}: {problem}")]
    Blackout { window: String, problem: String },
}

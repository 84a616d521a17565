//! Tests of `Timing` and `catch_up` at fixed instants: the dialect's firing days, DST gaps and
//! overlaps in two zones, paging, blackouts, jitter and catch-up.

use chrono::{Datelike, SecondsFormat, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn timing(cron: &str, tz: Tz) -> Timing {
    Timing::new(
        CronSpec::parse(cron).unwrap_or_else(|e| panic!("{e}")),
        tz,
        Vec::new(),
        Duration::ZERO,
    )
    .unwrap()
}

fn fires(timing: &Timing, after: &str, until: &str) -> Vec<String> {
    timing.occurrences(utc(after), utc(until), 10_000).into_iter().map(text).collect()
}

#[test]
fn crontab_weekdays_fire_monday_to_friday_not_sunday() {
    let weekdays = timing("0 9 * * 1-5", chrono_tz::UTC);
    // 2026-03-01 is a Sunday.
    let got = fires(&weekdays, "2026-03-01T00:00:00Z", "2026-03-09T23:59:59Z");
    assert_eq!(
        got,
        [
            "2026-03-02T09:00:00Z",
            "2026-03-03T09:00:00Z",
            "2026-03-04T09:00:00Z",
            "2026-03-05T09:00:00Z",
            "2026-03-06T09:00:00Z",
            "2026-03-09T09:00:00Z"
        ]
    );
    for t in weekdays.occurrences(utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"), 1_000) {
        assert!(!matches!(t.weekday(), Weekday::Sat | Weekday::Sun), "{t}");
    }
}

#[test]
fn crontab_every_fifteen_minutes() {
    let quarter = timing("*/15 * * * *", chrono_tz::UTC);
    assert_eq!(
        fires(&quarter, "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
        [
            "2026-03-01T10:15:00Z",
            "2026-03-01T10:30:00Z",
            "2026-03-01T10:45:00Z",
            "2026-03-01T11:00:00Z"
        ]
    );
}

#[test]
fn crontab_sunday_is_zero_or_seven_and_names_work() {
    let monday = utc("2026-03-02T00:00:00Z");
    for cron in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun"] {
        let next = timing(cron, chrono_tz::UTC).next_after(monday).unwrap();
        assert_eq!(text(next), "2026-03-08T00:00:00Z", "{cron}");
        assert_eq!(next.weekday(), Weekday::Sun, "{cron}");
    }
    let weekend = timing("0 0 * * sat,sun", chrono_tz::UTC);
    assert_eq!(
        fires(&weekend, "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"),
        ["2026-03-07T00:00:00Z", "2026-03-08T00:00:00Z"]
    );
}

#[test]
fn quartz_six_field_uses_one_for_sunday() {
    // Friday 2026-07-10 10:00 CEST; the next 09:30 Monday-to-Friday in Berlin is Monday 07:30 UTC.
    let weekdays = timing("0 30 9 * * MON-FRI", Berlin);
    assert_eq!(
        text(weekdays.next_after(utc("2026-07-10T08:00:00Z")).unwrap()),
        "2026-07-13T07:30:00Z"
    );
    let quartz_one = timing("0 0 0 * * 1", chrono_tz::UTC);
    assert_eq!(quartz_one.next_after(utc("2026-03-02T00:00:00Z")).unwrap().weekday(), Weekday::Sun);
}

#[test]
fn quartz_seven_field_year_fires_once() {
    let once = timing("0 0 12 1 1 * 2027", chrono_tz::UTC);
    let first = once.next_after(utc("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(text(first), "2027-01-01T12:00:00Z");
    assert_eq!(once.next_after(first), None);
    assert_eq!(timing("0 0 0 31 2 *", chrono_tz::UTC).next_after(utc("2026-01-01T00:00:00Z")), None);
}

#[test]
fn day_of_month_and_day_of_week_must_both_match() {
    let friday_13 = timing("0 0 12 13 * FRI", chrono_tz::UTC);
    assert_eq!(
        fires(&friday_13, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ["2026-02-13T12:00:00Z", "2026-03-13T12:00:00Z", "2026-11-13T12:00:00Z"]
    );
}

#[test]
fn nth_weekday_is_a_day_of_month_range_with_the_day() {
    // The fix the `L`/`#` errors suggest: the third Friday.
    let third_friday = timing("0 0 9 15-21 * FRI", chrono_tz::UTC);
    assert_eq!(
        fires(&third_friday, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        ["2026-01-16T09:00:00Z", "2026-02-20T09:00:00Z", "2026-03-20T09:00:00Z"]
    );
}

#[test]
fn berlin_spring_forward_skips_the_missing_time() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day.
    for cron in ["0 30 2 * * *", "30 2 * * *"] {
        let daily = timing(cron, Berlin);
        assert_eq!(
            fires(&daily, "2026-03-27T12:00:00Z", "2026-03-31T00:00:00Z"),
            ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"],
            "{cron}"
        );
    }
}

#[test]
fn berlin_fall_back_fires_once_at_the_first_instant() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET, so 02:00-02:59 happen twice.
    let daily = timing("0 30 2 * * *", Berlin);
    assert_eq!(
        fires(&daily, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"),
        ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Hourly: 02:00 CEST (00:00Z) fires, 02:00 CET (01:00Z) does not, next is 03:00 CET (02:00Z).
    let hourly = timing("0 0 * * * *", Berlin);
    assert_eq!(
        fires(&hourly, "2026-10-24T21:30:00Z", "2026-10-25T03:30:00Z"),
        [
            "2026-10-24T22:00:00Z",
            "2026-10-24T23:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-25T03:00:00Z"
        ]
    );
}

#[test]
fn new_york_spring_forward_skips_and_fall_back_fires_once() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    let daily_0230 = timing("30 2 * * *", New_York);
    assert_eq!(
        fires(&daily_0230, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"),
        ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
    );
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens at 05:30Z and at 06:30Z.
    let daily_0130 = timing("30 1 * * *", New_York);
    assert_eq!(
        fires(&daily_0130, "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z"),
        ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    // Every 10 minutes: nothing during the repeated hour's second pass (06:00Z-06:59Z).
    let ten = timing("*/10 * * * *", New_York);
    assert_eq!(
        fires(&ten, "2026-11-01T05:35:00Z", "2026-11-01T07:05:00Z"),
        ["2026-11-01T05:40:00Z", "2026-11-01T05:50:00Z", "2026-11-01T07:00:00Z"]
    );
}

#[test]
fn starting_inside_the_repeated_hour_neither_repeats_nor_loses_occurrences() {
    let ten = timing("*/10 * * * *", New_York);
    // 06:25Z is 01:25 EST, the second pass; 01:30 EDT (05:30Z) already happened.
    assert_eq!(text(ten.next_after(utc("2026-11-01T06:25:00Z")).unwrap()), "2026-11-01T07:00:00Z");
    // The latest occurrence at or before 06:25Z is 01:50 EDT (05:50Z), although its local time is later than 01:25.
    let latest = ten
        .latest_between(utc("2026-11-01T05:00:00Z"), utc("2026-11-01T06:25:00Z"))
        .unwrap();
    assert_eq!(text(latest), "2026-11-01T05:50:00Z");
    let berlin = timing("*/10 * * * *", Berlin);
    let latest = berlin
        .latest_between(utc("2026-10-25T00:00:00Z"), utc("2026-10-25T01:30:00Z"))
        .unwrap();
    assert_eq!(text(latest), "2026-10-25T00:50:00Z");
    assert_eq!(
        berlin.latest_between(utc("2026-10-25T00:50:00Z"), utc("2026-10-25T01:59:59Z")),
        None
    );
    // Outside transitions the latest is simply the previous occurrence, `until` included.
    assert_eq!(
        text(
            berlin
                .latest_between(utc("2026-06-01T00:00:00Z"), utc("2026-06-01T10:20:00Z"))
                .unwrap()
        ),
        "2026-06-01T10:20:00Z"
    );
    assert_eq!(
        text(
            berlin
                .latest_between(utc("2026-06-01T00:00:00Z"), utc("2026-06-01T10:19:59Z"))
                .unwrap()
        ),
        "2026-06-01T10:10:00Z"
    );
}

#[test]
fn occurrences_page_with_limit() {
    let quarter = timing("*/15 * * * *", Berlin);
    let (after, until) = (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T04:00:00Z"));
    let everything = quarter.occurrences(after, until, 1_000);
    let mut paged = Vec::new();
    let mut cursor = after;
    loop {
        let page = quarter.occurrences(cursor, until, 7);
        assert!(page.len() <= 7);
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        cursor = last;
    }
    assert_eq!(paged, everything);
    // 6 hours of quarter hours minus the 4 of the repeated hour's second pass.
    assert_eq!(everything.len(), 6 * 4 - 4);
    assert!(everything.windows(2).all(|pair| pair[0] < pair[1]));

    assert!(quarter.occurrences(after, until, 0).is_empty());
    assert!(quarter.occurrences(until, after, 10).is_empty());
}

#[test]
fn next_after_is_strictly_after() {
    let quarter = timing("*/15 * * * *", chrono_tz::UTC);
    assert_eq!(
        text(quarter.next_after(utc("2026-03-01T10:15:00Z")).unwrap()),
        "2026-03-01T10:30:00Z"
    );
    assert_eq!(
        text(quarter.next_after(utc("2026-03-01T10:14:59.5Z")).unwrap()),
        "2026-03-01T10:15:00Z"
    );
    assert_eq!(
        text(quarter.next_after(utc("2026-03-01T10:15:00.001Z")).unwrap()),
        "2026-03-01T10:30:00Z"
    );
}

#[test]
fn blackout_at_names_the_covering_window() {
    let freeze = Blackout::fixed("2026-12-20T00:00:00", "2027-01-03T00:00:00", Some("change freeze")).unwrap();
    let hours = Blackout::recurring("0 0 9 * * MON-FRI", "8h", Some("business hours")).unwrap();
    let daily = Timing::new(
        CronSpec::parse("0 10 * * *").unwrap(),
        Berlin,
        vec![freeze.clone(), hours.clone()],
        Duration::ZERO,
    )
    .unwrap();
    let occurrences = daily.occurrences(utc("2026-12-17T00:00:00Z"), utc("2026-12-21T00:00:00Z"), 10);
    let verdicts: Vec<(String, Option<Option<&str>>)> = occurrences
        .iter()
        .map(|&t| (text(t), daily.blackout_at(t).map(Blackout::reason)))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("2026-12-17T09:00:00Z".to_owned(), Some(Some("business hours"))), // Thursday
            ("2026-12-18T09:00:00Z".to_owned(), Some(Some("business hours"))), // Friday
            ("2026-12-19T09:00:00Z".to_owned(), None),                         // Saturday
            ("2026-12-20T09:00:00Z".to_owned(), Some(Some("change freeze"))),  // Sunday, in the freeze
        ]
    );
    // Both cover Monday 21st; the first listed is named.
    assert_eq!(daily.blackout_at(utc("2026-12-21T09:00:00Z")), Some(&freeze));

    let inverted = Blackout::fixed("2026-12-20T00:30:00", "2026-12-20T00:00:00+01:00", None).unwrap();
    let err = Timing::new(CronSpec::parse("@daily").unwrap(), Berlin, vec![inverted], Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("ends at or before it starts"), "{err}");
}

#[test]
fn jitter_is_deterministic_bounded_and_differs_across_schedules() {
    let mut hourly = timing("@hourly", chrono_tz::UTC);
    hourly.jitter = Duration::from_secs(300);
    let instants = hourly.occurrences(utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"), 500);
    assert_eq!(instants.len(), 500);
    let replica = hourly.clone();
    let mut differing = 0;
    let (mut lowest, mut highest) = (Duration::MAX, Duration::ZERO);
    for &t in &instants {
        let delay = hourly.jitter_for("nightly-restore", t);
        assert_eq!(delay, replica.jitter_for("nightly-restore", t));
        assert!(delay < hourly.jitter, "{delay:?}");
        assert_eq!(delay.subsec_nanos() % 1_000_000, 0, "whole milliseconds: {delay:?}");
        assert_eq!(hourly.fire_time("nightly-restore", t), t + TimeDelta::from_std(delay).unwrap());
        if delay != hourly.jitter_for("db-failover", t) {
            differing += 1;
        }
        lowest = lowest.min(delay);
        highest = highest.max(delay);
    }
    assert!(differing >= 495, "only {differing} of 500 differ across schedules");
    assert!(
        lowest < Duration::from_secs(30) && highest > Duration::from_secs(270),
        "{lowest:?}..{highest:?}"
    );
    // Pinned: replicas of different releases must agree.
    assert_eq!(hourly.jitter_for("nightly-restore", utc("2026-01-01T00:00:00Z")), PINNED_JITTER);

    hourly.jitter = Duration::from_nanos(500);
    assert!(instants.iter().all(|&t| hourly.jitter_for("x", t) < Duration::from_nanos(500)));
    hourly.jitter = Duration::ZERO;
    assert!(instants.iter().all(|&t| hourly.jitter_for("x", t).is_zero()));
}

/// SHA-256("nightly-restore" 0x00 i64be(1767225600) u32be(0)), first 16 bytes mod 300000 ms; checked
/// independently with Python's hashlib.
const PINNED_JITTER: Duration = Duration::from_millis(48_160);

#[test]
fn catch_up_after_three_hours_fires_only_the_latest_within_the_window() {
    let hourly = timing("0 * * * *", chrono_tz::UTC);
    let (last, now) = (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T13:20:00Z"));
    let decision = catch_up(&hourly, last, now, parse_duration("90m").unwrap(), 100);
    assert_eq!(decision.fire, Some(utc("2026-03-02T13:00:00Z")));
    assert!(!decision.truncated);
    let missed: Vec<String> = decision.missed.iter().map(|(t, _)| text(*t)).collect();
    assert_eq!(missed, ["2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"]);
    let (old, superseded) = (&decision.missed[0].1, &decision.missed[1].1);
    assert!(
        old.starts_with("missed:") && old.contains("2h20m late") && old.contains("catch-up window of 1h30m"),
        "{old}"
    );
    assert!(
        superseded.starts_with("superseded:") && superseded.contains("2026-03-02T13:00:00Z"),
        "{superseded}"
    );

    // A window of 0 fires nothing; a window the latest has already left fires nothing either.
    let off = catch_up(&hourly, last, now, Duration::ZERO, 100);
    assert_eq!(off.fire, None);
    assert_eq!(off.missed.len(), 3);
    assert!(
        off.missed.iter().all(|(_, reason)| reason.contains("catch-up is off")),
        "{:?}",
        off.missed
    );
    let narrow = catch_up(&hourly, last, now, Duration::from_secs(600), 100);
    assert_eq!(narrow.fire, None);
    assert!(
        narrow
            .missed
            .iter()
            .all(|(_, reason)| reason.contains("beyond the catch-up window of 10m")),
        "{:?}",
        narrow.missed
    );

    // Due exactly now: age zero is within any non-zero window.
    let on_time = catch_up(
        &hourly,
        utc("2026-03-02T12:00:00Z"),
        utc("2026-03-02T13:00:00Z"),
        Duration::from_secs(1),
        100,
    );
    assert_eq!((on_time.fire, on_time.missed.len()), (Some(utc("2026-03-02T13:00:00Z")), 0));
    // Nothing new since last time.
    let idle = catch_up(&hourly, now, now, Duration::from_secs(5_400), 100);
    assert_eq!((idle.fire, idle.missed.len(), idle.truncated), (None, 0, false));

    let configured: CatchUp = serde_json::from_str(r#"{"window": "1h30m"}"#).unwrap();
    assert_eq!(configured.decide(&hourly, last, now, 100), decision);
    assert_eq!(serde_json::to_string(&configured).unwrap(), r#"{"window":"1h30m"}"#);
}

#[test]
fn catch_up_pages_missed_occurrences() {
    let minutely = timing("* * * * *", chrono_tz::UTC);
    let (last, now, window) = (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T13:20:00Z"), Duration::from_secs(5_400));
    let mut cursor = last;
    let mut all_missed = Vec::new();
    let mut pages = 0;
    loop {
        let page = catch_up(&minutely, cursor, now, window, 10);
        pages += 1;
        assert_eq!(page.fire, Some(now), "page {pages}");
        assert!(page.missed.len() <= 10);
        all_missed.extend(page.missed.iter().map(|(t, _)| *t));
        if !page.truncated {
            break;
        }
        cursor = page.missed.last().unwrap().0;
    }
    // 10:01 … 13:19 are missed, 13:20 fires.
    assert_eq!(all_missed.len(), 199);
    assert_eq!(pages, 20);
    assert_eq!(all_missed.first(), Some(&utc("2026-03-02T10:01:00Z")));
    assert_eq!(all_missed.last(), Some(&utc("2026-03-02T13:19:00Z")));

    let counted_only = catch_up(&minutely, last, now, window, 0);
    assert!(counted_only.missed.is_empty() && counted_only.truncated);
    let only_fire = catch_up(&minutely, utc("2026-03-02T13:19:30Z"), now, window, 0);
    assert_eq!((only_fire.fire, only_fire.truncated), (Some(now), false));
}

#[test]
fn catch_up_in_the_repeated_hour_fires_the_latest_first_instance() {
    // Berlin, 2026-10-25 01:35Z = 02:35 CET (second pass); the last occurrence was 02:50 CEST = 00:50Z.
    let ten = timing("*/10 * * * *", Berlin);
    let decision = catch_up(
        &ten,
        utc("2026-10-25T00:30:00Z"),
        utc("2026-10-25T01:35:00Z"),
        Duration::from_secs(3_600),
        10,
    );
    assert_eq!(decision.fire, Some(utc("2026-10-25T00:50:00Z")));
    let missed: Vec<String> = decision.missed.iter().map(|(t, _)| text(*t)).collect();
    assert_eq!(missed, ["2026-10-25T00:40:00Z"]);
}

#[test]
fn extreme_instants_neither_panic_nor_lose_occurrences() {
    let hourly = timing("0 * * * *", chrono_tz::Asia::Tokyo);
    let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    assert_eq!(hourly.next_after(max), None);
    assert_eq!(text(hourly.next_after(min).unwrap()), "1969-12-31T15:00:00Z"); // 1970-01-01T00:00 in Tokyo
    assert_eq!(text(hourly.latest_between(min, max).unwrap()), "2100-12-31T14:00:00Z"); // 2100-12-31T23:00 in Tokyo
    assert_eq!(hourly.latest_between(min, utc("1969-06-01T00:00:00Z")), None);
    assert_eq!(hourly.occurrences(min, max, 2).len(), 2);
    let forever = Blackout::recurring("@daily", "99999999999d", None).unwrap();
    assert!(forever.covers(New_York, utc("2026-03-02T10:00:00Z")));
}

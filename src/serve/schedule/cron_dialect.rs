//! `CronSpec`: lifeboat's cron dialect. Reads the 5-field crontab form (translating its Unix
//! day-of-week numbering), the 6/7-field Quartz form of the `cron` crate and `@` shorthands,
//! produces the normalized 6/7-field text that is handed to `cron::Schedule`, and turns the crate's
//! parse errors into messages that name the expression, the field and the fix.
//!
//! The rules are stated in the module doc of `super` (`schedule/mod.rs`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ScheduleError;

/// Quartz day names in Quartz order (1 = SUN … 7 = SAT); index 0 is Sunday, as in Unix numbering.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Field names of the normalized (6/7-field) expression, in order.
const QUARTZ_FIELDS: [&str; 7] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week", "year"];

const ITEMS_HINT: &str = "items are `*`, `n`, `a-b`, `*/step`, `a-b/step`, joined by commas";

/// A cron expression in lifeboat's dialect, parsed and validated.
///
/// Equality compares the normalized text, so `0 9 * * 1-5` equals `0 0 9 * * MON,TUE,WED,THU,FRI`.
#[derive(Clone, Debug)]
pub struct CronSpec {
    written: String,
    normalized: String,
    // Shared: a `cron::Schedule` is ~300 bytes of ordinal sets, and specs are cloned with their `Timing`.
    schedule: Arc<cron::Schedule>,
}

/// Which form an expression was written in; decides the hint in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Crontab,
    Quartz,
    Shorthand,
}

impl CronSpec {
    /// Parses `text` in lifeboat's dialect (see the module doc of `schedule`).
    pub fn parse(text: &str) -> Result<CronSpec, ScheduleError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (normalized, form) = match fields.as_slice() {
            [] => return Err(ScheduleError::EmptyCron),
            [first, ..] if first.starts_with('@') => {
                let expanded = if fields.len() == 1 { expand_shorthand(first) } else { None };
                let Some(expanded) = expanded else {
                    return Err(ScheduleError::CronShorthand {
                        text: text.to_owned(),
                        shorthand: fields.join(" "),
                    });
                };
                (expanded.to_owned(), Form::Shorthand)
            }
            [minute, hour, dom, month, dow] => (translate_crontab(text, minute, hour, dom, month, dow)?, Form::Crontab),
            [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => (fields.join(" "), Form::Quartz),
            _ => {
                return Err(ScheduleError::CronFieldCount {
                    text: text.to_owned(),
                    found: fields.len(),
                });
            }
        };
        let schedule = cron::Schedule::from_str(&normalized).map_err(|e| crate_error(text, &normalized, form, &e.to_string()))?;
        Ok(CronSpec {
            written: text.to_owned(),
            normalized,
            schedule: Arc::new(schedule),
        })
    }

    /// The expression exactly as written.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// The 6/7-field expression handed to the `cron` crate.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The parsed `cron` schedule (raw: without lifeboat's DST rules; use `Timing` to iterate).
    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &CronSpec) -> bool {
        self.normalized == other.normalized
    }
}

impl Eq for CronSpec {}

impl FromStr for CronSpec {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<CronSpec, ScheduleError> {
        CronSpec::parse(text)
    }
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// Serialized as the text as written.
impl Serialize for CronSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

/// Deserialized from a string in lifeboat's dialect; a bad expression fails with the `ScheduleError` message.
impl<'de> Deserialize<'de> for CronSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CronSpec, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The 6-field meaning of each `@` shorthand (matching the `cron` crate's own, plus the crontab aliases).
fn expand_shorthand(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => Some("0 0 0 1 1 *"),
        "@monthly" => Some("0 0 0 1 * *"),
        "@weekly" => Some("0 0 0 * * SUN"),
        "@daily" | "@midnight" => Some("0 0 0 * * *"),
        "@hourly" => Some("0 0 * * * *"),
        _ => None,
    }
}

/// Turns a 5-field crontab expression into the 6-field form: `0` seconds first, day-of-week in names.
fn translate_crontab(text: &str, minute: &str, hour: &str, dom: &str, month: &str, dow: &str) -> Result<String, ScheduleError> {
    let quartz_dow = unix_dow_to_quartz(dow).map_err(|problem| ScheduleError::CronDayOfWeek {
        text: text.to_owned(),
        field: dow.to_owned(),
        problem,
    })?;
    // Vixie cron / cronie: when neither day field starts with `*`, a day matches if EITHER matches.
    // The cron crate always requires both, so such an expression would silently change meaning.
    let dom_open = dom.starts_with('*') || dom.starts_with('?');
    if !dom_open && !dow.starts_with('*') {
        return Err(ScheduleError::CronDayAmbiguity {
            text: text.to_owned(),
            dom: dom.to_owned(),
            dow: dow.to_owned(),
            example: format!("{minute} {hour} {dom} {month} {quartz_dow}"),
        });
    }
    Ok(format!("0 {minute} {hour} {dom} {month} {quartz_dow}"))
}

/// Expands a Unix day-of-week field (0 or 7 = Sunday, 1 = Monday … 6 = Saturday, or names) into the set
/// of days and writes it as a Quartz list of names (`MON,TUE,WED,THU,FRI`), or `*` for every day.
/// The error is the problem and its fix, without the expression (the caller adds it).
fn unix_dow_to_quartz(field: &str) -> Result<String, String> {
    if field == "*" {
        return Ok("*".to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        if item.is_empty() {
            return Err("has an empty item between commas; list days like `MON,WED,FRI`".to_owned());
        }
        if item.contains('?') {
            return Err(
                "`?` is Quartz syntax, which the 5-field crontab form does not take; write `*` here, or use the 6-field Quartz \
                 form `second minute hour day-of-month month day-of-week` (where `?` means `*`)"
                    .to_owned(),
            );
        }
        if is_quartz_only(item) {
            return Err(format!(
                "`{item}` is Quartz syntax (`L`, `#`), which the 5-field crontab form does not take (and the cron engine does \
                 not support at all); use the 6-field Quartz form `second minute hour day-of-month month day-of-week`, where \
                 a day must match both day fields, e.g. `0 0 9 15-21 * FRI` for the third Friday"
            ));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(parse_step(item, step)?)),
            None => (item, None),
        };
        let (first, last) = if base == "*" {
            (0, 6)
        } else if let Some((from, to)) = base.split_once('-') {
            let first = unix_day(from)?;
            let mut last = unix_day(to)?;
            // `FRI-SUN` / `5-SUN`: a range may end on Sunday as the week's last day (like `5-7`).
            if last == 0 && first > 0 && to.chars().all(|c| c.is_ascii_alphabetic()) {
                last = 7;
            }
            if first > last {
                return Err(format!(
                    "range `{base}` runs backwards; ranges go Sunday (0) to Saturday (6), with 7 or SUN also allowed as the \
                     end, e.g. `5-7` or `FRI-SUN`, or list the days: `FRI,SAT,SUN,MON`"
                ));
            }
            (first, last)
        } else {
            if step.is_some() {
                return Err("a step needs a range to step through; write e.g. `*/2` or `1-5/2`".to_owned());
            }
            let day = unix_day(base)?;
            (day, day)
        };
        for day in (first..=last).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    if days.iter().all(|&d| d) {
        return Ok("*".to_owned());
    }
    let names: Vec<&str> = DAY_NAMES.iter().zip(days).filter(|(_, on)| *on).map(|(name, _)| *name).collect();
    Ok(names.join(","))
}

fn is_quartz_only(item: &str) -> bool {
    item.contains('#')
        || item.eq_ignore_ascii_case("L")
        || (item.len() > 1 && item.ends_with(['L', 'l']) && item[..item.len() - 1].chars().all(|c| c.is_ascii_digit()))
}

fn parse_step(item: &str, step: &str) -> Result<usize, String> {
    match step.parse::<usize>() {
        Ok(n) if (1..=7).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{item}`: the step `{step}` must be a whole number from 1 to 7, e.g. `*/2` or `1-5/2`"
        )),
    }
}

/// One Unix day: a number 0-7 (0 and 7 = Sunday) or a name (`MON`, `monday`, …; Sunday is 0).
fn unix_day(token: &str) -> Result<usize, String> {
    if let Ok(n) = token.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "`{token}` is not a day: in the 5-field form days are 0-7 (0 and 7 = Sunday, 1 = Monday … 6 = Saturday) \
                 or names SUN..SAT"
            ))
        };
    }
    let day = match token.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => {
            return Err(format!(
                "`{token}` is not a day; write a name SUN, MON, TUE, WED, THU, FRI, SAT or a number 0-7 (0 and 7 = Sunday)"
            ));
        }
    };
    Ok(day)
}

/// Rewrites a `cron` crate error ("<expression>\n<caret>\n<message>") as one line naming the field.
fn crate_error(text: &str, normalized: &str, form: Form, raw: &str) -> ScheduleError {
    let mut lines = raw.lines();
    let _expression = lines.next();
    let column = lines.next().and_then(|caret| caret.find('^'));
    let message = lines.collect::<Vec<_>>().join(" ");
    // The crate says "must be less than 59" where it means "at most 59".
    let message = message
        .trim()
        .trim_end_matches('.')
        .replace(" must be less than ", " must be at most ");
    let located = column.and_then(|col| field_at(normalized, col));
    let problem = match located {
        Some((index, token)) => {
            let field = QUARTZ_FIELDS.get(index).copied().unwrap_or("extra");
            let what = if (token.contains(['#', 'L', 'W', 'l', 'w']) && message.is_empty()) || message.contains("'L'") {
                "`L`, `W` and `#` are not supported (a day must match day-of-month AND day-of-week, so e.g. the third \
                 Friday is `15-21` as day-of-month with `FRI` as day-of-week)"
                    .to_owned()
            } else if message.is_empty() && field == "year" {
                "years run from 1970 to 2100".to_owned()
            } else if message.is_empty() {
                "is not understood".to_owned()
            } else {
                message
            };
            format!("{field} field `{token}`: {what}")
        }
        None if message.is_empty() => "is not understood".to_owned(),
        None => message,
    };
    let problem = if normalized == text.trim() {
        problem
    } else {
        format!("{problem} (read as `{normalized}`)")
    };
    let hint = match form {
        Form::Crontab => format!(
            "the 5-field form is `minute hour day-of-month month day-of-week`, e.g. `30 9 * * MON-FRI` (09:30 Monday to \
             Friday), with minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week SUN-SAT or 0-7 \
             (0 and 7 = SUN); {ITEMS_HINT}"
        ),
        Form::Quartz | Form::Shorthand => format!(
            "the 6/7-field form is `second minute hour day-of-month month day-of-week [year]`, e.g. `0 30 9 * * MON-FRI` \
             (09:30:00 Monday to Friday), with second and minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or \
             JAN-DEC, day-of-week SUN-SAT or 1-7 (1 = SUN), year 1970-2100; {ITEMS_HINT}"
        ),
    };
    ScheduleError::CronInvalid {
        text: text.to_owned(),
        problem,
        hint,
    }
}

/// The index and text of the whitespace-separated field at byte `column` of `normalized` (or the
/// next field if the column falls on a space).
fn field_at(normalized: &str, column: usize) -> Option<(usize, &str)> {
    let mut pos = 0;
    for (index, token) in normalized.split(' ').enumerate() {
        let end = pos + token.len();
        if column <= end && !token.is_empty() {
            return Some((index, token));
        }
        pos = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        CronSpec::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .normalized()
            .to_owned()
    }

    fn error(text: &str) -> String {
        match CronSpec::parse(text) {
            Ok(spec) => panic!("`{text}` was accepted as `{}`", spec.normalized()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn crontab_form_gets_seconds_and_named_days() {
        assert_eq!(normalized("0 9 * * 1-5"), "0 0 9 * * MON,TUE,WED,THU,FRI");
        assert_eq!(normalized("*/15 * * * *"), "0 */15 * * * *");
        assert_eq!(normalized("0 0 * * 0"), "0 0 0 * * SUN");
        assert_eq!(normalized("0 0 * * 7"), "0 0 0 * * SUN");
        assert_eq!(normalized("30 2 1 * *"), "0 30 2 1 * *");
    }

    #[test]
    fn crontab_day_of_week_items() {
        let dow = |field: &str| normalized(&format!("0 0 * * {field}")).rsplit(' ').next().unwrap().to_owned();
        assert_eq!(dow("*"), "*");
        assert_eq!(dow("MON-FRI"), "MON,TUE,WED,THU,FRI");
        assert_eq!(dow("mon-fri"), "MON,TUE,WED,THU,FRI");
        assert_eq!(dow("sat,sun"), "SUN,SAT");
        assert_eq!(dow("Monday,Wednesday"), "MON,WED");
        assert_eq!(dow("*/2"), "SUN,TUE,THU,SAT");
        assert_eq!(dow("1-5/2"), "MON,WED,FRI");
        assert_eq!(dow("MON-FRI/2"), "MON,WED,FRI");
        assert_eq!(dow("5-7"), "SUN,FRI,SAT");
        assert_eq!(dow("FRI-SUN"), "SUN,FRI,SAT");
        assert_eq!(dow("0-6"), "*");
        assert_eq!(dow("1,3,5"), "MON,WED,FRI");
        assert_eq!(dow("6,0"), "SUN,SAT");
    }

    #[test]
    fn crontab_day_of_week_refusals_say_how_to_fix() {
        for (text, needle) in [
            ("0 0 * * 5L", "6-field"),
            ("0 0 * * L", "6-field"),
            ("0 0 * * 6#3", "6-field"),
            ("0 0 * * ?", "6-field"),
            ("0 0 * * 8", "0-7"),
            ("0 0 * * XYZ", "SUN, MON"),
            ("0 0 * * 5-1", "runs backwards"),
            ("0 0 * * 1/2", "1-5/2"),
            ("0 0 * * */0", "step"),
            ("0 0 * * 1,,2", "empty item"),
        ] {
            let message = error(text);
            assert!(message.contains(&format!("`{text}`")), "{message}");
            assert!(message.contains(needle), "`{text}`: {message}");
        }
    }

    #[test]
    fn crontab_form_refuses_both_day_fields_restricted() {
        let message = error("0 0 13 * 5");
        assert!(message.contains("`0 0 13 * 5`") && message.contains("EITHER"), "{message}");
        assert!(message.contains("`0 0 0 13 * FRI`"), "the fix is spelled out: {message}");
        // A day field starting with `*` makes crontab AND them too, so these mean the same in both.
        assert_eq!(normalized("0 0 */2 * 1"), "0 0 0 */2 * MON");
        assert_eq!(normalized("0 0 13 * */2"), "0 0 0 13 * SUN,TUE,THU,SAT");
    }

    #[test]
    fn quartz_forms_pass_through_collapsed() {
        let spec = CronSpec::parse("  0 30   9 * * MON-FRI ").unwrap();
        assert_eq!(spec.as_written(), "  0 30   9 * * MON-FRI ");
        assert_eq!(spec.normalized(), "0 30 9 * * MON-FRI");
        assert_eq!(normalized("0 0 12 1 1 * 2027"), "0 0 12 1 1 * 2027");
        assert_eq!(normalized("0 0 9 ? * 2"), "0 0 9 ? * 2");
    }

    #[test]
    fn shorthands_expand() {
        assert_eq!(normalized("@daily"), "0 0 0 * * *");
        assert_eq!(normalized("@MIDNIGHT"), "0 0 0 * * *");
        assert_eq!(normalized("@hourly"), "0 0 * * * *");
        assert_eq!(normalized("@weekly"), "0 0 0 * * SUN");
        assert_eq!(normalized("@monthly"), "0 0 0 1 * *");
        assert_eq!(normalized("@annually"), "0 0 0 1 1 *");
        for text in ["@reboot", "@daily 5", "@"] {
            let message = error(text);
            assert!(message.contains(&format!("`{text}`")) && message.contains("@hourly"), "{message}");
        }
    }

    #[test]
    fn bad_expressions_name_the_expression_and_the_field() {
        assert_eq!(CronSpec::parse("   "), Err(ScheduleError::EmptyCron));
        let message = error("0 9 * *");
        assert!(
            message.contains("`0 9 * *`") && message.contains("4 field") && message.contains("minute hour"),
            "{message}"
        );
        assert!(error("0 0 0 0 * * * *").contains("8 field"));

        let message = error("61 * * * *");
        assert!(
            message.contains("`61 * * * *`") && message.contains("minute field `61`"),
            "{message}"
        );
        assert!(
            message.contains("read as `0 61 * * * *`") && message.contains("5-field form is"),
            "{message}"
        );

        let message = error("0 0 25 * * *");
        assert!(
            message.contains("`0 0 25 * * *`") && message.contains("hour field `25`"),
            "{message}"
        );
        assert!(message.contains("6/7-field form is") && !message.contains("read as"), "{message}");

        let message = error("0 0 9 * * MON-FRX");
        assert!(
            message.contains("day-of-week field `MON-FRX`") && message.contains("FRX"),
            "{message}"
        );

        let message = error("0 0 9 * * 0");
        assert!(
            message.contains("day-of-week field `0`") && message.contains("1 = SUN"),
            "{message}"
        );

        let message = error("0 0 0 1 1 * 2200");
        assert!(message.contains("year field `2200`: years run from 1970 to 2100"), "{message}");

        let message = error("0 0 9 * * 6#3");
        assert!(
            message.contains("day-of-week field `6#3`") && message.contains("`15-21`"),
            "{message}"
        );
        let message = error("0 0 9 L * *");
        assert!(
            message.contains("day-of-month field `L`") && message.contains("not supported"),
            "{message}"
        );
        let message = error("0 60 * * * *");
        assert!(message.contains("must be at most 59"), "{message}");

        let message = error("0 0 9 * JANUARYX *");
        assert!(message.contains("month field `JANUARYX`"), "{message}");
    }

    #[test]
    fn equality_is_by_meaning_and_serde_uses_the_written_text() {
        assert_eq!(
            CronSpec::parse("0 9 * * 1-5").unwrap(),
            CronSpec::parse("0 0 9 * * MON,TUE,WED,THU,FRI").unwrap()
        );
        let spec: CronSpec = serde_json::from_str("\"0 9 * * 1-5\"").unwrap();
        assert_eq!(serde_json::to_string(&spec).unwrap(), "\"0 9 * * 1-5\"");
        let err = serde_json::from_str::<CronSpec>("\"0 9 * *\"").unwrap_err().to_string();
        assert!(err.contains("`0 9 * *`"), "{err}");
    }
}

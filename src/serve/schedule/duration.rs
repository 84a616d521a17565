//! Human durations for blackout `duration`, `jitter` and the catch-up `window`: `parse_duration`
//! ("90s", "5m", "1h30m", "2d", "250ms"), its inverse `format_duration`, and `duration_text`, a serde
//! adapter that reads and writes them as strings.

use std::time::Duration;

use super::ScheduleError;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Units from largest to smallest: name and length in nanoseconds.
const UNITS: [(&str, u128); 5] = [
    ("d", 86_400 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("s", NANOS_PER_SECOND),
    ("ms", 1_000_000),
];

/// Parses a duration written as whole numbers with units, largest unit first, each unit at most once:
/// `d` (24 h), `h`, `m` (minutes), `s`, `ms`. Spaces between parts are allowed (`1h 30m`); `0` alone is
/// zero. Months and years (whose lengths vary) and fractions are not accepted.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let fail = |problem: String| ScheduleError::Duration {
        text: text.to_owned(),
        problem,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail("is empty; write e.g. `90s`, `5m`, `1h30m` or `2d`".to_owned()));
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.contains(['.', ',']) {
        return Err(fail(
            "fractions are not supported; write whole units, e.g. `1h30m` instead of `1.5h`".to_owned(),
        ));
    }
    let mut total: u128 = 0;
    let mut previous_rank: Option<usize> = None;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(fail(format!(
                "expected a number at `{rest}`; write e.g. `90s`, `5m`, `1h30m` or `2d`"
            )));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| fail("is too long".to_owned()))?;
        rest = &rest[digits..];
        let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..letters];
        if unit.is_empty() {
            return Err(fail(format!(
                "the number `{number}` has no unit; add one of d, h, m, s, ms, e.g. `{number}s`"
            )));
        }
        let Some(rank) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(fail(format!(
                "unknown unit `{unit}`; use d (days), h, m (minutes), s or ms, in lowercase (months and years are not supported)"
            )));
        };
        if previous_rank.is_some_and(|previous| rank <= previous) {
            return Err(fail("write each unit once, largest first, e.g. `1h30m` or `2d12h`".to_owned()));
        }
        previous_rank = Some(rank);
        total = number
            .checked_mul(UNITS[rank].1)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| fail("is too long".to_owned()))?;
        rest = rest[letters..].trim_start();
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| fail("is too long".to_owned()))?;
    Ok(Duration::new(seconds, (total % NANOS_PER_SECOND) as u32))
}

/// Writes a duration the way `parse_duration` reads it (`1h30m`, `2d`, `250ms`, `0s`); below a
/// millisecond is dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut rest = duration.as_nanos();
    let mut out = String::new();
    for (name, nanos) in UNITS {
        let count = rest / nanos;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            rest %= nanos;
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// Serde adapter for `std::time::Duration` fields written as `parse_duration` text:
/// `#[serde(with = "duration_text")]`.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as `format_duration` text.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*duration))
    }

    /// Reads `parse_duration` text.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("2d12h").unwrap(), Duration::from_secs(216_000));
        assert_eq!(parse_duration("1m30s250ms").unwrap(), Duration::from_millis(90_250));
        assert_eq!(parse_duration(" 8h ").unwrap(), Duration::from_secs(28_800));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn errors_quote_the_input_and_say_how_to_write_it() {
        for (text, needle) in [
            ("", "is empty"),
            ("5", "no unit"),
            ("1.5h", "fractions"),
            ("5M", "lowercase"),
            ("3mo", "months"),
            ("30m1h", "largest first"),
            ("1h1h", "each unit once"),
            ("h", "expected a number"),
            ("-5m", "expected a number"),
            ("99999999999999999999999d", "too long"),
        ] {
            let message = parse_duration(text).unwrap_err().to_string();
            assert!(message.starts_with(&format!("duration `{text}`")), "{message}");
            assert!(message.contains(needle), "`{text}`: {message}");
        }
    }

    #[test]
    fn format_is_the_inverse_of_parse() {
        for text in ["0s", "90ms", "1m30s", "1h30m", "2d", "1d2h3m4s5ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}

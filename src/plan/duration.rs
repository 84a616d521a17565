//! Human durations in plans: `90s`, `5m`, `1h30m`, `250ms`, and the option type that reads
//! one within bounds ([`HumanDuration`]).

use std::time::Duration;

pub const SECOND_MS: u64 = 1000;
pub const HOUR_MS: u64 = 3600 * SECOND_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// The longest duration any option takes unless it says otherwise.
pub const YEAR_MS: u64 = 366 * DAY_MS;

/// A duration option between `MIN_MS` and `MAX_MS` milliseconds. It is parsed and
/// range-checked where the options are read: by the compiler, through the bounds its JSON
/// Schema carries, for values written in the plan; by deserialization, with the same
/// bounds, for values that expressions compute at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration<const MIN_MS: u64 = 0, const MAX_MS: u64 = YEAR_MS>(pub Duration);

/// Time between checks or ticks: never zero.
pub type Interval = HumanDuration<1, DAY_MS>;
/// A time limit: never zero.
pub type Limit = HumanDuration<1, { 30 * DAY_MS }>;

impl<const MIN_MS: u64, const MAX_MS: u64> HumanDuration<MIN_MS, MAX_MS> {
    pub fn get(self) -> Duration {
        self.0
    }

    /// Parses and checks `text` against the bounds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let d = parse(text)?;
        check_bounds(text, d, MIN_MS, MAX_MS)?;
        Ok(HumanDuration(d))
    }
}

/// Whether `d` (written as `text`) lies within `[min_ms, max_ms]`, in words if not.
pub fn check_bounds(text: &str, d: Duration, min_ms: u64, max_ms: u64) -> Result<(), String> {
    let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(max_ms));
    if d < min {
        return Err(format!("`{text}` is too short: the least allowed here is {}", format(min)));
    }
    if d > max {
        return Err(format!("`{text}` is too long: the most allowed here is {}", format(max)));
    }
    Ok(())
}

impl<'de, const MIN_MS: u64, const MAX_MS: u64> serde::Deserialize<'de> for HumanDuration<MIN_MS, MAX_MS> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<const MIN_MS: u64, const MAX_MS: u64> serde::Serialize for HumanDuration<MIN_MS, MAX_MS> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

/// The JSON Schema `format` the compiler's structural check validates with [`parse`] and the
/// bounds in `x-lifeboat-min-ms` / `x-lifeboat-max-ms`.
pub const DURATION_FORMAT: &str = "lifeboat-duration";
pub const MIN_MS_KEYWORD: &str = "x-lifeboat-min-ms";
pub const MAX_MS_KEYWORD: &str = "x-lifeboat-max-ms";

impl<const MIN_MS: u64, const MAX_MS: u64> schemars::JsonSchema for HumanDuration<MIN_MS, MAX_MS> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("HumanDuration_{MIN_MS}_{MAX_MS}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": format!(
                "A duration such as `90s`, `5m`, `1h30m` or `250ms`, from {} to {}.",
                format(Duration::from_millis(MIN_MS)),
                format(Duration::from_millis(MAX_MS))
            ),
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "format": DURATION_FORMAT,
            "x-lifeboat-min-ms": MIN_MS,
            "x-lifeboat-max-ms": MAX_MS,
        })
    }
}

/// Parses a human duration. Units: `ms`, `s`, `m`, `h`, `d`; parts add up (`1h30m`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. `90s`, `5m` or `1h30m`".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration: expected a number at `{rest}`; write e.g. `90s`, `5m` or `1h30m`"
            ));
        }
        let amount: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is not a duration: the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let part = match unit {
            "ms" => Duration::from_millis(amount),
            "s" => Duration::from_secs(amount),
            "m" => Duration::from_secs(amount.saturating_mul(60)),
            "h" => Duration::from_secs(amount.saturating_mul(3600)),
            "d" => Duration::from_secs(amount.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "`{text}` has no unit; write `{amount}s` for seconds (units: ms, s, m, h, d)"
                ));
            }
            other => {
                return Err(format!(
                    "`{text}` has an unknown unit `{}`; write e.g. `90s`, `5m` or `1h30m` (units: ms, s, m, h, d)",
                    other.trim()
                ));
            }
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way plans write it, for messages and reports.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        if ms < 1000 {
            return format!("{ms}ms");
        }
        return format!("{:.1}s", d.as_secs_f64());
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn explains_bad_durations() {
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("5 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse("soon").unwrap_err().contains("expected a number"));
    }

    #[test]
    fn bounded_durations_refuse_what_is_out_of_range() {
        assert_eq!(Interval::parse("250ms").unwrap().get(), Duration::from_millis(250));
        assert!(Interval::parse("0s").unwrap_err().contains("too short"));
        assert!(Interval::parse("2d").unwrap_err().contains("too long"));
        let from_json: Result<Interval, _> = serde_json::from_value(serde_json::json!("0ms"));
        assert!(from_json.unwrap_err().to_string().contains("the least allowed here is"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["90s", "1h30m", "250ms", "5m", "366d", "1d2h"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }
}

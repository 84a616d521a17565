//! Whole-number options with bounds (counts, thresholds, attempts), range-checked where they
//! are read, like [`super::duration::HumanDuration`]: by the compiler through the schema's
//! `minimum`/`maximum`, by deserialization for values computed at run time.

/// A whole number from `MIN` to `MAX`. Accepts a number, or a string of digits (what a template
/// such as `"${{ params.n }}"` renders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Count<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Count<MIN, MAX> {
    pub fn get(self) -> u64 {
        self.0
    }

    /// `n`, or the nearest bound: for defaults written in code.
    pub const fn clamped(n: u64) -> Self {
        Count(if n < MIN {
            MIN
        } else if n > MAX {
            MAX
        } else {
            n
        })
    }

    pub fn new(n: u64) -> Result<Self, String> {
        if !(MIN..=MAX).contains(&n) {
            return Err(format!("{n} is out of range: use a whole number from {MIN} to {MAX}"));
        }
        Ok(Count(n))
    }
}

impl<const MIN: u64, const MAX: u64> Default for Count<MIN, MAX> {
    fn default() -> Self {
        Count(MIN)
    }
}

impl<'de, const MIN: u64, const MAX: u64> serde::Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number from {MIN} to {MAX}")))?;
        Count::new(n).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: u64, const MAX: u64> schemars::JsonSchema for Count<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Count_{MIN}_{MAX}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "minimum": MIN, "maximum": MAX })
    }
}

//! Sizes in options — `512MiB`, `2GB`, `4096` (bytes) — read within bounds like
//! [`super::duration::HumanDuration`]: by the compiler through the schema's format and
//! bounds, by deserialization for values computed at run time.

pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// A size from `MIN` to `MAX` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Size<const MIN: u64 = 0, const MAX: u64 = TIB>(u64);

pub const SIZE_FORMAT: &str = "lifeboat-size";
pub const MIN_KEYWORD: &str = "x-lifeboat-min-bytes";
pub const MAX_KEYWORD: &str = "x-lifeboat-max-bytes";

/// Parses `512MiB`, `1.5GB`, `4096`.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" | "K" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" | "M" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        _ => return Err(format!("`{text}` is not a size; write e.g. 512MiB, 2GiB or a number of bytes")),
    };
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("`{text}` is not a size; write e.g. 512MiB"))?;
    let bytes = n * factor as f64;
    if bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes as u64)
}

/// Whether `bytes` (written as `text`) lies within `[min, max]`, in words if not.
pub fn check_bounds(text: &str, bytes: u64, min: u64, max: u64) -> Result<(), String> {
    if bytes < min {
        return Err(format!("`{text}` is too small: the least allowed here is {min} bytes"));
    }
    if bytes > max {
        return Err(format!("`{text}` is too large: the most allowed here is {max} bytes"));
    }
    Ok(())
}

impl<const MIN: u64, const MAX: u64> Size<MIN, MAX> {
    pub fn bytes(self) -> u64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = parse(text)?;
        check_bounds(text, bytes, MIN, MAX)?;
        Ok(Size(bytes))
    }
}

impl<'de, const MIN: u64, const MAX: u64> serde::Deserialize<'de> for Size<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(serde::de::Error::custom(format!("expected a size such as `512MiB`, found {other}"))),
        };
        Size::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: u64, const MAX: u64> schemars::JsonSchema for Size<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Size_{MIN}_{MAX}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "description": format!("A size such as `512MiB`, `2GiB` or a number of bytes, from {MIN} to {MAX} bytes."),
            "format": SIZE_FORMAT,
            "x-lifeboat-min-bytes": MIN,
            "x-lifeboat-max-bytes": MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_keep_to_their_bounds() {
        assert_eq!(parse("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse("4096").unwrap(), 4096);
        assert!(parse("lots").is_err());
        assert!(parse("1e400").is_err());
        assert!(parse("99999999999999TiB").unwrap_err().contains("too large"));
        assert!(Size::<1, 1024>::parse("2KiB").unwrap_err().contains("the most allowed"));
        let from_json: Result<Size<1, 100>, _> = serde_json::from_value(serde_json::json!(0));
        assert!(from_json.is_err());
    }
}

//! Fractions and percentages in options, range-checked where they are read (like
//! [`super::duration::HumanDuration`]): by the compiler through the schema's bounds, by
//! deserialization for values computed at run time.

/// A fraction from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Ratio(pub f64);

/// A percentage from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Percent(pub f64);

macro_rules! bounded_number {
    ($name:ident, $max:literal, $what:literal) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = f64::deserialize(d)?;
                if !(0.0..=$max).contains(&n) {
                    return Err(serde::de::Error::custom(format!("{n} is not {}", $what)));
                }
                Ok($name(n))
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "number", "minimum": 0.0, "maximum": $max, "description": $what })
            }
        }
    };
}

bounded_number!(Ratio, 1.0, "a fraction from 0 to 1");
bounded_number!(Percent, 100.0, "a percentage from 0 to 100");

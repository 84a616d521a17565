//! Options the monitoring kinds share (`validation.prometheus_*`, `alertmanager.*`): where
//! the server is and how to authenticate, conditions on a value, and label matchers, each
//! parsed when the plan is compiled so a typo is reported with its step.

use crate::plan::catalog::{GRAMMAR_KEYWORD, Grammar};
use lifeboat_validation::monitoring::Auth;
use lifeboat_validation::monitoring::alertmanager::{MATCHER_SYNTAX, Matcher};
use lifeboat_validation::monitoring::prometheus::{OnEmpty, SeriesRule};
use lifeboat_validation::threshold::{SYNTAX, Threshold};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Default time limit of one request to a monitoring API.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A plan option written as text and parsed into `$inner` by its `FromStr`.
macro_rules! parsed_text {
    ($(#[$meta:meta])* $name:ident($inner:ty), $grammar:literal, $description:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::Text::deserialize(d)?.0.parse().map($name).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": $description,
                    GRAMMAR_KEYWORD: $grammar,
                })
            }
        }
    };
}

parsed_text!(
    /// A condition on a number: `< 0.01`, `== 1`, `within [0.5, 2]`.
    Condition(Threshold),
    "condition",
    format!("A condition on the value: {SYNTAX}.")
);

parsed_text!(
    /// A label matcher: `alertname="DbDown"`, `severity=~"page|critical"`.
    LabelMatcher(Matcher),
    "label-matcher",
    format!("A label matcher: {MATCHER_SYNTAX}.")
);

/// The grammars of these options, for the compiler to check literal values with.
pub const GRAMMARS: &[Grammar] = &[
    ("condition", |s| s.parse::<Threshold>().map(drop)),
    ("label-matcher", |s| s.parse::<Matcher>().map(drop)),
];

/// Credentials for a monitoring API; take them from `${{ env.NAME }}` so they stay masked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthOption {
    /// `Authorization: Bearer <token>`.
    Bearer(super::Text),
    /// HTTP basic authentication.
    Basic {
        username: super::Text,
        #[serde(default)]
        password: Option<super::Text>,
    },
}

impl AuthOption {
    pub fn to_auth(&self) -> Auth {
        match self {
            AuthOption::Bearer(token) => Auth::Bearer(token.0.clone()),
            AuthOption::Basic { username, password } => Auth::Basic {
                username: username.0.clone(),
                password: password.as_ref().map(|p| p.0.clone()),
            },
        }
    }
}

pub fn auth(option: &Option<AuthOption>) -> Option<Auth> {
    option.as_ref().map(AuthOption::to_auth)
}

/// Which series a PromQL check judges when the query returns several.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeriesOption {
    /// Exactly one series or a scalar (default); several are an error naming them.
    #[default]
    One,
    /// Every series must meet the condition.
    All,
    /// At least one must.
    Any,
}

impl From<SeriesOption> for SeriesRule {
    fn from(o: SeriesOption) -> SeriesRule {
        match o {
            SeriesOption::One => SeriesRule::One,
            SeriesOption::All => SeriesRule::All,
            SeriesOption::Any => SeriesRule::Any,
        }
    }
}

/// What a PromQL check makes of an empty result.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnEmptyOption {
    /// Fail at once (default): the query names nothing.
    #[default]
    Fail,
    /// Pass: no series means nothing is wrong (alert-style queries).
    Pass,
    /// Keep polling: the series appear later (after a restart's first scrape).
    Wait,
}

impl From<OnEmptyOption> for OnEmpty {
    fn from(o: OnEmptyOption) -> OnEmpty {
        match o {
            OnEmptyOption::Fail => OnEmpty::Fail,
            OnEmptyOption::Pass => OnEmpty::Pass,
            OnEmptyOption::Wait => OnEmpty::Wait,
        }
    }
}

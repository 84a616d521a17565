//! `validation.sql_probe`: poll a query until its first value equals `expect` or lies
//! within `min`/`max`.

use super::validation::run_probe;
use super::{Outputs, StepContext, StepError, Text};
use crate::plan::model::HumanDuration;
use lifeboat_validation::probe::{Probe, sql::Expectation, sql::SqlProbe};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `postgres://user@host:port/db`.
    pub dsn: Text,
    pub query: String,
    /// The expected first value (compared as text; booleans as `t`/`f`).
    #[serde(default)]
    pub expect: Option<Text>,
    /// Inclusive numeric bounds of the first value.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// `passing` (default: wait for service) or `failing` (wait for an outage).
    #[serde(default)]
    pub until: super::validation::UntilOption,
    /// Checks in a row with that outcome (default 1; a failure threshold with `failing`).
    #[serde(default)]
    pub consecutive: Option<u32>,
    /// Time between checks (default 1s).
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    /// Give up after this long (default 60s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

pub fn probe(o: &Options) -> Result<Probe, StepError> {
    let expect = match (&o.expect, o.min, o.max) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(StepError::terminal("use either `expect` or `min`/`max`, not both"));
        }
        (Some(Text(v)), None, None) => Expectation::Equals(v.clone()),
        (None, None, None) => Expectation::Succeeds,
        (None, min, max) => Expectation::Between { min, max },
    };
    Ok(Probe::Sql(SqlProbe {
        dsn: o.dsn.0.clone(),
        query: o.query.clone(),
        expect,
    }))
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    run_probe(
        probe(&options)?,
        super::validation::Polling {
            interval: &options.interval,
            timeout: &options.timeout,
            until: &options.until,
            consecutive: options.consecutive,
        },
        cx,
    )
    .await
}

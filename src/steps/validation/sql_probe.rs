//! `validation.sql_probe`: poll a query until its first value equals `expect` or lies
//! within `min`/`max`.

use crate::steps::{StepError, Text};
use lifeboat_validation::probe::{Probe, sql::Expectation, sql::SqlProbe};
use schemars::JsonSchema;
use serde::Deserialize;

super::probe_options! {
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    pub query: String,
    /// The expected first value (compared as text; booleans as `t`/`f`).
    #[serde(default)]
    pub expect: Option<Text>,
    /// Inclusive numeric bounds of the first value.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}
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

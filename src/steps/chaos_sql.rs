//! `chaos.sql`: run a destructive statement (an accidental `DROP TABLE`). Outputs the
//! time just before it (`started_at`, a restore target) and its commit (`injected_at`).

use super::chaos::activate;
use super::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The primary, `postgres://user@host:port/db`.
    pub dsn: Text,
    /// The statement(s), e.g. `DROP TABLE orders`.
    pub statement: String,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    activate(cx, crate::chaos::sql::inject(&options.dsn.0, &options.statement), None, false).await
}

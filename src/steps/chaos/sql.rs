//! `chaos.sql`: run a destructive statement (an accidental `DROP TABLE`). Outputs the
//! time just before it (`started_at`), its transaction id (`xid`: restore to it with
//! `target_exclusive` to undo exactly this), and its commit (`injected_at`).

use super::activate;
use crate::steps::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The primary, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// The statement(s), e.g. `DROP TABLE orders`.
    pub statement: String,
    /// Run it in a transaction and output its `xid` (default true); false for statements
    /// that refuse transaction blocks.
    #[serde(default = "default_true")]
    pub transaction: bool,
}

fn default_true() -> bool {
    true
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    activate(
        cx,
        crate::chaos::sql::inject(&options.dsn.0, &options.statement, options.transaction),
        None,
        false,
    )
    .await
}

//! `validation.sql_compare`: compare tables of two PostgreSQL databases (row counts and
//! order-independent checksums, optionally up to a cut-off); fails on any difference.

use crate::steps::outputs_of;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_validation::compare::{self, CompareOptions, Cutoff};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The reference database.
    pub source_dsn: crate::steps::dsn::Dsn,
    /// The database checked against it (e.g. the restored copy).
    pub target_dsn: crate::steps::dsn::Dsn,
    /// Tables to compare (`table` or `schema.table`); default every table in `public`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Compare only rows with `column <= value`, in the tables that have the column.
    #[serde(default)]
    pub cutoff: Option<CutoffOptions>,
    /// How many differing keys to list per table (default 10).
    #[serde(default = "default_sample")]
    pub sample: crate::plan::count::Count<0, 100_000>,
    /// Fail the step when tables differ (default true); false only reports.
    #[serde(default = "default_true")]
    pub fail_on_difference: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CutoffOptions {
    pub column: String,
    pub value: Text,
}

fn default_sample() -> crate::plan::count::Count<0, 100_000> {
    crate::plan::count::Count::clamped(10)
}

fn default_true() -> bool {
    true
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let compare_options = CompareOptions {
        source_dsn: options.source_dsn.0,
        target_dsn: options.target_dsn.0,
        tables: options.tables,
        cutoff: options.cutoff.map(|c| Cutoff {
            column: c.column,
            value: c.value.0,
        }),
        sample: options.sample.get() as usize,
        sample_row_limit: 2_000_000,
    };
    let report = tokio::select! {
        r = compare::compare(&compare_options) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let differing: Vec<String> = report
        .differing()
        .map(|t| {
            format!(
                "{} (rows {} vs {}{}{})",
                t.table,
                t.source_rows.map_or("missing".into(), |n| n.to_string()),
                t.target_rows.map_or("missing".into(), |n| n.to_string()),
                if t.differing_keys.is_empty() {
                    String::new()
                } else {
                    format!(", keys {}", t.differing_keys.join(" "))
                },
                t.note.as_ref().map(|n| format!(", {n}")).unwrap_or_default()
            )
        })
        .collect();
    if options.fail_on_difference && !differing.is_empty() {
        return Err(StepError::terminal(format!("tables differ: {}", differing.join("; "))));
    }
    let mut out = outputs_of(&report);
    out.insert("differing".into(), differing.into());
    Ok(out)
}

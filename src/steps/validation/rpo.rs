//! `validation.rpo`: RPO and rows lost, from the canary's acknowledged writes (journal
//! side channel) and the canary rows the recovered database holds.

use super::canary::default_table;
use crate::evidence::canary::CanaryAck;
use crate::evidence::outcome::Outcome;
use crate::steps::background::Class;
use crate::steps::{Outputs, StepContext, StepError, Text};
use crate::steps::{parse_time, timestamp};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The recovered database, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// The id of the `validation.canary` step.
    pub canary: String,
    /// When the disaster happened, usually `${{ steps.<fault>.outputs.injected_at }}`.
    pub disaster_at: Text,
    /// The canary's table (default `lifeboat_canary`).
    #[serde(default = "default_table")]
    pub table: String,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let disaster_at = parse_time("disaster_at", &options.disaster_at, "use the fault step's `injected_at` output")?;
    // Acknowledgements reach the journal in batches; let the last batch before the
    // disaster land if the canary is still writing.
    if cx.run.holds(&options.canary, Class::Canary) && Utc::now() - disaster_at < chrono::Duration::seconds(1) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let records = cx.run.records::<CanaryAck>(&options.canary).await?;
    if records.is_empty() {
        return Err(StepError::terminal(format!(
            "the canary of step `{}` has no acknowledged writes in this run; did it start before the disaster?",
            options.canary
        )));
    }
    let acks: Vec<(i64, DateTime<Utc>)> = records.iter().map(|r| (r.seq, r.written_at)).collect();
    let report = lifeboat_validation::rpo::measure(&options.dsn.0, &options.table, &cx.run_id, &acks, disaster_at).await?;
    let mut out = report.to_outputs();
    out.insert("disaster_at".into(), timestamp(report.disaster_at));
    if let Some(t) = report.newest_present_written_at {
        out.insert("newest_present_written_at".into(), timestamp(t));
    }
    Ok(out)
}

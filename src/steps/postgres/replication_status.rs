//! `postgres.replication_status`: the standbys a primary streams to, their sync state and
//! lag; fails (retryably) while a named standby is missing, not synchronous when required,
//! or lags more than allowed — the gate before a planned switchover.

use crate::steps::outputs_of;
use crate::steps::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The primary, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// The standby (`application_name`) to judge; default: every connected standby.
    #[serde(default)]
    pub standby: Option<String>,
    /// Fail when a judged standby lags more bytes than this.
    #[serde(default)]
    pub max_lag_bytes: Option<crate::plan::count::Count<0, { i64::MAX as u64 }>>,
    /// Fail when a judged standby's replay lag exceeds this many seconds.
    #[serde(default)]
    pub max_lag_seconds: Option<f64>,
    /// Fail unless the judged standby replicates synchronously.
    #[serde(default)]
    pub require_sync: bool,
}

pub async fn run(options: Options, _cx: &StepContext) -> Result<Outputs, StepError> {
    let replicas = lifeboat_failover::postgres::status::replicas(&options.dsn.0).await?;
    let judged: Vec<_> = replicas
        .iter()
        .filter(|r| options.standby.as_ref().is_none_or(|s| &r.application_name == s))
        .collect();
    if judged.is_empty() {
        return Err(StepError::retryable(match &options.standby {
            Some(s) => format!("standby `{s}` is not connected to the primary"),
            None => "no standby is connected to the primary".into(),
        }));
    }
    let mut problems = Vec::new();
    for r in &judged {
        if r.state != "streaming" {
            problems.push(format!("{} is {}", r.application_name, r.state));
        }
        if options.require_sync && r.sync_state != "sync" {
            problems.push(format!("{} replicates {}, not sync", r.application_name, r.sync_state));
        }
        if let Some(max) = options.max_lag_bytes.map(|m| m.get() as i64)
            && r.lag_bytes > max
        {
            problems.push(format!("{} lags {} bytes (at most {max})", r.application_name, r.lag_bytes));
        }
        if let (Some(max), Some(lag)) = (options.max_lag_seconds, r.replay_lag_seconds)
            && lag > max
        {
            problems.push(format!("{} lags {lag:.3} s (at most {max})", r.application_name));
        }
    }
    if !problems.is_empty() {
        return Err(StepError::retryable(problems.join("; ")));
    }
    let mut out = Outputs::new();
    out.insert("replicas".into(), serde_json::to_value(&replicas).unwrap_or_default());
    let worst = judged.iter().map(|r| r.lag_bytes).max().unwrap_or(0);
    out.insert("lag_bytes".into(), worst.into());
    out.insert("sync_state".into(), judged[0].sync_state.clone().into());
    out.extend(outputs_of(&serde_json::json!({ "standbys": judged.len() })));
    Ok(out)
}

//! `traffic.route53`: UPSERT a DNS record (simple or weighted, optionally with a health
//! check) and wait until Route53 reports it `INSYNC`. Credentials come from the AWS chain
//! (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles…).

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::timestamp;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::route53::{self, RecordUpsert};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub hosted_zone_id: Text,
    /// Fully qualified record name, e.g. `db.example.com.`.
    pub name: Text,
    /// `A` (default), `AAAA`, `CNAME`, `TXT`…
    #[serde(default)]
    pub record_type: Option<String>,
    pub values: Vec<Text>,
    /// Default 60.
    #[serde(default)]
    pub ttl: Option<crate::plan::count::Count<0, 2_147_483_647>>,
    /// Weighted routing: this record's set identifier and weight.
    #[serde(default)]
    pub set_identifier: Option<Text>,
    #[serde(default)]
    pub weight: Option<crate::plan::count::Count<0, 255>>,
    #[serde(default)]
    pub health_check_id: Option<Text>,
    /// A Route53-compatible endpoint instead of AWS (e.g. moto's server for tests).
    #[serde(default)]
    pub endpoint_url: Option<Text>,
    #[serde(default)]
    pub region: Option<Text>,
    /// How long to wait for INSYNC (default 5m).
    #[serde(default)]
    pub wait: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let weighted = match (options.set_identifier, options.weight) {
        (Some(id), Some(w)) => Some((id.0, w.get() as i64)),
        (None, None) => None,
        _ => return Err(StepError::terminal("weighted records need both `set_identifier` and `weight`")),
    };
    let upsert = RecordUpsert {
        hosted_zone_id: options.hosted_zone_id.0,
        name: options.name.0,
        record_type: options.record_type.unwrap_or_else(|| "A".into()),
        values: options.values.into_iter().map(|v| v.0).collect(),
        ttl: options.ttl.map_or(60, |t| t.get() as i64),
        weighted,
        health_check_id: options.health_check_id.map(|h| h.0),
        endpoint_url: options.endpoint_url.map(|e| e.0),
        region: options.region.map(|r| r.0),
        wait: options.wait.map_or(Duration::from_secs(300), |d| d.get()),
    };
    let done = tokio::select! {
        r = route53::upsert(&upsert) => r?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = outputs_of(&done);
    out.insert("insync_at".into(), timestamp(done.insync_at));
    out.insert("submitted_at".into(), timestamp(done.submitted_at));
    Ok(out)
}

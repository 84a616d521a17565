//! Moving traffic with DNS: UPSERT a Route53 record (simple or weighted, optionally tied to
//! a health check) and wait until Route53 reports the change `INSYNC`.

use crate::error::{FailoverError, Result};
use aws_config::BehaviorVersion;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::Region;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RecordUpsert {
    pub hosted_zone_id: String,
    /// Fully qualified, e.g. `db.example.com.`.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`…
    pub record_type: String,
    pub values: Vec<String>,
    pub ttl: i64,
    /// For weighted routing: the record's identifier and weight.
    pub weighted: Option<(String, i64)>,
    pub health_check_id: Option<String>,
    /// A Route53-compatible endpoint instead of AWS (tests use moto's server).
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub wait: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upserted {
    pub change_id: String,
    pub submitted_at: DateTime<Utc>,
    pub insync_at: DateTime<Utc>,
}

async fn client(endpoint: Option<&str>, region: Option<&str>) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(region.unwrap_or("us-east-1").to_owned()))
        .load()
        .await;
    let mut config = aws_sdk_route53::config::Builder::from(&shared);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

fn aws_error(what: &str, e: impl std::fmt::Display + std::fmt::Debug) -> FailoverError {
    let text = format!("{e:?}");
    let terminal = [
        "InvalidChangeBatch",
        "NoSuchHostedZone",
        "InvalidInput",
        "AccessDenied",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    ]
    .iter()
    .any(|code| text.contains(code));
    FailoverError::Postgres {
        message: format!("Route53 {what}: {e} ({})", text.chars().take(300).collect::<String>()),
        retryable: !terminal,
    }
}

pub async fn upsert(r: &RecordUpsert) -> Result<Upserted> {
    if r.values.is_empty() {
        return Err(FailoverError::Invalid("values: give at least one record value".into()));
    }
    let client = client(r.endpoint_url.as_deref(), r.region.as_deref()).await;
    let mut set = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.record_type.as_str()))
        .ttl(r.ttl)
        .set_resource_records(Some(
            r.values
                .iter()
                .map(|v| {
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(|e| FailoverError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?,
        ));
    if let Some((id, weight)) = &r.weighted {
        set = set.set_identifier(id).weight(*weight);
    }
    if let Some(h) = &r.health_check_id {
        set = set.health_check_id(h);
    }
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set.build().map_err(|e| FailoverError::Invalid(e.to_string()))?)
        .build()
        .map_err(|e| FailoverError::Invalid(e.to_string()))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .comment("lifeboat traffic switch")
        .build()
        .map_err(|e| FailoverError::Invalid(e.to_string()))?;
    let submitted_at = Utc::now();
    let out = client
        .change_resource_record_sets()
        .hosted_zone_id(&r.hosted_zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| aws_error("UPSERT", aws_sdk_route53::error::DisplayErrorContext(e)))?;
    let info = out
        .change_info()
        .ok_or_else(|| FailoverError::Invalid("Route53 returned no change info".into()))?;
    let change_id = info.id().to_owned();
    let mut status = info.status().clone();
    let deadline = tokio::time::Instant::now() + r.wait;
    while status != ChangeStatus::Insync {
        if tokio::time::Instant::now() >= deadline {
            return Err(FailoverError::NotReady(format!(
                "change {change_id} is still {status:?} after {:?}",
                r.wait
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let got = client
            .get_change()
            .id(&change_id)
            .send()
            .await
            .map_err(|e| aws_error("GetChange", aws_sdk_route53::error::DisplayErrorContext(e)))?;
        status = got.change_info().map(|c| c.status().clone()).unwrap_or(ChangeStatus::Pending);
    }
    Ok(Upserted {
        change_id,
        submitted_at,
        insync_at: Utc::now(),
    })
}

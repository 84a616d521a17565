//! Waiting, by watch, until an object meets a test: a condition of `status.conditions`
//! (`Available=True`) or a JSONPath value (`{.status.phase}` = `Completed`). The watch
//! survives dropped streams and 410 Gone (it lists again) and never reports success unless
//! the object says so.

use super::{api, error, resource};
use crate::BackupError;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::discovery::ApiCapabilities;
use kube::runtime::watcher;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// What the object must show.
#[derive(Debug, Clone)]
pub enum Test {
    /// `status.conditions[type=…].status` equals `status` (usually `True`).
    Condition { kind: String, status: String },
    /// A JSONPath in kubectl's form (`{.status.phase}`) yields `value` (compared as text).
    JsonPath { path: String, value: String },
    /// A judgement of the whole object: `Ok(Some(observed))` when met.
    Judge(fn(&Value) -> Result<Option<String>, String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct Met {
    pub met_at: DateTime<Utc>,
    /// What the object showed when it met the test.
    pub observed: String,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
}

/// A JSONPath in kubectl's braces form or the `$` form, as `$…`.
pub fn jsonpath(path: &str) -> String {
    let inner = path.trim().trim_start_matches('{').trim_end_matches('}').trim();
    if inner.starts_with('$') {
        inner.to_owned()
    } else {
        format!("${inner}")
    }
}

/// What `test` sees in `object`: `Ok(Some(observed))` when met, `Ok(None)` when not yet.
pub fn evaluate(test: &Test, object: &Value) -> Result<Option<String>, String> {
    match test {
        Test::Condition { kind, status } => {
            let found = object["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == kind.as_str()))
                .and_then(|c| c["status"].as_str());
            Ok((found == Some(status.as_str())).then(|| format!("{kind}={status}")))
        }
        Test::JsonPath { path, value } => {
            use jsonpath_rust::JsonPath;
            let found = object
                .query(&jsonpath(path))
                .map_err(|e| format!("invalid JSONPath `{path}`: {e}"))?;
            let text = found.first().map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            Ok((text.as_deref() == Some(value.as_str())).then(|| format!("{path}={value}")))
        }
        Test::Judge(judge) => judge(object),
    }
}

/// Waits until `name` meets `test`, for at most `limit`.
pub async fn wait_for(
    client: &kube::Client,
    (api_version, kind): (&str, &str),
    name: &str,
    namespace: Option<&str>,
    test: &Test,
    limit: Duration,
) -> Result<Met, BackupError> {
    let (ar, caps): (ApiResource, ApiCapabilities) = resource(client, api_version, kind).await?;
    let api = api(client, &ar, &caps, namespace);
    let mut last = String::from("the object does not exist yet");
    let watched = async {
        let mut objects = Box::pin(watcher::watch_object(api.clone(), name));
        while let Some(event) = objects.next().await {
            match event {
                Ok(Some(object)) => {
                    let object: DynamicObject = object;
                    let value = serde_json::to_value(&object).unwrap_or_default();
                    match evaluate(test, &value) {
                        Ok(Some(observed)) => {
                            return Ok(Met {
                                met_at: Utc::now(),
                                observed,
                                resource_version: object.metadata.resource_version.clone(),
                                generation: object.metadata.generation,
                            });
                        }
                        Ok(None) => last = summary(&value),
                        Err(e) => return Err(BackupError::Invalid(e)),
                    }
                }
                Ok(None) => last = "the object does not exist".into(),
                Err(watcher::Error::WatchError(s)) if s.code == 401 || s.code == 403 => {
                    return Err(error(kube::Error::Api(s), &format!("watching {kind} {name}")));
                }
                Err(e) => {
                    tracing::warn!(kind, name, error = %e, "watch interrupted; watching again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Err(BackupError::NotReady(format!("the watch of {kind} {name} ended")))
    };
    match tokio::time::timeout(limit, watched).await {
        Ok(result) => result,
        Err(_) => Err(BackupError::NotReady(format!(
            "{kind} {name} did not meet the wait within {limit:?}; last seen: {last}"
        ))),
    }
}

/// A short account of an object's state for messages.
fn summary(object: &Value) -> String {
    let status = &object["status"];
    if status.is_null() {
        return "no status yet".into();
    }
    let text = status.to_string();
    if text.chars().count() > 300 {
        format!("status {}…", text.chars().take(300).collect::<String>())
    } else {
        format!("status {text}")
    }
}

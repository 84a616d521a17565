//! Writing what the operator observed back to the resources: conditions kept the way
//! Kubernetes keeps them, and status writes made only when something changed (every replica
//! reconciles, so an unchanged status must cost no write).

use super::crd::Condition;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The condition `type_` as observed now; its transition time moves only when its status
/// changes.
pub fn condition(existing: &[Condition], type_: &str, ok: bool, reason: &str, message: String, generation: Option<i64>) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = existing
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(now);
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// Now as Kubernetes writes times (RFC 3339, seconds, UTC).
pub fn now() -> String {
    rfc3339(chrono::Utc::now())
}

pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes `status` to the status subresource of `object` unless it equals `current` (the
/// status `object` holds). The write is refused (409/422) if the object changed since it was
/// read, so a replica that read the journal earlier cannot overwrite a newer status; the next
/// reconcile writes again from fresher state.
pub async fn write<K, S>(api: &Api<K>, object: &K, current: Option<&S>, status: &S) -> Result<bool, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let mut ops = Vec::new();
    if let Some(version) = object.meta().resource_version.as_deref() {
        ops.push(serde_json::json!({ "op": "test", "path": "/metadata/resourceVersion", "value": version }));
    }
    // The whole status is replaced, so a field that no longer applies goes (a merge would keep it).
    ops.push(serde_json::json!({ "op": "add", "path": "/status", "value": status }));
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).expect("a status serializes as a JSON patch value");
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch_status(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
    Ok(true)
}

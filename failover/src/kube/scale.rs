//! Scaling a Deployment or StatefulSet; the replicas it had are returned so that a
//! compensation can put them back.

use super::{api, error, resource};
use crate::FailoverError;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Serialize)]
pub struct Scaled {
    pub previous_replicas: i64,
    pub replicas: i64,
}

async fn workload(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
) -> Result<kube::Api<kube::api::DynamicObject>, FailoverError> {
    if !matches!(kind, "Deployment" | "StatefulSet") {
        return Err(FailoverError::Invalid(format!(
            "kind: `{kind}` cannot be scaled; use Deployment or StatefulSet"
        )));
    }
    let (ar, caps) = resource(client, "apps/v1", kind).await?;
    Ok(api(client, &ar, &caps, namespace))
}

/// The replicas the workload asks for now.
pub async fn replicas(client: &kube::Client, kind: &str, name: &str, namespace: Option<&str>) -> Result<i64, FailoverError> {
    let current = workload(client, kind, namespace)
        .await?
        .get(name)
        .await
        .map_err(|e| error(e, &format!("reading {kind} {name}")))?;
    Ok(current.data["spec"]["replicas"].as_i64().unwrap_or(1))
}

/// Sets the replicas; `previous_replicas` is what the caller read (and journaled) before.
pub async fn scale(
    client: &kube::Client,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    (previous_replicas, replicas): (i64, i64),
) -> Result<Scaled, FailoverError> {
    let api = workload(client, kind, namespace).await?;
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .map_err(|e| error(e, &format!("scaling {kind} {name}")))?;
    Ok(Scaled {
        previous_replicas,
        replicas,
    })
}

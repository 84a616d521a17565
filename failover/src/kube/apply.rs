//! Server-side apply of manifests (field manager `lifeboat`): applying the same manifests
//! twice is applying them once, so the step is safe to re-run.

use super::{api, error, resource};
use crate::FailoverError;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

/// One object as the API server holds it after the apply.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
}

/// Every document of a (multi-document) YAML text; empty documents are skipped.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, FailoverError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| FailoverError::Invalid(format!("manifests are not valid YAML: {e}")))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Applies `manifests` in order; `namespace` fills in objects that name none.
pub async fn apply(
    client: &kube::Client,
    manifests: &[Value],
    namespace: Option<&str>,
    force: bool,
) -> Result<Vec<Applied>, FailoverError> {
    let mut applied = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let text = |key: &str| manifest.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind")) else {
            return Err(FailoverError::Invalid(format!(
                "manifest {}: `apiVersion` and `kind` are required",
                i + 1
            )));
        };
        let name = manifest["metadata"]["name"]
            .as_str()
            .ok_or_else(|| FailoverError::Invalid(format!("manifest {} ({kind}): `metadata.name` is required", i + 1)))?
            .to_owned();
        let (ar, caps) = resource(client, &api_version, &kind).await?;
        let ns = manifest["metadata"]["namespace"].as_str().or(namespace);
        let object: DynamicObject = serde_json::from_value(manifest.clone())
            .map_err(|e| FailoverError::Invalid(format!("manifest {} ({kind} {name}): {e}", i + 1)))?;
        let params = PatchParams {
            force,
            ..PatchParams::apply("lifeboat")
        };
        let result = api(client, &ar, &caps, ns)
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| error(e, &format!("applying {kind} {name}")))?;
        applied.push(Applied {
            api_version,
            kind,
            namespace: result.metadata.namespace.clone(),
            name,
            uid: result.metadata.uid.clone(),
            resource_version: result.metadata.resource_version.clone(),
            generation: result.metadata.generation,
        });
    }
    Ok(applied)
}

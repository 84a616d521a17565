//! `k8s.apply`: server-side apply (field manager `lifeboat`) of manifests given inline or
//! from files; applying the same manifests again changes nothing, so a re-run is safe.

use crate::steps::{Outputs, StepContext, StepError, Text, outputs_of};
use lifeboat_failover::kube::apply::{apply, parse_manifests};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Objects inline (a list of mappings), or YAML text with `---` between documents.
    #[serde(default)]
    pub manifests: Option<Value>,
    /// Manifest files (YAML, several documents each), applied after `manifests`.
    #[serde(default)]
    pub files: Vec<Text>,
    /// For objects that name no namespace (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<Text>,
    /// Take over fields another manager owns (server-side apply's `force`).
    #[serde(default)]
    pub force: bool,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let mut manifests = match &o.manifests {
        None => Vec::new(),
        Some(Value::String(text)) => parse_manifests(text)?,
        Some(Value::Array(objects)) => objects.clone(),
        Some(object @ Value::Object(_)) => vec![object.clone()],
        Some(other) => {
            return Err(StepError::terminal(format!(
                "manifests: expected objects or YAML text, found {other}"
            )));
        }
    };
    for file in &o.files {
        let text = std::fs::read_to_string(&file.0).map_err(|e| StepError::terminal(format!("files: reading {}: {e}", file.0)))?;
        manifests.extend(parse_manifests(&text).map_err(|e| StepError::terminal(format!("{}: {e}", file.0)))?);
    }
    if manifests.is_empty() {
        return Err(StepError::terminal("nothing to apply: give `manifests` or `files`"));
    }
    let (client, cluster) = super::access::client(cx).await?;
    let applied = apply(&client, &manifests, super::namespace(&o.namespace), o.force)
        .await
        .map_err(super::access::in_cluster(&cluster))?;
    let mut out = Outputs::new();
    out.insert("count".into(), applied.len().into());
    out.insert(
        "applied".into(),
        Value::Array(applied.iter().map(|a| Value::Object(outputs_of(a))).collect()),
    );
    Ok(out)
}

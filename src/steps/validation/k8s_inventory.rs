//! `validation.k8s_inventory`: record the objects of namespaces (kind, name, a hash of
//! what their owner wrote) before a disaster; given that record as `compare_with`, check
//! after a restore that every object came back unchanged (in its mapped namespace when
//! the restore mapped it), listing what is missing, extra or changed.

use crate::steps::velero::restore::NamespaceMapping;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_backup::kube::list_objects;
use lifeboat_validation::inventory::{Entry, compare, inventory};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What a restore of an application brings back, on any cluster.
const DEFAULT_KINDS: &[&str] = &[
    "v1/ConfigMap",
    "v1/Secret",
    "v1/Service",
    "v1/ServiceAccount",
    "v1/PersistentVolumeClaim",
    "apps/v1/Deployment",
    "apps/v1/StatefulSet",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The namespaces to inventory (when comparing: where the objects are now).
    pub namespaces: Vec<Text>,
    /// Kinds as `apiVersion/Kind`, e.g. `apps/v1/Deployment` (default: ConfigMaps,
    /// Secrets, Services, ServiceAccounts, PVCs, Deployments, StatefulSets).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// A recorded inventory, `${{ steps.<id>.outputs.objects }}`: compare with it.
    #[serde(default)]
    pub compare_with: Option<Value>,
    /// Where recorded namespaces are now: `{ shop: shop-drill }` or `shop:shop-drill`.
    #[serde(default)]
    pub namespace_mapping: Option<NamespaceMapping>,
    /// Objects found now that were not recorded do not fail the check.
    #[serde(default)]
    pub allow_extra: bool,
}

fn kinds(o: &Options) -> Result<Vec<(String, String)>, StepError> {
    let given: Vec<&str> = if o.kinds.is_empty() {
        DEFAULT_KINDS.to_vec()
    } else {
        o.kinds.iter().map(String::as_str).collect()
    };
    given
        .into_iter()
        .map(|k| match k.rsplit_once('/') {
            Some((api_version, kind)) if !api_version.is_empty() && !kind.is_empty() => Ok((api_version.to_owned(), kind.to_owned())),
            _ => Err(StepError::terminal(format!(
                "kinds: `{k}` is not `apiVersion/Kind` (write e.g. v1/ConfigMap or apps/v1/Deployment)"
            ))),
        })
        .collect()
}

fn recorded(value: &Value) -> Result<Vec<Entry>, StepError> {
    let parsed = match value {
        Value::String(text) => serde_json::from_str(text),
        other => serde_json::from_value(other.clone()),
    };
    parsed.map_err(|e| {
        StepError::terminal(format!(
            "compare_with: not an inventory ({e}); pass `${{{{ steps.<id>.outputs.objects }}}}` of a recording k8s_inventory step"
        ))
    })
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    if o.namespaces.is_empty() {
        return Err(StepError::terminal("namespaces: name at least one namespace"));
    }
    let kinds = kinds(&o)?;
    let expected = o.compare_with.as_ref().map(recorded).transpose()?;
    let mapping = o
        .namespace_mapping
        .as_ref()
        .map(NamespaceMapping::pairs)
        .transpose()?
        .unwrap_or_default();
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let mut objects = Vec::new();
    for namespace in &o.namespaces {
        for (api_version, kind) in &kinds {
            let listed = tokio::select! {
                r = list_objects(&client, api_version, kind, &namespace.0) => r.map_err(crate::steps::k8s::access::in_cluster(&cluster))?,
                _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
            };
            objects.extend(listed);
        }
    }
    let now = inventory(&objects);
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &now {
        *by_kind.entry(&e.kind).or_default() += 1;
    }
    let mut out = Outputs::new();
    out.insert("count".into(), now.len().into());
    out.insert("by_kind".into(), serde_json::to_value(&by_kind).unwrap_or_default());
    let Some(expected) = expected else {
        out.insert("objects".into(), serde_json::to_value(&now).unwrap_or_default());
        return Ok(out);
    };
    let diff = compare(&expected, &now, &mapping);
    let listed = |what: &str, named: &[lifeboat_validation::inventory::Named]| {
        (!named.is_empty()).then(|| format!("{what}: {}", named.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
    };
    let problems: Vec<String> = [
        listed("missing", &diff.missing),
        listed("changed", &diff.changed),
        if o.allow_extra { None } else { listed("extra", &diff.extra) },
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        return Err(StepError::terminal(format!(
            "cluster `{cluster}`: {} of {} recorded objects came back as recorded; {}",
            diff.matched,
            expected.len(),
            problems.join("; ")
        )));
    }
    for (key, value) in serde_json::to_value(&diff).unwrap_or_default().as_object().into_iter().flatten() {
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

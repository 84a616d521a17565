//! `velero.restore`: a Velero Restore from a named backup or the newest Completed backup of a
//! schedule, optionally into other namespaces (`namespace_mapping`: a drill restores into a
//! scratch namespace), waited for to a terminal phase.

use super::{PartiallyFailed, default_namespace};
use crate::plan::model::Limit;
use crate::steps::k8s::object_name;
use crate::steps::{Outputs, StepContext, StepError, outputs_of};
use lifeboat_backup::velero::Selection;
use lifeboat_backup::velero::download::{Results, restore_results};
use lifeboat_backup::velero::restore::{RestoreRequest, Source, restore};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExistingResourcePolicy {
    /// Keep what exists (Velero's default).
    None,
    /// Update what exists to the backed-up version.
    Update,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NamespaceMapping {
    Map(BTreeMap<String, String>),
    Text(String),
}

impl NamespaceMapping {
    pub fn pairs(&self) -> Result<BTreeMap<String, String>, StepError> {
        match self {
            NamespaceMapping::Map(map) => Ok(map.clone()),
            NamespaceMapping::Text(text) => text
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|pair| match pair.split_once(':') {
                    Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                        Ok((from.trim().to_owned(), to.trim().to_owned()))
                    }
                    _ => Err(StepError::terminal(format!(
                        "namespace_mapping: `{pair}` is not `source:target` (write e.g. shop:shop-drill,other:other-drill)"
                    ))),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Restore's name (default: derived from the run and step).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_namespace")]
    pub velero_namespace: String,
    /// The backup to restore, e.g. `${{ steps.backup.outputs.name }}`.
    #[serde(default)]
    pub backup: Option<String>,
    /// Or: restore the newest Completed backup of this schedule.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Restore namespaces under other names: `{ shop: shop-drill }`, or Velero's
    /// `shop:shop-drill,other:other-drill` (handy when names come from params).
    #[serde(default)]
    pub namespace_mapping: Option<NamespaceMapping>,
    #[serde(default)]
    pub included_namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub included_resources: Vec<String>,
    #[serde(default)]
    pub excluded_resources: Vec<String>,
    #[serde(default)]
    pub existing_resource_policy: Option<ExistingResourcePolicy>,
    /// Restore persistent volumes (default: Velero's setting).
    #[serde(default)]
    pub restore_pvs: Option<bool>,
    #[serde(default)]
    pub partially_failed: PartiallyFailed,
    /// Give up waiting after this long (default 30m).
    #[serde(default)]
    pub timeout: Option<Limit>,
}

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let source = match (&o.backup, &o.schedule) {
        (Some(b), None) => Source::Backup(b.clone()),
        (None, Some(s)) => Source::Schedule(s.clone()),
        _ => return Err(StepError::terminal("give exactly one of `backup` (a backup's name) or `schedule`")),
    };
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let request = RestoreRequest {
        namespace: o.velero_namespace.clone(),
        name: object_name(&o.name, &cx.idempotency_key),
        source,
        namespace_mapping: o
            .namespace_mapping
            .as_ref()
            .map(NamespaceMapping::pairs)
            .transpose()?
            .unwrap_or_default(),
        selection: Selection {
            included_namespaces: o.included_namespaces,
            excluded_namespaces: o.excluded_namespaces,
            included_resources: o.included_resources,
            excluded_resources: o.excluded_resources,
        },
        existing_resource_policy: o.existing_resource_policy.map(|p| match p {
            ExistingResourcePolicy::None => "none".into(),
            ExistingResourcePolicy::Update => "update".into(),
        }),
        restore_pvs: o.restore_pvs,
    };
    let limit = o.timeout.map_or(Duration::from_secs(1800), |d| d.get());
    let (backup, finished) = tokio::select! {
        r = restore(&client, &request, limit) => r.map_err(crate::steps::k8s::access::in_cluster(&cluster))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    // Velero keeps what went wrong, item by item, in object storage: fetch it as evidence.
    let results = if finished.errors + finished.warnings > 0 {
        Some(restore_results(&client, &request.namespace, &request.name, Duration::from_secs(120)).await)
    } else {
        None
    };
    let details = match &results {
        Some(Ok(r)) => first_messages(r),
        _ => String::new(),
    };
    let finished = finished
        .judged("restore", matches!(o.partially_failed, PartiallyFailed::Warn))
        .map_err(|e| {
            let e = crate::steps::k8s::access::in_cluster(&cluster)(e);
            StepError {
                message: format!("{}{details}", e.message),
                retryable: e.retryable,
            }
        })?;
    let mut out = outputs_of(&finished);
    out.insert("backup".into(), backup.into());
    match results {
        Some(Ok(r)) => {
            out.insert("results".into(), serde_json::to_value(&r).unwrap_or_default());
        }
        Some(Err(e)) => {
            out.insert("results_error".into(), e.to_string().into());
        }
        None => {}
    }
    Ok(out)
}

/// The first few per-item messages, for a failure message: `; errors: shop: …`.
fn first_messages(results: &Results) -> String {
    let listed = |m: &lifeboat_backup::velero::download::Messages| -> Vec<String> {
        m.velero
            .iter()
            .chain(&m.cluster)
            .cloned()
            .chain(
                m.namespaces
                    .iter()
                    .flat_map(|(ns, list)| list.iter().map(move |l| format!("{ns}: {l}"))),
            )
            .take(5)
            .collect()
    };
    let mut text = String::new();
    for (what, m) in [("errors", &results.errors), ("warnings", &results.warnings)] {
        let first = listed(m);
        if !first.is_empty() {
            let more = m.count().saturating_sub(first.len());
            text += &format!(
                "; {what}: {}{}",
                first.join("; "),
                if more > 0 { format!(" (and {more} more)") } else { String::new() }
            );
        }
    }
    text
}

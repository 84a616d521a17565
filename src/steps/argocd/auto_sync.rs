//! `argocd.auto_sync`: turn an Application's automated sync off during a failover, so Argo
//! CD does not put back what the failover changed, and on again after. The policy it had is
//! journaled before the change and is an output, so `finally` (or a compensation) restores
//! exactly it: `enabled: true` with `policy: ${{ steps.<id>.outputs.previous_policy }}`.

use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::kube::argocd::{automated, set_automated};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub application: Text,
    #[serde(default = "super::default_namespace")]
    pub namespace: Text,
    /// Whether Argo CD syncs the Application by itself.
    pub enabled: bool,
    /// The automated policy to set when enabling (`{ prune: true, selfHeal: true }`);
    /// default `{}`. Pass a previous step's `previous_policy` to restore it exactly.
    #[serde(default)]
    pub policy: Option<Value>,
}

/// The policy before the first attempt changed it (`null`: manual sync).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousPolicy {
    pub policy: Option<Value>,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

crate::evidence::single_record!(PreviousPolicy, "argocd-policy/");

pub async fn run(o: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let (client, cluster) = crate::steps::k8s::access::client(cx).await?;
    let in_cluster = crate::steps::k8s::access::in_cluster(&cluster);
    let (ns, app) = (o.namespace.0.as_str(), o.application.0.as_str());
    let previous = match cx.records::<PreviousPolicy>().await?.pop() {
        Some(recorded) => recorded.policy,
        None => {
            let now = automated(&client, ns, app).await.map_err(&in_cluster)?;
            cx.record(&PreviousPolicy {
                policy: now.clone(),
                at: None,
            })
            .await?;
            now
        }
    };
    // A previous policy of "manual" arrives as null: enabling with it means leaving it manual.
    let wanted = match (o.enabled, o.policy) {
        (false, _) => None,
        (true, Some(Value::Null)) => None,
        (true, Some(policy)) => Some(policy),
        (true, None) => Some(serde_json::json!({})),
    };
    set_automated(&client, ns, app, wanted.clone()).await.map_err(&in_cluster)?;
    let mut out = Outputs::new();
    out.insert("previous_policy".into(), previous.unwrap_or(Value::Null));
    out.insert("policy".into(), wanted.unwrap_or(Value::Null));
    Ok(out)
}

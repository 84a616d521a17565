//! The plan document as written in YAML (`apiVersion: lifeboat.dev/v1alpha1`).
//!
//! These types are the single source of the plan language: serde reads plans with them
//! and schemars turns them into the JSON Schema that `lifeboat plan schema` prints and
//! that the compiler's structural check walks. They are *not* the journal schema: the
//! journal stores the plan source text and recompiles it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const API_VERSION: &str = "lifeboat.dev/v1alpha1";
pub const KIND: &str = "RecoveryPlan";

/// A recovery plan: a DAG of steps run durably by lifeboat.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lifeboat RecoveryPlan")]
pub struct PlanDocument {
    /// Always `lifeboat.dev/v1alpha1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `RecoveryPlan`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The plan's name: lower-case letters, digits and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// Where the plan lives as a RecoveryPlan resource (`lifeboat operator`); elsewhere it
    /// is ignored, so one file serves `kubectl apply` and `lifeboat run` alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub description: Option<String>,
    /// What a drill of this plan is judged against.
    #[serde(default)]
    pub objectives: Option<Objectives>,
    /// Inputs of the plan, given with `--param name=value`.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// How many steps may run at once (default 4).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub concurrency: Option<u32>,
    /// A lock name: two runs holding the same lock never overlap.
    #[serde(default)]
    pub lock: Option<String>,
    /// Kubernetes clusters the plan works on, by name (e.g. `primary`, `dr`); a step picks
    /// one with `cluster:`.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSpec>,
    pub steps: Vec<StepSpec>,
    /// Halt conditions: probes checked for the whole run; a breach aborts it and reverts
    /// every active fault.
    #[serde(default)]
    pub guards: Vec<GuardSpec>,
    /// Steps that always run after `steps` finish, fail or are aborted, like a defer.
    #[serde(default)]
    pub finally: Vec<StepSpec>,
}

/// How to reach a Kubernetes cluster: a kubeconfig and context, or the service account of
/// the pod lifeboat runs in. Values may use `${{ params.* }}` and `${{ env.* }}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// A kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The context to use (default: the kubeconfig's current context).
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service account instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery time objective, e.g. `5m`.
    #[serde(default)]
    pub rto: Option<HumanDuration>,
    /// Recovery point objective, e.g. `30s`.
    #[serde(default)]
    pub rpo: Option<HumanDuration>,
    /// Most acknowledged canary rows that may be lost (0: no data loss).
    #[serde(default)]
    pub rows_lost: Option<u64>,
}

/// A halt condition: a probe checked every `interval` while the run's steps run (from the
/// start, or from when the step named by `after` succeeded).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// Unique among guards: lower-case letters, digits, `_` and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// A probe kind: `validation.http_probe`, `validation.tcp_probe`, `validation.sql_probe` or
    /// `validation.prometheus_probe`.
    pub kind: String,
    /// The probe's options (its `interval`/`timeout` are not used: the guard's are).
    #[serde(default)]
    pub with: serde_json::Map<String, serde_json::Value>,
    /// Time between checks (default `1s`).
    #[serde(default)]
    pub interval: Option<Interval>,
    /// Consecutive failed checks that make a breach (default 3).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub failure_threshold: Option<u32>,
    /// On breach, also compensate completed steps (default: abort only).
    #[serde(default)]
    pub rollback: bool,
    /// Start watching once this step has succeeded (default: from the run's start). The
    /// options may then read the outputs of that step and of the steps it needs.
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default, rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    #[default]
    String,
    Integer,
    Number,
    Boolean,
    Duration,
}

/// One step of the plan's DAG.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the plan: lower-case letters, digits, `_` and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// The step kind, e.g. `exec`, `http`, `sleep`, `approval`.
    pub kind: String,
    /// Steps that must finish before this one starts.
    #[serde(default)]
    pub needs: Vec<String>,
    /// The kind's options; strings may contain `${{ … }}` expressions.
    #[serde(default)]
    pub with: serde_json::Map<String, serde_json::Value>,
    /// An expression; when false the step is skipped.
    #[serde(default)]
    pub when: Option<String>,
    /// What to do when a step this one needs was skipped (default `skip`).
    #[serde(default)]
    pub when_needs_skipped: NeedsSkipped,
    /// Time limit of one attempt, e.g. `10m`.
    #[serde(default)]
    pub timeout: Option<Limit>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// A step run when the plan rolls back, if this step had succeeded.
    #[serde(default)]
    pub compensate: Option<CompensateSpec>,
    /// The Kubernetes cluster (a name under `spec.clusters`) a Kubernetes step works on;
    /// its compensation works on the same one.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Drill markers: the RTO/RPO clock starts at `disaster` and stops at `recovered`.
    #[serde(default)]
    pub mark: Option<Mark>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompensateSpec {
    pub kind: String,
    #[serde(default)]
    pub with: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub timeout: Option<Limit>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts, including the first (e.g. 3).
    #[schemars(range(min = 1, max = 1000))]
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time, with jitter (default `1s`).
    #[serde(default)]
    pub backoff: Option<HumanDuration<0, DAY_MS>>,
    /// Upper bound of the wait (default `5m`).
    #[serde(default)]
    pub max_backoff: Option<HumanDuration<0, DAY_MS>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Start no further steps; run `finally`; the run fails.
    #[default]
    Abort,
    /// Record the failure and carry on; dependants run.
    Continue,
    /// Start no further steps, compensate completed steps in reverse order, run `finally`.
    Rollback,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NeedsSkipped {
    #[default]
    Skip,
    Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Disaster,
    Recovered,
}

pub use super::duration::{DAY_MS, DURATION_FORMAT, HumanDuration, Interval, Limit};

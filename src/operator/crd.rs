//! The custom resources of operator mode (`lifeboat.dev/v1alpha1`): `RecoveryPlan` (a plan
//! document as a resource), `DrillSchedule` (a schedule of drills) and `Run` (a request to
//! run a plan, and what became of it).
//!
//! The `RecoveryPlan` schema is the plan language's own (the same types the compiler reads),
//! so the API server refuses what is structurally wrong; what only the compiler can judge
//! (cycles, unknown step kinds, bad templates) lands in the resource's `Compiled` condition.
//!
//! # Versions
//! Every kind is served and stored as `v1alpha1`. A later `v1beta1` is added beside it as
//! another module, merged with `kube::core::crd::merge_crds`; no conversion is needed while
//! the fields only grow.

// `printcolumn(…)` repeats `type_ = "string"` by design; the lint reads them as attributes.
#![allow(clippy::duplicated_attributes)]

use crate::plan::model::Spec;
use crate::serve::config::Overlap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const GROUP: &str = "lifeboat.dev";
pub const VERSION: &str = "v1alpha1";

/// A recovery plan: the `spec` of a plan file, kept as a resource and compiled by the
/// operator (see `status.conditions[type=Compiled]`).
#[derive(CustomResource, Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "RecoveryPlan",
    doc = "A lifeboat recovery plan, compiled by the operator (see status.conditions).",
    namespaced,
    status = "RecoveryPlanStatus",
    shortname = "rplan",
    category = "lifeboat",
    printcolumn(
        name = "Compiled",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Compiled\")].status"
    ),
    printcolumn(name = "Steps", type_ = "integer", json_path = ".status.steps"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
pub struct RecoveryPlanSpec(pub Spec);

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlanStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Every problem the compiler found, as `plan <name>:line:col: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Steps in the compiled plan (with `finally` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
}

/// Drills of a plan on a cron schedule, fired once per occurrence by the leading replica.
#[derive(CustomResource, Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "DrillSchedule",
    doc = "Drills of a RecoveryPlan on a cron schedule.",
    namespaced,
    status = "DrillScheduleStatus",
    shortname = "drill",
    category = "lifeboat",
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Cron", type_ = "string", json_path = ".spec.cron"),
    printcolumn(name = "Timezone", type_ = "string", json_path = ".spec.timezone"),
    printcolumn(name = "Next", type_ = "string", json_path = ".status.nextScheduleTime"),
    printcolumn(name = "Last run", type_ = "string", json_path = ".status.lastRun"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DrillScheduleSpec {
    /// The `RecoveryPlan` to drill, in the same namespace.
    pub plan: String,
    /// Cron, 5 fields (Unix) or 6–7 with seconds (see docs/serve.md for the dialect).
    pub cron: String,
    /// IANA time zone the cron is read in (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub params: BTreeMap<String, Value>,
    #[serde(default)]
    pub overlap: Overlap,
    /// Fire a missed occurrence at most this late (e.g. `10m`; default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<String>,
    /// A deterministic delay of up to this much after each occurrence (e.g. `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// Windows in which no drill starts, as in `lifeboat serve`'s `blackouts:`.
    #[serde(default)]
    #[schemars(with = "Vec<BTreeMap<String, Value>>")]
    pub blackouts: Vec<crate::serve::schedule::Blackout>,
    /// Fire nothing while true (occurrences are recorded as skipped).
    #[serde(default)]
    pub suspend: bool,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillScheduleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The next occurrence, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// The run id of the latest occurrence that became a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
}

/// A request to run a plan once, and its outcome. Deleting it while it runs aborts the run
/// (its `finally` steps run and its faults are reverted) before the object goes.
#[derive(CustomResource, Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Run",
    doc = "A run of a RecoveryPlan: its phase, steps, RTO/RPO and verdict in status.",
    namespaced,
    status = "RunStatus",
    shortname = "lbrun",
    category = "lifeboat",
    selectable = ".spec.plan",
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "RTO", type_ = "string", json_path = ".status.rto"),
    printcolumn(name = "Verdict", type_ = "string", json_path = ".status.verdict"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    /// The `RecoveryPlan` to run, in the same namespace.
    pub plan: String,
    /// The plan's params (values as `--param` would give them).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub params: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Phase {
    /// Accepted, waiting to start (or for an approval to start).
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Aborted or cancelled before it finished.
    Aborted,
    /// Failed, and its compensations ran.
    RolledBack,
}

impl Phase {
    pub fn is_final(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The run's id in the journal (`lifeboat runs show <id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub steps: Vec<StepState>,
    /// Measured recovery time of a drill, e.g. `4.21s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
    /// `Pass` or `Fail` for a drill judged against its objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Path of the run's HTML report on `lifeboat serve` (`/api/v1/runs/<id>/report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Why the run failed or was refused, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct StepState {
    pub id: String,
    pub status: String,
    pub attempts: u32,
}

/// A condition as Kubernetes writes them (`metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The three CRDs, ready for the API server: schemas made structural (see [`structural`]).
pub fn all() -> Vec<CustomResourceDefinition> {
    use kube::CustomResourceExt;
    [RecoveryPlan::crd(), DrillSchedule::crd(), Run::crd()]
        .into_iter()
        .map(structural)
        .collect()
}

/// The CRDs as one YAML stream, as `lifeboat operator crds` prints them.
pub fn yaml() -> String {
    all()
        .iter()
        .map(|crd| {
            let value = serde_json::to_value(crd).expect("a CRD serializes");
            format!("---\n{}", serde_saphyr::to_string(&value).expect("JSON values serialize as YAML"))
        })
        .collect()
}

/// Makes the schemas of `crd` structural where the plan language is open: free-form maps
/// (a step's `with:`) and untyped values (a param's `default`) keep their fields
/// (`x-kubernetes-preserve-unknown-fields`) instead of being pruned or refused.
pub fn structural(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    if let Some(versions) = value.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                make_structural(schema);
            }
        }
    }
    serde_json::from_value(value).expect("the fixed CRD still deserializes")
}

fn make_structural(node: &mut Value) {
    let Some(object) = node.as_object_mut() else { return };
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(children)) = object.get_mut(key) {
            children.values_mut().for_each(make_structural);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = object.get_mut(key) {
            make_structural(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = object.get_mut(key) {
            children.iter_mut().for_each(make_structural);
        }
    }
    let open_map = object.get("additionalProperties") == Some(&Value::Bool(true)) && !object.contains_key("properties");
    let untyped = !object.contains_key("type")
        && !object.contains_key("x-kubernetes-int-or-string")
        && !["allOf", "anyOf", "oneOf", "not"].iter().any(|k| object.contains_key(*k));
    if open_map {
        object.remove("additionalProperties");
    }
    if open_map || untyped {
        object.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
    }
    // An optional enum lists `null` among its values; `nullable` already says it.
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

//! The `k8s.*` step kinds: workloads on a Kubernetes cluster (apply, delete, scale, wait,
//! rollout wait, jobs) through `lifeboat_failover::kube`, on the cluster the step names.

pub mod access;
pub mod apply;
pub mod delete;
pub mod job;
pub mod rollout_wait;
pub mod scale;
pub mod wait;

use crate::steps::Text;

/// `namespace` as given, `None` when empty.
fn namespace(option: &Option<Text>) -> Option<&str> {
    option.as_ref().map(|n| n.0.as_str()).filter(|n| !n.is_empty())
}

/// `namespace` as given, else `default`.
pub fn namespace_or_default(option: &Option<Text>) -> String {
    namespace(option).unwrap_or("default").to_owned()
}

/// An object name derived from the idempotency key (unless the plan names it), so a
/// re-run finds the object its first attempt created instead of making another.
pub fn object_name(explicit: &Option<String>, key: &str) -> String {
    if let Some(name) = explicit {
        return name.clone();
    }
    let mut name: String = format!("lifeboat-{key}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

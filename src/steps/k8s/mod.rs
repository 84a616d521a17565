//! The `k8s.*` step kinds: workloads on a Kubernetes cluster (apply, delete, scale, wait,
//! rollout wait) through `lifeboat_failover::kube`, on the cluster the step names.

pub mod access;
pub mod apply;
pub mod delete;
pub mod rollout_wait;
pub mod scale;
pub mod wait;

use crate::steps::Text;

/// `namespace` as given, `None` when empty.
fn namespace(option: &Option<Text>) -> Option<&str> {
    option.as_ref().map(|n| n.0.as_str()).filter(|n| !n.is_empty())
}

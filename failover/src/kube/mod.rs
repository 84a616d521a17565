//! Kubernetes workloads through a `kube::Client` the engine built: apply manifests, delete
//! and wait until gone, scale, and judge a rollout as `kubectl rollout status` does. The
//! shared plumbing (discovery, errors, waiting by watch) is `lifeboat_backup::kube`.

pub mod apply;
pub mod argocd;
pub mod delete;
pub mod job;
pub mod rollout;
pub mod scale;
pub mod service;

pub use lifeboat_backup::kube::{api, error, resource, wait};

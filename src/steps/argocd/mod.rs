//! The `argocd.*` step kinds: Argo CD Applications in a failover (sync, and the automated
//! sync policy held off while the failover runs), through `lifeboat_failover::kube::argocd`.

pub mod auto_sync;
pub mod sync;

fn default_namespace() -> crate::steps::Text {
    crate::steps::Text("argocd".into())
}

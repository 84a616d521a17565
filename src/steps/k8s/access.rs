//! Cluster access: a plan's `spec.clusters` entry (kubeconfig and context, or the pod's
//! service account), rendered for the run, becomes the `kube::Client` a Kubernetes step
//! hands to the domain crates. Domain code never reads a kubeconfig itself.

use crate::plan::model::ClusterSpec;
use crate::steps::{StepContext, StepError};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The cluster a step works on: its name in the plan and its rendered settings (or why
/// they could not be rendered).
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    pub name: String,
    pub spec: Result<ClusterSpec, String>,
}

/// A client for the step's cluster, with the cluster's name for messages.
pub async fn client(cx: &StepContext) -> Result<(kube::Client, String), StepError> {
    connect(of(cx)).await
}

/// The step's cluster (the default kubeconfig's when the plan names none).
pub fn of(cx: &StepContext) -> ClusterAccess {
    cx.cluster.clone().unwrap_or(ClusterAccess {
        name: "default".into(),
        spec: Ok(ClusterSpec::default()),
    })
}

/// A client for a cluster, with its name for messages.
pub async fn connect(access: ClusterAccess) -> Result<(kube::Client, String), StepError> {
    let mut spec = access
        .spec
        .map_err(|e| StepError::terminal(format!("cluster `{}`: evaluating its settings: {e}", access.name)))?;
    // An empty setting (a param left at "") means the default.
    spec.kubeconfig = spec.kubeconfig.filter(|k| !k.is_empty());
    spec.context = spec.context.filter(|c| !c.is_empty());
    let name = access.name;
    let mut config = if spec.in_cluster {
        kube::Config::incluster().map_err(|e| {
            StepError::terminal(format!(
                "cluster `{name}`: in_cluster is set but lifeboat is not running in a pod with a service account: {e}"
            ))
        })?
    } else {
        let kubeconfig = match &spec.kubeconfig {
            Some(path) => Kubeconfig::read_from(expand_home(path)),
            None => Kubeconfig::read(),
        }
        .map_err(|e| {
            StepError::terminal(format!(
                "cluster `{name}`: reading the kubeconfig {}: {e}",
                spec.kubeconfig.as_deref().unwrap_or("($KUBECONFIG or ~/.kube/config)")
            ))
        })?;
        let options = KubeConfigOptions {
            context: spec.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| StepError::terminal(format!("cluster `{name}`: {e}")))?
    };
    // lifeboat owns retries and their budget; kube's own would hide a dead API server.
    config.default_retry = false;
    let client = kube::Client::try_from(config).map_err(|e| StepError::terminal(format!("cluster `{name}`: {e}")))?;
    Ok((client, name))
}

fn expand_home(path: &str) -> std::path::PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
        None => path.into(),
    }
}

/// A domain error from cluster `name`, its message naming the cluster.
pub fn in_cluster<E: Into<StepError>>(name: &str) -> impl Fn(E) -> StepError + '_ {
    move |e| {
        let e: StepError = e.into();
        StepError {
            message: format!("cluster `{name}`: {}", e.message),
            retryable: e.retryable,
        }
    }
}

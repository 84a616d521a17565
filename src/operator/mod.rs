//! `lifeboat operator`: lifeboat on Kubernetes. Plans, drill schedules and runs are custom
//! resources ([`crd`]); every replica keeps the service's plans ([`plans`]) and schedules
//! ([`schedules`]) in step with them and turns `Run` objects into journal requests
//! ([`runs`]). The journal does the rest exactly as under `lifeboat serve`: one scheduler
//! leader by the journal's lease, one owner per run by compare-and-swap, the HTTP API,
//! dashboard and `/metrics` on every replica.
//!
//! # Guarantees
//! Every replica reconciles every resource; each decision that must happen once is a key
//! in the journal (a `Run`'s request id), so a replica that dies mid-way leaves nothing
//! half-done, and statuses are written only when they change.

pub mod crd;
pub mod follow;
pub mod plans;
pub mod runs;
pub mod schedules;
pub mod status;

use crate::journal::Journal;
use crate::serve::{ServeError, ServeOptions, Sources};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the operator's parts share.
pub struct Context {
    pub client: kube::Client,
    /// The namespace whose resources this operator follows.
    pub namespace: String,
    pub journal: Journal,
    pub sources: Sources,
    /// Each run's status as last replayed, with the journal sequence number it reflects.
    pub run_views: std::sync::Mutex<std::collections::HashMap<String, (i64, crd::RunStatus)>>,
}

/// Runs the operator until `stop`: the service (worker, scheduler, API) on plans and
/// schedules taken from the resources, and the three reconcilers.
pub async fn run(
    options: ServeOptions,
    client: kube::Client,
    namespace: String,
    stop: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServeError> {
    check_access(&client, &namespace).await.map_err(ServeError::Config)?;
    let journal = Journal::open(&options.state).await?;
    let sources = Sources::default();
    let ctx = Arc::new(Context {
        client,
        namespace,
        journal: journal.clone(),
        sources: sources.clone(),
        run_views: Default::default(),
    });
    tracing::info!(namespace = %ctx.namespace, "following RecoveryPlans, DrillSchedules and Runs");
    let plans_loaded = CancellationToken::new();
    let tasks = [
        tokio::spawn(plans::run(ctx.clone(), stop.clone(), plans_loaded.clone())),
        tokio::spawn(after(plans_loaded.clone(), stop.clone(), schedules::run(ctx.clone(), stop.clone()))),
        tokio::spawn(after(plans_loaded, stop.clone(), runs::run(ctx.clone(), stop.clone()))),
    ];
    let served = crate::serve::serve_from(options, sources, stop.clone(), ready).await;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    journal.close().await;
    served
}

/// Refuses to start where the operator could never work: its CRDs missing, or no right to
/// list its resources in `namespace` (each said with how to fix it).
async fn check_access(client: &kube::Client, namespace: &str) -> Result<(), String> {
    use kube::api::{Api, ListParams};
    async fn list<K>(client: &kube::Client, namespace: &str) -> Result<(), String>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let plural = K::plural(&());
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(format!(
                "error: the cluster does not serve {plural}.lifeboat.dev: install the CRDs first (`lifeboat operator crds | kubectl apply -f -`, or the chart)"
            )),
            Err(kube::Error::Api(e)) if e.code == 403 => Err(format!(
                "error: the operator may not list {plural} in namespace `{namespace}` ({}); grant it the chart's Role or pick its namespace with --namespace",
                e.message
            )),
            Err(e) => Err(format!("error: cannot reach the cluster to list {plural} in `{namespace}`: {e}")),
        }
    }
    list::<crd::RecoveryPlan>(client, namespace).await?;
    list::<crd::DrillSchedule>(client, namespace).await?;
    list::<crd::Run>(client, namespace).await
}

/// Runs `work` once `first` is done: schedules and runs name plans, which are known only
/// once the plans have been read.
async fn after(first: CancellationToken, stop: CancellationToken, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = first.cancelled() => work.await,
        _ = stop.cancelled() => {}
    }
}

//! `lifeboat serve`: the long-running service. It fires scheduled drills, turns incident
//! webhooks into runs, answers the HTTP API and `/metrics`, and drives runs — alone on a
//! SQLite journal, or as one of several replicas on a PostgreSQL journal.
//!
//! Parts: [`config`] (the file), [`catalog`] (the plans it may run), [`scheduler`] (the
//! leader fires schedules; timing rules in [`schedule`]), [`intake`] (webhooks; formats and
//! signatures in [`webhook`]), [`worker`] (starts requested runs, takes over interrupted
//! ones), [`api`] and [`metrics`].
//!
//! # Guarantees
//! Replicas share nothing but the journal, and every decision that must happen once is a
//! key or a compare-and-swap there (see the journal's `requests`, `schedules`, `triggers`
//! and `lease` modules). Stopping (SIGTERM, SIGINT) stops accepting work, gives up the
//! scheduler lease and hands every run over; nothing is dropped.

pub mod actions;
pub mod api;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod emergency;
pub mod intake;
pub mod live;
pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod trends;
pub mod webhook;
pub mod worker;

use crate::journal::{Backend, Journal, JournalError};
use live::Live;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot listen on {addr}: {reason}; pick a free address (host:port) with --listen or `listen:`")]
    Listen { addr: String, reason: String },
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
}

/// How a service is started.
pub struct ServeOptions {
    pub config: config::ServeConfig,
    pub state: String,
    /// This replica's name in leases and logs (default: host, pid and a random suffix).
    pub replica: Option<String>,
    pub max_runs: usize,
}

/// Runs the service until `stop` is cancelled, then hands everything over and returns.
/// `ready` is told the address it listens on once it accepts connections.
pub async fn serve(
    mut options: ServeOptions,
    stop: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServeError> {
    let catalog = catalog::Catalog::load(&options.config.plan_paths).map_err(ServeError::Config)?;
    let config = &options.config;
    let mut problems = Vec::new();
    for s in &config.schedules {
        if let Err(e) = catalog.new_run(&s.spec.plan, &s.spec.params) {
            problems.push(format!("error: {}: schedule `{}`: {e}", s.location, s.spec.name));
        }
    }
    for w in &config.webhooks {
        for r in &w.routes {
            if let Err(e) = catalog.get(&r.plan) {
                problems.push(format!(
                    "error: {}: webhook `{}` route `{}`: {e}",
                    config.file.display(),
                    w.name,
                    r.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ServeError::Config(problems.join("\n")));
    }
    let sources = Sources {
        catalog: Arc::new(Live::new(catalog)),
        schedules: Arc::new(Live::new(std::mem::take(&mut options.config.schedules))),
    };
    serve_from(options, sources, stop, ready).await
}

/// The plans and schedules a service works from: read from files once (`serve`) or kept in
/// step with custom resources (`operator`).
#[derive(Clone, Default)]
pub struct Sources {
    pub catalog: Arc<Live<catalog::Catalog>>,
    pub schedules: Arc<Live<Vec<config::Schedule>>>,
}

/// Runs the service on `sources` until `stop` is cancelled (see [`serve`]).
pub async fn serve_from(
    options: ServeOptions,
    sources: Sources,
    stop: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServeError> {
    let ServeOptions {
        config,
        state,
        replica,
        max_runs,
    } = options;
    let journal = Journal::open(&state).await?;
    let replica = replica.unwrap_or_else(|| {
        let me = crate::journal::Owner::me();
        format!("{}-{}-{:04x}", me.host, me.pid, rand::random::<u16>())
    });
    tracing::info!(
        replica = %replica,
        journal = %journal.url_for_display,
        mode = if journal.backend == Backend::Postgres { "replicated" } else { "single" },
        plans = sources.catalog.current().plans.len(),
        schedules = sources.schedules.current().len(),
        "lifeboat serve starting"
    );
    let metrics = Arc::new(metrics::Metrics::new());
    let wake = Arc::new(Notify::new());
    let scheduler = scheduler::Scheduler {
        journal: journal.clone(),
        sources: sources.clone(),
        replica: replica.clone(),
        metrics: metrics.clone(),
    };
    scheduler.register().await?;
    let app = api::AppState {
        journal: journal.clone(),
        catalog: sources.catalog.clone(),
        tokens: Arc::new(config.tokens),
        webhooks: Arc::new(config.webhooks),
        schedules: sources.schedules.clone(),
        metrics: metrics.clone(),
        max_body_bytes: config.max_body_bytes,
        wake: wake.clone(),
        stop: stop.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(ServeError::Http)?;
    tracing::info!(address = %addr, "listening");
    let worker = worker::Worker {
        journal: journal.clone(),
        replica: replica.clone(),
        metrics: metrics.clone(),
        max_runs,
        handoff_grace: config.handoff_grace,
        wake,
    };
    let scheduler_task = tokio::spawn(scheduler.run(stop.clone()));
    let worker_task = tokio::spawn(worker.run(stop.clone()));
    if let Some(ready) = ready {
        let _ = ready.send(addr);
    }
    let http_stop = stop.clone();
    let served = axum::serve(listener, api::router(app))
        .with_graceful_shutdown(async move { http_stop.cancelled().await })
        .await;
    stop.cancel();
    let _ = scheduler_task.await;
    let _ = worker_task.await;
    journal.close().await;
    tracing::info!(replica = %replica, "lifeboat serve stopped; its runs are handed over");
    served.map_err(ServeError::Http)
}

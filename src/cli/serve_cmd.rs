//! `lifeboat serve`: loads the configuration, starts the service, and turns SIGTERM or
//! SIGINT into a graceful stop (runs handed over, scheduler lease released).

use super::invalid;
use crate::serve::{self, ServeError, ServeOptions, config};
use clap::Args;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service's configuration file (schedules, webhooks, tokens, plans).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Listen on this address instead of the file's `listen:` (e.g. 0.0.0.0:8480).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// This replica's name in leases and logs (default: host, pid and a random suffix).
    #[arg(long, value_name = "NAME")]
    replica: Option<String>,
    /// Most runs this replica drives at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_runs: u16,
    /// Check the configuration and its plans, then exit.
    #[arg(long)]
    check: bool,
}

pub async fn run(state: &str, args: ServeArgs) -> anyhow::Result<u8> {
    let mut config = config::load(&args.config).map_err(invalid)?;
    if config.plan_paths.is_empty() {
        return Err(invalid(format!(
            "error: {}: `plans:` is missing or empty; list the plan files or folders this service may run",
            args.config.display()
        )));
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.check {
        crate::serve::catalog::Catalog::load(&config.plan_paths).map_err(invalid)?;
        outln!(
            "{}: ok ({} schedules, {} webhooks, {} tokens)",
            args.config.display(),
            config.schedules.len(),
            config.webhooks.len(),
            config.tokens.len()
        );
        return Ok(super::exit::SUCCESS);
    }
    let options = ServeOptions {
        config,
        state: state.to_owned(),
        replica: args.replica,
        max_runs: usize::from(args.max_runs),
    };
    until_signalled(options, |options, stop| serve::serve(options, stop, None)).await
}

/// Runs a service started by `start` until SIGTERM or SIGINT stops it gracefully; its end
/// becomes the command's (bad configuration or address is invalid input).
pub(super) async fn until_signalled<F>(
    options: ServeOptions,
    start: impl FnOnce(ServeOptions, CancellationToken) -> F,
) -> anyhow::Result<u8>
where
    F: Future<Output = Result<(), ServeError>>,
{
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signals(stop.clone()));
    match start(options, stop).await {
        Ok(()) => Ok(super::exit::SUCCESS),
        Err(ServeError::Config(e)) => Err(invalid(e)),
        Err(e @ ServeError::Listen { .. }) => Err(invalid(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn stop_on_signals(stop: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    crate::engine::runner::interrupted(&mut term).await;
    tracing::warn!("stopping: no new work is accepted; running runs are handed over");
    stop.cancel();
}

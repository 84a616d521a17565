//! `lifeboat proxy serve`: lifeboat's TCP fault proxies behind a Toxiproxy-compatible
//! REST API, for existing Toxiproxy clients and scripts.

use super::exit;
use crate::chaos::toxiproxy_api::{Collection, router};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ProxyCommand {
    /// Serve the Toxiproxy-compatible API (default 127.0.0.1:8474, Toxiproxy's port).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: String,
    },
}

pub async fn run(cmd: ProxyCommand) -> anyhow::Result<u8> {
    match cmd {
        ProxyCommand::Serve { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| super::invalid(format!("--listen {listen}: {e}")))?;
            let collection = Collection::default();
            eprintln!("toxiproxy-compatible API on http://{}", listener.local_addr()?);
            axum::serve(listener, router(collection.clone()))
                .with_graceful_shutdown(async {
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                    let terminated = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = terminated => {}
                    }
                })
                .await?;
            collection.stop_all().await;
            Ok(exit::SUCCESS)
        }
    }
}

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
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            collection.stop_all().await;
            Ok(exit::SUCCESS)
        }
    }
}

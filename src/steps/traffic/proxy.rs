//! `traffic.proxy`: point lifeboat's built-in TCP endpoint at a new upstream, atomically:
//! new connections go to the new upstream and open ones are closed, so no client keeps
//! talking to the old server. The first step naming a proxy starts it.

use crate::steps::timestamp;
use crate::steps::traffic::TCP_PROXIES;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::proxy::Proxy;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The proxy's name in this run (default `default`); shared with `chaos.network`.
    #[serde(default = "default_proxy")]
    pub proxy: String,
    /// `host:port` to send traffic to.
    pub upstream: Text,
    /// Where the proxy listens when this step starts it (default `127.0.0.1:0`).
    #[serde(default)]
    pub listen: Option<Text>,
}

fn default_proxy() -> String {
    "default".into()
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let mut out = Outputs::new();
    let proxy = match TCP_PROXIES.get(&cx.run_id, &options.proxy) {
        Some(p) => {
            let previous = p.upstream();
            let open = p.stats().connections_active;
            p.set_upstream(&options.upstream.0)?;
            // A fence may have taken the endpoint down; pointing it somewhere new reopens it.
            p.set_enabled(true).await?;
            out.insert("previous_upstream".into(), previous.into());
            out.insert("connections_closed".into(), open.into());
            p
        }
        None => {
            let listen = options.listen.as_ref().map_or("127.0.0.1:0", |l| l.0.as_str());
            let p = Proxy::start(&options.proxy, listen, &options.upstream.0).await?;
            TCP_PROXIES.insert(&cx.run_id, &cx.step_id, &options.proxy, p.clone(), Proxy::stop);
            p
        }
    };
    crate::steps::traffic::journal_proxy(cx, &proxy).await?;
    out.insert("switched_at".into(), timestamp(chrono::Utc::now()));
    out.insert("upstream".into(), proxy.upstream().into());
    out.insert("listen".into(), proxy.listen_addr().to_string().into());
    out.insert("listen_port".into(), proxy.listen_addr().port().into());
    Ok(out)
}

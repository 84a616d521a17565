//! `chaos.network`: network faults through lifeboat's TCP fault proxy. The first step
//! naming a proxy starts it (`listen` → `upstream`) for the rest of the run; clients
//! connect to its `listen` output. Toxics (Toxiproxy's: latency, bandwidth, timeout,
//! reset_peer, slow_close, limit_data; per stream, with a toxicity) and `down` are the
//! fault, removed after `duration`, on revert, or at the run's end.

use super::{ProxySpec, activate, named_proxy};
use crate::plan::model::Limit;
use crate::steps::traffic::TCP_PROXIES;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::proxy::Proxy;
use lifeboat_failover::proxy::toxic::ToxicJson;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The proxy's name in this run (default `default`).
    #[serde(default = "default_proxy")]
    pub proxy: String,
    /// Where the proxy listens when this step starts it (default `127.0.0.1:0`: a free port).
    #[serde(default)]
    pub listen: Option<Text>,
    /// `host:port` the proxy forwards to; needed when this step starts the proxy.
    #[serde(default)]
    pub upstream: Option<Text>,
    /// Toxics, in Toxiproxy's form: `{type, stream, toxicity, attributes}`.
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub toxics: Vec<ToxicJson>,
    /// Take the proxy down: refuse new connections and cut the open ones.
    #[serde(default)]
    pub down: bool,
    /// How long the fault lasts; without it, until `chaos.revert` or the run's end.
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub wait: bool,
}

fn default_proxy() -> String {
    "default".into()
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let name = options.proxy.clone();
    let started_here = TCP_PROXIES.get(&cx.run_id, &options.proxy).is_none();
    let proxy = named_proxy(
        &TCP_PROXIES,
        cx,
        ProxySpec {
            name: &options.proxy,
            listen: &options.listen,
            upstream: &options.upstream,
            upstream_hint: "host:port",
        },
        |listen, upstream| async move { Ok(Proxy::start(&name, &listen, &upstream).await?) },
        Proxy::stop,
    )
    .await?;
    if started_here {
        crate::steps::traffic::journal_proxy(cx, &proxy).await?;
    }
    let mut out = Outputs::new();
    if !options.toxics.is_empty() || options.down {
        out = activate(
            cx,
            crate::chaos::tcp::inject(&proxy, options.toxics, options.down),
            options.duration.map(|d| d.get()),
            options.wait,
        )
        .await?;
    }
    out.insert("listen".into(), proxy.listen_addr().to_string().into());
    out.insert("listen_host".into(), proxy.listen_addr().ip().to_string().into());
    out.insert("listen_port".into(), proxy.listen_addr().port().into());
    Ok(out)
}

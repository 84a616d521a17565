//! `postgres.fence`: make sure a former primary can never accept writes — stop it where it
//! is local, take down the run's proxies that still route to it — and verify the fence
//! with a write attempt through every path.

use crate::plan::model::Limit;
use crate::steps::outputs_of;
use crate::steps::timestamp;
use crate::steps::traffic::TCP_PROXIES;
use crate::steps::{Outputs, StepContext, StepError, Text};
use lifeboat_failover::postgres::fence::{self, FenceOptions};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The former primary, `postgres://user@host:port/db`.
    pub dsn: crate::steps::dsn::Dsn,
    /// Its instance directory when it runs on this machine (it is stopped).
    #[serde(default)]
    pub dir: Option<Text>,
    /// Run proxies (by name) to take down if they still route to it.
    #[serde(default)]
    pub proxies: Vec<String>,
    /// Further DSNs clients use to reach it (a proxy, a pooler); each must refuse a write.
    #[serde(default)]
    pub paths: Vec<crate::steps::dsn::Dsn>,
    /// How long a write attempt may go unanswered before its path counts as refusing
    /// (default 3s); a cut-off region answers nothing, so this is part of the RTO.
    #[serde(default)]
    pub attempt_timeout: Option<Limit>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let target = lifeboat_failover::postgres::parse_dsn(&options.dsn.0)?;
    let address = format!("{}:{}", target.get_host(), target.get_port());
    let mut cut = Vec::new();
    for name in &options.proxies {
        let proxy = TCP_PROXIES
            .get(&cx.run_id, name)
            .ok_or_else(|| StepError::terminal(format!("proxies: no proxy `{name}` runs in this run")))?;
        if proxy.upstream() == address && proxy.enabled() {
            proxy.set_enabled(false).await?;
            crate::steps::traffic::journal_proxy(cx, &proxy).await?;
            cut.push(name.clone());
        }
    }
    let fence_options = FenceOptions {
        dir: options.dir.map(|d| std::path::PathBuf::from(d.0)),
        dsn: options.dsn.0,
        paths: options.paths.into_iter().map(|p| p.0).collect(),
        attempt_timeout: options.attempt_timeout.map_or(fence::ATTEMPT_TIMEOUT, |d| d.get()),
        spawner: cx.spawner(),
    };
    let fenced = fence::fence(&fence_options).await?;
    let mut out = outputs_of(&fenced);
    out.insert("fenced_at".into(), timestamp(fenced.fenced_at));
    out.insert("proxies_cut".into(), cut.into());
    Ok(out)
}

//! `chaos.http`: HTTP faults through lifeboat's HTTP fault proxy. The first step naming a
//! proxy starts it (`listen` → `upstream` base URL) for the rest of the run. Rules abort
//! matching requests with a status or delay them, for a fraction of requests.

use super::{ProxySpec, activate, named_proxy};
use crate::chaos::http_proxy::{HttpFaultProxy, HttpRule};
use crate::chaos::{Injection, Revert};
use crate::plan::model::{HumanDuration, Limit};
use crate::plan::ratio::Ratio;
use crate::steps::background::RunServices;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The proxy's name in this run (default `default`).
    #[serde(default = "default_proxy")]
    pub proxy: String,
    /// Where the proxy listens when this step starts it (default `127.0.0.1:0`).
    #[serde(default)]
    pub listen: Option<Text>,
    /// Base URL the proxy forwards to, e.g. `http://127.0.0.1:8080`.
    #[serde(default)]
    pub upstream: Option<Text>,
    #[serde(default)]
    pub rules: Vec<RuleOptions>,
    /// How long the rules apply; without it, until `chaos.revert` or the run's end.
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleOptions {
    /// Only this method (default: any).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths matching this regex (default: any).
    #[serde(default)]
    pub path: Option<String>,
    /// Answer with this status instead of forwarding.
    #[serde(default)]
    pub abort: Option<crate::plan::count::Count<100, 599>>,
    /// Delay the request.
    #[serde(default)]
    pub delay: Option<HumanDuration<0, { crate::plan::duration::HOUR_MS }>>,
    /// Fraction of matching requests affected (default 1.0).
    #[serde(default)]
    pub fraction: Option<Ratio>,
}

fn default_proxy() -> String {
    "default".into()
}

static PROXIES: RunServices<HttpFaultProxy> = RunServices::new();

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let proxy = named_proxy(
        &PROXIES,
        cx,
        ProxySpec {
            name: &options.proxy,
            listen: &options.listen,
            upstream: &options.upstream,
            upstream_hint: "a base URL",
        },
        |listen, upstream| async move { Ok(HttpFaultProxy::start(&listen, &upstream).await?) },
        HttpFaultProxy::stop,
    )
    .await?;
    let mut rules = Vec::new();
    for (i, r) in options.rules.iter().enumerate() {
        let fraction = r.fraction.map_or(1.0, |f| f.0);
        if r.abort.is_none() && r.delay.is_none() {
            return Err(StepError::terminal(format!("rules[{i}]: give `abort` (a status) and/or `delay`")));
        }
        let path = r
            .path
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| StepError::terminal(format!("rules[{i}].path: {e}")))?;
        rules.push(HttpRule {
            owner: cx.step_id.clone(),
            method: r.method.clone(),
            path,
            abort_status: r.abort.map(|s| s.get() as u16),
            delay: r.delay.map_or(Duration::ZERO, |d| d.get()),
            fraction,
        });
    }
    let mut out = Outputs::new();
    if !rules.is_empty() {
        let described: Vec<serde_json::Value> = options
            .rules
            .iter()
            .map(|r| serde_json::json!({ "method": r.method, "path": r.path, "abort": r.abort, "delay": r.delay, "fraction": r.fraction.map_or(1.0, |f| f.0) }))
            .collect();
        let (target, owner) = (proxy.clone(), cx.step_id.clone());
        let inject = async move {
            let before = target.stats();
            target.add_rules(rules);
            let injected_at = chrono::Utc::now();
            let undo_target = target.clone();
            Ok(Injection {
                injected_at,
                evidence: crate::chaos::evidence([
                    ("listen", target.listen_addr().to_string().into()),
                    ("rules", described.into()),
                    ("requests_before", before.requests.into()),
                ]),
                revert: Some(Revert {
                    undo: Box::pin(async move {
                        undo_target.remove_rules_of(&owner);
                        let s = undo_target.stats();
                        Ok(crate::chaos::evidence([
                            ("requests", (s.requests - before.requests).into()),
                            ("aborted", (s.aborted - before.aborted).into()),
                            ("delayed", (s.delayed - before.delayed).into()),
                        ]))
                    }),
                    durable: None,
                }),
            })
        };
        out = activate(cx, inject, options.duration.map(|d| d.get()), options.wait).await?;
    }
    out.insert("listen".into(), proxy.listen_addr().to_string().into());
    out.insert("url".into(), format!("http://{}", proxy.listen_addr()).into());
    Ok(out)
}

//! The `traffic.*` step kinds and the run's TCP proxies they share with `chaos.network`
//! (which starts them) and `postgres.fence` (which closes them), with their journaled traffic
//! state ([`ProxyState`]), from which a resumed run restarts them.

pub mod k8s_service;
pub mod pgbouncer;
pub mod proxy;
pub mod route53;

use super::background::RunServices;
use super::{RunHandle, StepContext, StepError};
use crate::evidence::proxy::ProxyState;
use lifeboat_failover::proxy::Proxy;

/// The run's TCP proxies by name.
pub static TCP_PROXIES: RunServices<Proxy> = RunServices::new();

/// Journals `proxy`'s traffic state after `cx`'s step started, re-pointed or fenced it.
pub async fn journal_proxy(cx: &StepContext, proxy: &Proxy) -> Result<(), StepError> {
    let state = ProxyState {
        listen: proxy.listen_addr().to_string(),
        upstream: proxy.upstream(),
        enabled: proxy.enabled(),
        step: cx.step_id.clone(),
        at: Some(chrono::Utc::now()),
    };
    cx.run
        .record(proxy.name(), &state)
        .await
        .map_err(|e| StepError::retryable(format!("journaling the state of proxy `{}`: {e}", proxy.name())))
}

/// After a crash: the run's TCP proxies died with the engine; clients expect the same
/// endpoint, so each starts again on its address, with its last upstream, open or fenced
/// as it was. Returns how many were started.
pub async fn restore_proxies(run: &RunHandle) -> Result<usize, StepError> {
    let mut restored = 0;
    for (name, state) in run.all_records::<ProxyState>().await? {
        if TCP_PROXIES.get(run.run_id(), &name).is_some() {
            continue;
        }
        let started = match Proxy::start(&name, &state.listen, &state.upstream).await {
            Ok(p) if state.enabled => Ok(p),
            Ok(p) => p.set_enabled(false).await.map(|()| p),
            Err(e) => Err(e),
        };
        match started {
            Ok(proxy) => {
                tracing::warn!(run = %run.run_id(), proxy = %name, listen = %state.listen, upstream = %state.upstream, enabled = state.enabled,
                    "restarted a proxy of the interrupted owner");
                TCP_PROXIES.insert(run.run_id(), &state.step, &name, proxy, Proxy::stop);
                restored += 1;
            }
            Err(e) => {
                tracing::error!(run = %run.run_id(), proxy = %name, listen = %state.listen, error = %e, "could not restart the proxy")
            }
        }
    }
    Ok(restored)
}

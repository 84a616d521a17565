//! What the failover step kinds (`postgres.standby`, `postgres.promote`,
//! `postgres.replication_status`, `traffic.*`) share: error conversion, and the run's TCP
//! proxies — which `chaos.network` starts, `traffic.proxy` re-points and `postgres.fence`
//! closes — with their journaled traffic state, from which a resumed run restarts them.

use super::{StepContext, StepError};
use crate::engine::background::RunServices;
use crate::journal::{Journal, JournalError, SideRecord};
use lifeboat_failover::FailoverError;
use lifeboat_failover::proxy::{Proxy, ProxyError};
use serde::{Deserialize, Serialize};

impl From<FailoverError> for StepError {
    fn from(error: FailoverError) -> Self {
        StepError {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

impl From<ProxyError> for StepError {
    fn from(error: ProxyError) -> Self {
        StepError {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

/// The run's TCP proxies by name.
pub static TCP_PROXIES: RunServices<Proxy> = RunServices::new();

/// Side channel `proxy/<name>`: the traffic state of a run's TCP proxy, one record
/// overwritten at each change.
const PROXY_CHANNEL: &str = "proxy/";

/// What clients see of a proxy: where it listens, where it sends, whether it is open.
/// Faults (toxics, `down`) are not part of it: they end with the process that held them.
#[derive(Serialize, Deserialize)]
struct ProxyState {
    listen: String,
    upstream: String,
    enabled: bool,
    /// The step that last changed it.
    step: String,
}

/// Journals `proxy`'s traffic state after `cx`'s step started, re-pointed or fenced it.
pub async fn journal_proxy(cx: &StepContext, proxy: &Proxy) -> Result<(), StepError> {
    let state = ProxyState {
        listen: proxy.listen_addr().to_string(),
        upstream: proxy.upstream(),
        enabled: proxy.enabled(),
        step: cx.step_id.clone(),
    };
    let record = SideRecord {
        key: 0,
        at: chrono::Utc::now(),
        payload: serde_json::to_value(state).unwrap_or_default(),
    };
    cx.journal
        .put_records(&cx.run_id, &format!("{PROXY_CHANNEL}{}", proxy.name()), &[record])
        .await
        .map_err(|e| StepError::retryable(format!("journaling the state of proxy `{}`: {e}", proxy.name())))
}

/// After a crash: the run's TCP proxies died with the engine; clients expect the same
/// endpoint, so each starts again on its address, with its last upstream, open or fenced
/// as it was. Returns how many were started.
pub async fn restore_proxies(journal: &Journal, run_id: &str) -> Result<usize, JournalError> {
    let mut restored = 0;
    for (channel, record) in journal.records(run_id, PROXY_CHANNEL).await? {
        let name = channel.trim_start_matches(PROXY_CHANNEL);
        if TCP_PROXIES.get(run_id, name).is_some() {
            continue;
        }
        let Ok(state) = serde_json::from_value::<ProxyState>(record.payload) else {
            tracing::error!(run = %run_id, proxy = %name, "unreadable proxy state in the journal; not restored");
            continue;
        };
        let started = match Proxy::start(name, &state.listen, &state.upstream).await {
            Ok(p) if state.enabled => Ok(p),
            Ok(p) => p.set_enabled(false).await.map(|()| p),
            Err(e) => Err(e),
        };
        match started {
            Ok(proxy) => {
                tracing::warn!(run = %run_id, proxy = %name, listen = %state.listen, upstream = %state.upstream, enabled = state.enabled,
                    "restarted a proxy of the interrupted owner");
                TCP_PROXIES.insert(run_id, &state.step, name, proxy, Proxy::stop);
                restored += 1;
            }
            Err(e) => tracing::error!(run = %run_id, proxy = %name, listen = %state.listen, error = %e, "could not restart the proxy"),
        }
    }
    Ok(restored)
}

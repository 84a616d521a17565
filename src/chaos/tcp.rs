//! Network faults through the built-in TCP proxy (`lifeboat_failover::proxy`): toxics on
//! its links, or the whole proxy down. Clients must reach the service through the proxy,
//! so a plan starts it early (a `chaos.network` step with no toxics) and points clients
//! at its `listen` output.

use super::{ChaosError, Injection, Revert, evidence, ts};
use chrono::Utc;
use lifeboat_failover::proxy::Proxy;
use lifeboat_failover::proxy::toxic::{Toxic, ToxicJson};

/// Adds `toxics` (and takes the proxy down if `down`); the revert removes exactly those
/// and brings the proxy back up.
pub async fn inject(proxy: &Proxy, toxics: Vec<ToxicJson>, down: bool) -> Result<Injection, ChaosError> {
    let toxics: Vec<Toxic> = toxics
        .into_iter()
        .map(|t| Toxic::try_from(t).map_err(|e| ChaosError::Invalid(format!("toxics: {e}"))))
        .collect::<Result<_, _>>()?;
    let mut added: Vec<String> = Vec::new();
    for toxic in &toxics {
        if let Err(e) = proxy.add_toxic(toxic.clone()) {
            for name in &added {
                let _ = proxy.remove_toxic(name);
            }
            return Err(ChaosError::Invalid(e.to_string()));
        }
        added.push(toxic.name.clone());
    }
    if down {
        proxy.set_enabled(false).await.map_err(|e| ChaosError::NotApplied(e.to_string()))?;
    }
    let injected_at = Utc::now();
    let stats_before = proxy.stats();
    let ev = evidence([
        ("proxy", proxy.name().into()),
        ("listen", proxy.listen_addr().to_string().into()),
        ("upstream", proxy.upstream().into()),
        ("toxics", toxics.iter().map(Toxic::to_json).collect::<Vec<_>>().into()),
        ("down", down.into()),
        ("active_connections", stats_before.connections_active.into()),
        ("applied_at", ts(injected_at)),
    ]);
    let proxy = proxy.clone();
    let undo = Box::pin(async move {
        for name in &added {
            let _ = proxy.remove_toxic(name);
        }
        if down {
            proxy.set_enabled(true).await.map_err(|e| e.to_string())?;
        }
        let stats = proxy.stats();
        let hits: serde_json::Map<String, serde_json::Value> = added
            .iter()
            .map(|n| (n.clone(), stats.toxic_connections.get(n).copied().unwrap_or(0).into()))
            .collect();
        Ok(evidence([
            ("connections_affected", hits.into()),
            ("connections_total", stats.connections_total.into()),
        ]))
    });
    Ok(Injection {
        injected_at,
        evidence: ev,
        revert: Some(Revert { undo, durable: None }),
    })
}

//! The `chaos.*` step kinds and what they share: injecting once per idempotency key,
//! journaling the evidence (typed [`FaultRecord`]s), and handing persistent faults to the
//! run's background work so they are reverted after their `duration`, on abort or
//! rollback, by `chaos.revert`, or at the run's end.

pub mod clock_skew;
pub mod disk_fill;
pub mod http;
pub mod network;
pub mod partition;
pub mod process_kill;
pub mod revert;
pub mod sql;
pub mod stress;

use super::background::Class;
use super::{Outputs, RunHandle, StepContext, StepError};
use crate::chaos::{ChaosError, DurableRevert, Injection};
use crate::evidence::fault::{FaultHistory, FaultRecord, Injected, Intent, Reverted, UndoneAfterCrash};
use crate::evidence::outcome::{FaultApplied, Outcome};
use chrono::Utc;
use std::future::Future;
use std::time::Duration;

/// Injects the fault unless this step already did (a resumed or retried step must not
/// kill a second process or fill a disk twice), journals it, and arranges its revert.
pub async fn activate<F>(cx: &StepContext, inject: F, duration: Option<Duration>, wait: bool) -> Result<Outputs, StepError>
where
    F: Future<Output = Result<Injection, ChaosError>>,
{
    activate_with_intent(cx, None, inject, duration, wait).await
}

/// [`activate`] for a fault whose durable revert is known before it is applied: that revert
/// is journaled first.
pub async fn activate_with_intent<F>(
    cx: &StepContext,
    intent: Option<DurableRevert>,
    inject: F,
    duration: Option<Duration>,
    wait: bool,
) -> Result<Outputs, StepError>
where
    F: Future<Output = Result<Injection, ChaosError>>,
{
    let earlier = FaultHistory::of(cx.records::<FaultRecord>().await?);
    if let Some(injected) = earlier.injected {
        tracing::info!(run = %cx.run_id, step = %cx.step_id, "fault already injected by an earlier attempt; not injecting again");
        return Ok(applied(&injected, None).to_outputs());
    }
    if let Some(intent) = &intent {
        cx.record(&intent_record(intent, None)).await?;
    }
    let injected = if intent.is_some() {
        // Not raced against cancellation: a fault half applied when its future is dropped
        // (work on a blocking thread goes on) would escape both the intent and the revert.
        // A cancelled run reverts it once it is journaled.
        inject.await
    } else {
        tokio::select! {
            r = inject => r,
            _ = cx.cancel.cancelled() => Err(ChaosError::NotApplied("cancelled".into())),
        }
    };
    let injection = match (injected, &intent) {
        (Ok(injection), _) => injection,
        (Err(e), None) => return Err(e.into()),
        (Err(e), Some(intent)) => {
            // Not applied: nothing for a resume to undo (it might be someone else's state).
            let _ = cx.record(&intent_record(intent, Some(format!("not applied: {e}")))).await;
            return Err(e.into());
        }
    };
    let Injection {
        injected_at,
        evidence,
        revert,
    } = injection;
    let record = Injected {
        injected_at,
        evidence,
        persistent: revert.is_some(),
        reverts_at: duration.filter(|_| revert.is_some()).map(|d| injected_at + d),
        durable_revert: revert.as_ref().and_then(|r| r.durable.clone()),
    };
    if let Err(e) = cx.record(&FaultRecord::Injected(record.clone())).await {
        // The fault is in effect but unrecorded: undo it rather than leave it unowned.
        if let Some(r) = revert {
            let _ = r.undo.await;
        }
        return Err(e);
    }
    tracing::warn!(run = %cx.run_id, step = %cx.step_id, injected_at = %injected_at, "fault injected");
    if let Some(revert) = revert {
        let (run, step) = (cx.run.clone(), cx.step_id.clone());
        cx.run.hold(
            &cx.step_id,
            Class::Fault,
            Box::new(move |reason| {
                Box::pin(async move {
                    let outcome = revert.undo.await;
                    record_revert(&run, &step, &reason, outcome).await;
                })
            }),
        );
        if let Some(d) = duration {
            let (run, step) = (cx.run.clone(), cx.step_id.clone());
            let timer = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                run.release_step(&step, Class::Fault, "its duration elapsed").await;
            });
            if wait {
                tokio::select! {
                    _ = timer => {}
                    _ = cx.cancel.cancelled() => {
                        cx.run.release_step(&cx.step_id, Class::Fault, "the step was cancelled").await;
                        return Err(StepError::retryable("cancelled"));
                    }
                }
            }
        }
    }
    let reverted = if wait {
        FaultHistory::of(cx.records::<FaultRecord>().await?).reverted
    } else {
        None
    };
    Ok(applied(&record, reverted).to_outputs())
}

fn applied(injected: &Injected, reverted: Option<Reverted>) -> FaultApplied {
    FaultApplied {
        injected_at: injected.injected_at,
        reverts_at: injected.reverts_at,
        reverted_at: reverted.as_ref().map(|r| r.reverted_at),
        revert: reverted,
        evidence: injected.evidence.clone(),
    }
}

fn intent_record(revert: &DurableRevert, settled: Option<String>) -> FaultRecord {
    FaultRecord::Intent(Intent {
        durable_revert: revert.clone(),
        settled,
        at: Some(Utc::now()),
    })
}

async fn record_revert(run: &RunHandle, step: &str, reason: &str, outcome: Result<serde_json::Map<String, serde_json::Value>, String>) {
    match &outcome {
        Ok(_) => tracing::info!(run = %run.run_id(), step = %step, reason = %reason, "fault reverted"),
        Err(e) => tracing::error!(run = %run.run_id(), step = %step, reason = %reason, error = %run.redact(e), "fault revert failed"),
    }
    let (observed, error) = match outcome {
        Ok(observed) => (Some(observed), None),
        Err(e) => (None, Some(e)),
    };
    let record = FaultRecord::Reverted(Reverted {
        reverted_at: Utc::now(),
        reason: reason.to_owned(),
        observed,
        error,
    });
    if let Err(e) = run.record(step, &record).await {
        tracing::error!(run = %run.run_id(), step = %step, error = %e, "could not journal a fault's revert");
    }
}

/// Applies a durable revert: a local one here, a Kubernetes experiment through its cluster.
async fn undo(revert: &DurableRevert) -> Result<String, String> {
    let connect = |name: &String, spec: &crate::plan::model::ClusterSpec| {
        super::k8s::access::connect(super::k8s::access::ClusterAccess {
            name: name.clone(),
            spec: Ok(spec.clone()),
        })
    };
    let note = |evidence: serde_json::Map<String, serde_json::Value>| {
        evidence.get("note").and_then(|n| n.as_str()).unwrap_or("recovered").to_owned()
    };
    match revert {
        DurableRevert::ChaosMeshExperiment {
            cluster_name,
            cluster,
            kind,
            namespace,
            name,
            force_finalizer,
            limit_ms,
        } => {
            let (client, _) = connect(cluster_name, cluster).await.map_err(|e| e.message)?;
            let experiment = crate::chaos::chaos_mesh::Experiment {
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            };
            crate::chaos::chaos_mesh::recover(client, experiment, Duration::from_millis(*limit_ms), *force_finalizer)
                .await
                .map(note)
        }
        DurableRevert::LitmusEngine {
            cluster_name,
            cluster,
            namespace,
            name,
            experiments,
            limit_ms,
        } => {
            let (client, _) = connect(cluster_name, cluster).await.map_err(|e| e.message)?;
            let engine = crate::chaos::litmus::Engine {
                namespace: namespace.clone(),
                name: name.clone(),
            };
            crate::chaos::litmus::stop(client, engine, experiments.clone(), Duration::from_millis(*limit_ms))
                .await
                .map(note)
        }
        local => local.apply(),
    }
}

/// After a crash: undoes the injections of the run that were never reverted and can be
/// undone from here (a stopped process, a fill file, a link). In-process faults died with
/// the process that held them; they are recorded as such.
pub async fn revert_leftovers(run: &RunHandle) -> Result<usize, StepError> {
    let mut undone = 0;
    for (step, history) in FaultHistory::by_step(run.all_records::<FaultRecord>().await?) {
        if let Some(injected) = &history.injected {
            if history.reverted.is_some() {
                continue;
            }
            let outcome = match &injected.durable_revert {
                Some(d) => undo(d).await.map(|note| crate::chaos::evidence([("note", note.into())])),
                None if injected.persistent => Ok(crate::chaos::evidence([(
                    "note",
                    "ended with the engine process that held it".into(),
                )])),
                None => continue,
            };
            record_revert(run, &step, "reverted when the run was resumed after a crash", outcome).await;
            undone += 1;
            continue;
        }
        // Processes an attempt may have frozen before it could journal doing so.
        if let Some(aimed) = history
            .aimed
            .as_ref()
            .filter(|a| a.signal == format!("{:?}", crate::chaos::process::How::Stop))
        {
            for p in &aimed.processes {
                let revert = crate::chaos::DurableRevert::ContinueProcess {
                    pid: p.pid,
                    start_time: p.start_time,
                };
                let note = undo(&revert).await.unwrap_or_else(|e| format!("continuing failed: {e}"));
                tracing::warn!(run = %run.run_id(), step = %step, note = %note, "continued a process the interrupted owner may have frozen without journaling it");
                let record = FaultRecord::UndoneAfterCrash(UndoneAfterCrash {
                    durable_revert: revert,
                    note,
                    at: Some(Utc::now()),
                });
                run.record(&step, &record).await?;
            }
            undone += 1;
        }
        // A fault that may have been applied but was never journaled as injected.
        let Some(intent) = history.intent.filter(|i| i.settled.is_none()) else {
            continue;
        };
        let note = match undo(&intent.durable_revert).await {
            Ok(note) => note,
            Err(e) => format!("undoing failed: {e}"),
        };
        tracing::warn!(run = %run.run_id(), step = %step, note = %note, "undid a fault the interrupted owner may have applied without journaling it");
        run.record(
            &step,
            &intent_record(&intent.durable_revert, Some("undone when the run was resumed".into())),
        )
        .await?;
        let record = FaultRecord::UndoneAfterCrash(UndoneAfterCrash {
            durable_revert: intent.durable_revert,
            note,
            at: Some(Utc::now()),
        });
        run.record(&step, &record).await?;
        undone += 1;
    }
    Ok(undone)
}

/// Where a step's fault proxy listens and forwards to.
pub struct ProxySpec<'a> {
    pub name: &'a str,
    pub listen: &'a Option<super::Text>,
    pub upstream: &'a Option<super::Text>,
    /// What `upstream` looks like, for the error when it is missing.
    pub upstream_hint: &'a str,
}

/// The run's fault proxy called `spec.name`: the first step naming it starts it (`listen`,
/// by default a free loopback port, → `upstream`), and it lives until the run ends.
pub async fn named_proxy<T, Fut>(
    proxies: &'static super::background::RunServices<T>,
    cx: &StepContext,
    spec: ProxySpec<'_>,
    start: impl FnOnce(String, String) -> Fut,
    stop: fn(&T),
) -> Result<T, StepError>
where
    T: Clone + Send + 'static,
    Fut: Future<Output = Result<T, StepError>>,
{
    let ProxySpec {
        name,
        listen,
        upstream,
        upstream_hint,
    } = spec;
    if let Some(p) = proxies.get(&cx.run_id, name) {
        return Ok(p);
    }
    let upstream = upstream.as_ref().ok_or_else(|| {
        StepError::terminal(format!(
            "proxy `{name}` is not running in this run; give `upstream` ({upstream_hint}) to start it"
        ))
    })?;
    let listen = listen.as_ref().map_or("127.0.0.1:0", |l| l.0.as_str());
    let proxy = start(listen.to_owned(), upstream.0.clone()).await?;
    proxies.insert(&cx.run_id, &cx.step_id, name, proxy.clone(), stop);
    Ok(proxy)
}

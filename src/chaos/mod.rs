//! Local fault injectors. Each injector applies a real fault, observes that it took
//! effect (the evidence the RTO/RPO clock starts on), and, where the fault persists,
//! returns how to revert it.
//!
//! Reverting is the engine's business (`src/engine/background.rs`): after a fault's
//! `duration`, on abort or rollback, by a `chaos.revert` step, and always before a run's
//! end is journaled. Reverts that must survive an engine crash (a stopped process, a
//! fill file, a link taken down) are also described as a [`DurableRevert`], journaled with the injection,
//! so that `lifeboat resume` can undo them.

pub mod chaos_mesh;
pub mod clock_skew;
pub mod disk_fill;
pub mod http_proxy;
pub mod litmus;
pub mod partition;
pub mod process;
pub mod sql;
pub mod stress;
pub mod tcp;
pub mod toxiproxy_api;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The options cannot work; fix the plan.
    #[error("{0}")]
    Invalid(String),
    /// The fault could not be applied or not be observed; trying again may help.
    #[error("{0}")]
    NotApplied(String),
    /// The experiment ran and its own checks failed (a verdict of Fail): running it again
    /// would inject the fault again, so it is not retried.
    #[error("{0}")]
    Failed(String),
}

impl ChaosError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ChaosError::NotApplied(_))
    }
}

/// A fault that took effect.
pub struct Injection {
    /// When the fault was observed in effect: the RTO/RPO clock starts here.
    pub injected_at: DateTime<Utc>,
    /// What the injector did and observed.
    pub evidence: Map<String, Value>,
    /// How to undo it, for faults that persist.
    pub revert: Option<Revert>,
}

/// Undoing a persistent fault; the future yields what was observed while reverting.
pub struct Revert {
    pub undo: BoxFuture<'static, Result<Map<String, Value>, String>>,
    pub durable: Option<DurableRevert>,
}

/// A revert that still works from another process, after the injecting one died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DurableRevert {
    /// SIGCONT to a stopped process, if it is still the same process (start time).
    ContinueProcess {
        pid: i32,
        start_time: u64,
    },
    RemoveFile {
        path: PathBuf,
    },
    LinkUp {
        netns: Option<String>,
        link: String,
    },
    RemoveBlackhole {
        netns: Option<String>,
        prefix: String,
    },
    /// Recover a Chaos Mesh experiment: delete it on its cluster and wait until Chaos Mesh
    /// lets it go (see [`chaos_mesh::recover`]); asynchronous, so the resume runs it itself.
    ChaosMeshExperiment {
        cluster_name: String,
        cluster: crate::plan::model::ClusterSpec,
        kind: String,
        namespace: String,
        name: String,
        force_finalizer: bool,
        limit_ms: u64,
    },
    /// Stop a LitmusChaos engine (`engineState: stop`) on its cluster and wait for its
    /// results to be final (see [`litmus::stop`]); asynchronous, like the Chaos Mesh one.
    LitmusEngine {
        cluster_name: String,
        cluster: crate::plan::model::ClusterSpec,
        namespace: String,
        name: String,
        experiments: Vec<String>,
        limit_ms: u64,
    },
}

impl DurableRevert {
    pub fn apply(&self) -> Result<String, String> {
        match self {
            DurableRevert::ContinueProcess { pid, start_time } => {
                if process::start_time(*pid) != Some(*start_time) {
                    return Ok(format!("process {pid} is gone; nothing to continue"));
                }
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGCONT)
                    .map_err(|e| format!("SIGCONT to {pid}: {e}"))?;
                Ok(format!("sent SIGCONT to {pid}"))
            }
            DurableRevert::RemoveFile { path } => match std::fs::remove_file(path) {
                Ok(()) => Ok(format!("removed {}", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!("{} was already gone", path.display())),
                Err(e) => Err(format!("removing {}: {e}", path.display())),
            },
            DurableRevert::LinkUp { netns, link } => partition::link_up(netns.as_deref(), link),
            DurableRevert::RemoveBlackhole { netns, prefix } => partition::remove_blackhole(netns.as_deref(), prefix),
            DurableRevert::ChaosMeshExperiment { kind, namespace, name, .. } => Err(format!(
                "{kind} {namespace}/{name} is recovered through its cluster, asynchronously"
            )),
            DurableRevert::LitmusEngine { namespace, name, .. } => Err(format!(
                "ChaosEngine {namespace}/{name} is stopped through its cluster, asynchronously"
            )),
        }
    }
}

/// Evidence maps are built field by field.
pub(crate) fn evidence<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn ts(t: DateTime<Utc>) -> Value {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into()
}

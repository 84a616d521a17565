//! The journal's event schema (version 1). Stored as JSON, one row per event.
//!
//! This is a storage format: change it only by adding optional fields or new variants,
//! because old journals must keep loading.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run exists. Holds the plan source exactly as compiled and the resolved params
    /// (secrets are never params: they come from `env.*` and are never stored).
    RunCreated {
        plan_name: String,
        plan_file: String,
        plan_source: String,
        plan_sha256: String,
        params: BTreeMap<String, Value>,
        lock: Option<String>,
    },
    /// A process took over an interrupted run; `rerun` lists steps that had started and
    /// not finished, which will be run again with the same idempotency key.
    RunResumed {
        host: String,
        pid: u32,
        rerun: Vec<String>,
    },
    StepStarted {
        step: String,
        attempt: u32,
        idempotency_key: String,
    },
    StepSucceeded {
        step: String,
        attempt: u32,
        outputs: Map<String, Value>,
    },
    /// `retry_in_ms` is set when another attempt will follow after that wait, counted from
    /// `failed_at` (from the event's journal time in journals written before it existed).
    StepFailed {
        step: String,
        attempt: u32,
        error: String,
        retryable: bool,
        retry_in_ms: Option<u64>,
        /// When the attempt failed: the retry's wait counts from here, so a replay computes
        /// the same deadline as the live run (the event is journaled a moment later).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_at: Option<DateTime<Utc>>,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    RollbackStarted {
        reason: String,
    },
    CompensationStarted {
        step: String,
        attempt: u32,
        idempotency_key: String,
    },
    CompensationSucceeded {
        step: String,
        attempt: u32,
        outputs: Map<String, Value>,
    },
    CompensationFailed {
        step: String,
        attempt: u32,
        error: String,
        retryable: bool,
        retry_in_ms: Option<u64>,
        /// When the attempt failed: the retry's wait counts from here, so a replay computes
        /// the same deadline as the live run (the event is journaled a moment later).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_at: Option<DateTime<Utc>>,
    },
    AbortRequested {
        by: String,
        reason: Option<String>,
        rollback: bool,
    },
    RunFinished {
        status: RunStatus,
        reason: Option<String>,
    },
    /// A guard's probe failed `failures` checks in a row; an `AbortRequested` follows.
    GuardBreached {
        guard: String,
        error: String,
        failures: u32,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunCreated { .. } => "run_created",
            Event::RunResumed { .. } => "run_resumed",
            Event::StepStarted { .. } => "step_started",
            Event::StepSucceeded { .. } => "step_succeeded",
            Event::StepFailed { .. } => "step_failed",
            Event::StepSkipped { .. } => "step_skipped",
            Event::RollbackStarted { .. } => "rollback_started",
            Event::CompensationStarted { .. } => "compensation_started",
            Event::CompensationSucceeded { .. } => "compensation_succeeded",
            Event::CompensationFailed { .. } => "compensation_failed",
            Event::AbortRequested { .. } => "abort_requested",
            Event::RunFinished { .. } => "run_finished",
            Event::GuardBreached { .. } => "guard_breached",
        }
    }

    /// The step (or compensated step) the event is about.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step, .. }
            | Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::CompensationStarted { step, .. }
            | Event::CompensationSucceeded { step, .. }
            | Event::CompensationFailed { step, .. } => Some(step),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Aborted,
            RunStatus::RolledBack,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// An event as stored: its position in the run and when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: Event,
}

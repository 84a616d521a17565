//! Probes: one check of whether something serves (HTTP, TCP, SQL, PromQL), and polling a check
//! until it first passes. The time a probe first passed is the evidence the RTO clock
//! stops on, so it is taken right after the passing check returned.

pub mod http;
pub mod prometheus;
pub mod sql;
pub mod tcp;

use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// A check that can run many times.
#[derive(Debug, Clone)]
pub enum Probe {
    Http(http::HttpProbe),
    Tcp(tcp::TcpProbe),
    Sql(sql::SqlProbe),
    Prometheus(prometheus::PromProbe),
}

/// What a passing check saw: a line for people and, where a probe has one, the structured
/// evidence behind it (the samples a PromQL probe judged).
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub summary: String,
    pub detail: Option<serde_json::Value>,
}

impl From<String> for Observation {
    fn from(summary: String) -> Observation {
        Observation { summary, detail: None }
    }
}

impl Probe {
    /// Runs the check once. `Ok` carries what was observed (status, value…).
    pub async fn check(&self) -> Result<Observation, ValidationError> {
        match self {
            Probe::Http(p) => p.check().await.map(Observation::from),
            Probe::Tcp(p) => p.check().await.map(Observation::from),
            Probe::Sql(p) => p.check().await.map(Observation::from),
            Probe::Prometheus(p) => p.check().await,
        }
    }
}

/// How a polled probe went.
#[derive(Debug, Clone, Serialize)]
pub struct PollReport {
    pub passed_at: DateTime<Utc>,
    pub first_check_at: DateTime<Utc>,
    pub checks: u32,
    /// What the passing check observed.
    pub observed: String,
    /// Its structured evidence, where the probe has some.
    pub detail: Option<serde_json::Value>,
    /// The last failure before it passed, if any.
    pub last_failure: Option<String>,
}

/// What a poll waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Until {
    /// The service serves (recovery).
    #[default]
    Passing,
    /// The service is down (detecting an outage, as a failover's trigger would).
    Failing,
}

#[derive(Debug, Clone, Copy)]
pub struct PollSpec {
    pub interval: Duration,
    pub timeout: Duration,
    pub until: Until,
    /// Checks in a row with the wanted outcome (a failure threshold when `Failing`).
    pub consecutive: u32,
}

/// Checks every `interval` until `consecutive` checks in a row had the wanted outcome or
/// `timeout` has elapsed. A terminal error (a broken query, a bad regex) stops polling at
/// once. `passed_at` is when the deciding check returned.
pub async fn poll(probe: &Probe, spec: &PollSpec) -> Result<PollReport, ValidationError> {
    let first_check_at = Utc::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut checks = 0;
    let mut streak = 0;
    let mut last_failure: Option<String> = None;
    loop {
        checks += 1;
        let started = tokio::time::Instant::now();
        // A single check never runs past the deadline.
        let remaining = deadline.saturating_duration_since(started).max(Duration::from_millis(100));
        let outcome = match tokio::time::timeout(remaining, probe.check()).await {
            Ok(r) => r,
            Err(_) => Err(ValidationError::NotPassing(format!(
                "the check did not answer within {remaining:?}"
            ))),
        };
        let observed = match (outcome, spec.until) {
            (Err(e), _) if !e.is_retryable() => return Err(e),
            (Ok(observed), Until::Passing) => Some(observed),
            (Err(e), Until::Failing) => Some(e.to_string().into()),
            (Ok(observed), Until::Failing) => {
                last_failure = Some(format!("still serving: {}", observed.summary));
                None
            }
            (Err(e), Until::Passing) => {
                last_failure = Some(e.to_string());
                None
            }
        };
        match observed {
            Some(observed) => {
                streak += 1;
                if streak >= spec.consecutive.max(1) {
                    return Ok(PollReport {
                        passed_at: Utc::now(),
                        first_check_at,
                        checks,
                        observed: observed.summary,
                        detail: observed.detail,
                        last_failure,
                    });
                }
            }
            None => streak = 0,
        }
        let next = started + spec.interval;
        if next >= deadline {
            return Err(ValidationError::NotPassing(format!(
                "did not {} within {:?} ({checks} checks); last: {}",
                match spec.until {
                    Until::Passing => "pass",
                    Until::Failing => "fail",
                },
                spec.timeout,
                last_failure.unwrap_or_default()
            )));
        }
        tokio::time::sleep_until(next).await;
    }
}

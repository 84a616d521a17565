//! The compiled plan: what the executor runs. Produced only by the compiler, from a plan
//! that has no errors.

use super::expr::Expr;
use super::model::{Mark, NeedsSkipped, OnFailure, ParamType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CompiledPlan {
    pub name: String,
    pub description: Option<String>,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub max_rows_lost: Option<u64>,
    pub guards: Vec<Guard>,
    pub params: BTreeMap<String, ParamDecl>,
    pub concurrency: usize,
    pub lock: Option<String>,
    /// Kubernetes clusters by name, as written (rendered when a step uses one).
    pub clusters: BTreeMap<String, super::model::ClusterSpec>,
    /// Main steps, then `finally` steps, then compensations; indexes are stable.
    pub units: Vec<Unit>,
    /// Unit index by id: the executor resolves an id for every event it applies.
    pub by_id: std::collections::HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub kind: ParamType,
    pub default: Option<Value>,
    pub required: bool,
    pub description: Option<String>,
}

/// A halt condition watched by the runner (see `model::GuardSpec`).
#[derive(Debug, Clone)]
pub struct Guard {
    pub id: String,
    pub kind: String,
    pub with: Map<String, Value>,
    pub interval: Duration,
    pub failure_threshold: u32,
    pub rollback: bool,
    /// The main step whose success starts the watch; `None`: the run's start.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    Finally,
    /// Compensation of the main step with this index.
    Compensation {
        of: usize,
    },
}

/// One executable unit: a step, a `finally` step or a compensation.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The step id; compensations are `<step id>.compensate`.
    pub id: String,
    pub kind: String,
    pub role: Role,
    pub needs: Vec<usize>,
    pub with: Map<String, Value>,
    pub when: Option<(String, Expr)>,
    pub when_needs_skipped: NeedsSkipped,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub on_failure: OnFailure,
    pub compensation: Option<usize>,
    pub mark: Option<Mark>,
    /// The cluster (a key of `CompiledPlan::clusters`) a Kubernetes step works on.
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half the delay is fixed, half random, so
    /// retries of many steps spread out but never come sooner than half the nominal wait.
    pub fn delay_before(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(2).min(30);
        let nominal = self.backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

impl CompiledPlan {
    pub fn unit_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn units_with_role(&self, pred: impl Fn(Role) -> bool) -> impl Iterator<Item = (usize, &Unit)> {
        self.units.iter().enumerate().filter(move |(_, u)| pred(u.role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
        };
        assert_eq!(p.delay_before(2, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay_before(3, 1.0), Duration::from_secs(2));
        assert_eq!(p.delay_before(9, 1.0), Duration::from_secs(8));
        assert_eq!(p.delay_before(3, 0.0), Duration::from_secs(1));
    }
}

//! What the failover step kinds (`postgres.standby`, `postgres.promote`,
//! `postgres.replication_status`, `traffic.*`) share: error conversion and the run's TCP
//! proxies, which `chaos.network` starts and `traffic.proxy` re-points.

use super::StepError;
use crate::engine::background::RunServices;
use lifeboat_failover::FailoverError;
use lifeboat_failover::proxy::{Proxy, ProxyError};

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

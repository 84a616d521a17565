//! A failed attempt, and how the domain crates' errors become one.

use crate::chaos::ChaosError;
use lifeboat_backup::BackupError;
use lifeboat_failover::FailoverError;
use lifeboat_failover::proxy::ProxyError;
use lifeboat_validation::ValidationError;

/// A failed attempt. `retryable` says whether the same attempt could succeed later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
}

impl StepError {
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn terminal(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Each domain error knows whether a retry can help; the step error keeps that.
macro_rules! from_domain_error {
    ($($error:ty),*) => {$(
        impl From<$error> for StepError {
            fn from(error: $error) -> Self {
                StepError {
                    retryable: error.is_retryable(),
                    message: error.to_string(),
                }
            }
        }
    )*};
}

from_domain_error!(BackupError, FailoverError, ProxyError, ValidationError, ChaosError);

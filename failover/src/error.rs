//! Typed errors of the failover crate.

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// The options cannot work; fix the plan.
    #[error("{0}")]
    Invalid(String),
    /// PostgreSQL refused or was unreachable; `retryable` says whether trying again may help.
    #[error("{message}")]
    Postgres { message: String, retryable: bool },
    /// A condition was not reached in time (a standby not streaming, lag too high).
    #[error("{0}")]
    NotReady(String),
    #[error(transparent)]
    Instance(#[from] lifeboat_backup::BackupError),
    /// The Kubernetes API refused or could not be reached.
    #[error("{message}")]
    Kubernetes { message: String, retryable: bool },
}

impl FailoverError {
    pub fn is_retryable(&self) -> bool {
        match self {
            FailoverError::Invalid(_) => false,
            FailoverError::Postgres { retryable, .. } => *retryable,
            FailoverError::NotReady(_) => true,
            FailoverError::Instance(e) => e.is_retryable(),
            FailoverError::Kubernetes { retryable, .. } => *retryable,
        }
    }

    pub(crate) fn pg(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> FailoverError {
        let what = what.into();
        move |e| FailoverError::Postgres {
            retryable: !matches!(&e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("42"))),
            message: format!("{what}: {e}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, FailoverError>;

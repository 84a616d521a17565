//! The crate's error type. Every variant knows whether trying again can help, which is what
//! the engine's retry policy needs.

use std::path::PathBuf;

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The caller asked for something impossible or malformed; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),

    #[error("object store: {op} {key}: {message}")]
    Store {
        op: &'static str,
        key: String,
        message: String,
        retryable: bool,
    },

    #[error("checksum mismatch in {key}: metadata says sha256 {expected}, content has {actual}; the object is corrupt")]
    Checksum { key: String, expected: String, actual: String },

    #[error(
        "WAL file {name} is already archived with different content (sha256 {existing} vs {pushed}); refusing to overwrite it. \
         Two primaries may be archiving into the same repository (split brain): check which server owns this timeline"
    )]
    WalConflict { name: String, existing: String, pushed: String },

    #[error("{0}")]
    NotFound(String),

    /// The Kubernetes API refused or could not be reached.
    #[error("{message}")]
    Kubernetes { message: String, retryable: bool },

    /// Something awaited did not happen in time (a rollout, a Velero phase).
    #[error("{0}")]
    NotReady(String),

    #[error("PostgreSQL: {message}")]
    Postgres { message: String, retryable: bool },

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// Restore-specific failures that need a human: target out of range, WAL gaps, recovery failed.
    #[error("{0}")]
    Restore(String),
}

impl BackupError {
    pub fn is_retryable(&self) -> bool {
        match self {
            BackupError::Store { retryable, .. } | BackupError::Postgres { retryable, .. } | BackupError::Kubernetes { retryable, .. } => {
                *retryable
            }
            BackupError::NotReady(_) => true,
            BackupError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.into();
        move |source| BackupError::Io { path, source }
    }

    pub fn invalid(message: impl Into<String>) -> BackupError {
        BackupError::Invalid(message.into())
    }
}

impl From<sqlx::Error> for BackupError {
    fn from(error: sqlx::Error) -> Self {
        let retryable = matches!(error, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_));
        BackupError::Postgres {
            message: error.to_string(),
            retryable,
        }
    }
}

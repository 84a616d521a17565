//! Typed errors of the validation crate.

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The options cannot work (bad regex, bad address, bad query); fix the plan.
    #[error("{0}")]
    Invalid(String),
    /// The check ran and did not pass; it may pass later (a probe keeps polling).
    #[error("{0}")]
    NotPassing(String),
    /// The target could not be reached or answered with an error.
    #[error("{what}: {source}")]
    Database {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Unreachable(String),
}

impl ValidationError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ValidationError::Invalid(_) => false,
            ValidationError::NotPassing(_) | ValidationError::Unreachable(_) => true,
            ValidationError::Database { source, .. } => {
                !matches!(source, sqlx::Error::Database(db) if is_query_error(db.code().as_deref()))
            }
        }
    }

    pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> ValidationError {
        let what = what.into();
        move |source| ValidationError::Database { what, source }
    }
}

/// SQLSTATE classes that mean the query itself is wrong (syntax, undefined objects,
/// privileges): repeating it cannot help.
fn is_query_error(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("42"))
}

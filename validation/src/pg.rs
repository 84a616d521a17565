//! Short-lived PostgreSQL connections with a bounded connect time, so that a probe
//! against a dead server fails in seconds instead of hanging.

use crate::ValidationError;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::str::FromStr;
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to `dsn` (a `postgres://` URL or a `key=value` string), giving up after
/// [`CONNECT_TIMEOUT`].
pub async fn connect(dsn: &str) -> Result<PgConnection, ValidationError> {
    let options = PgConnectOptions::from_str(dsn)
        .map_err(|e| ValidationError::Invalid(format!("invalid PostgreSQL DSN: {e}; use postgres://user@host:port/db")))?
        .disable_statement_logging();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ValidationError::Database {
            what: format!("connecting to {}", display_target(&options)),
            source: e,
        }),
        Err(_) => Err(ValidationError::Unreachable(format!(
            "connecting to {} timed out after {}s",
            display_target(&options),
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Host, port and database, never the password.
pub fn display_target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

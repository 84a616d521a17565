//! PostgreSQL high availability operations: building a streaming standby, reading
//! replication state, promoting. Connections are short-lived, with a bounded connect time.

pub mod fence;
mod follow;
pub mod promote;
pub mod reprotect;
pub mod standby;
pub mod status;
pub mod switchover;

use crate::error::{FailoverError, Result};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::str::FromStr;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub fn parse_dsn(dsn: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(dsn)
        .map(|o| o.disable_statement_logging())
        .map_err(|e| FailoverError::Invalid(format!("invalid PostgreSQL DSN: {e}; use postgres://user@host:port/db")))
}

pub async fn connect(dsn: &str) -> Result<PgConnection> {
    let options = parse_dsn(dsn)?;
    let target = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(FailoverError::Postgres {
            message: format!("connecting to {target}: {e}"),
            retryable: true,
        }),
        Err(_) => Err(FailoverError::Postgres {
            message: format!("connecting to {target} timed out after {}s", CONNECT_TIMEOUT.as_secs()),
            retryable: true,
        }),
    }
}

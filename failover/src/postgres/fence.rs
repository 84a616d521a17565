//! Fencing a former primary: make sure it can never accept writes again — stop it where
//! it is reachable — and *verify* the fence by attempting a write through every path a
//! client could take. A fence that cannot be verified is an error.

use super::parse_dsn;
use crate::error::{FailoverError, Result};
use chrono::{DateTime, Utc};
use lifeboat_backup::instance::{LocalInstance, StopMode};
use lifeboat_backup::process::Spawner;
use serde::Serialize;
use sqlx::ConnectOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FenceOptions {
    /// The former primary's instance directory, when it is local (it is stopped).
    pub dir: Option<PathBuf>,
    /// Its DSN (also the first path checked).
    pub dsn: String,
    /// Further ways clients reach it (proxies, poolers), each checked with a write.
    pub paths: Vec<String>,
    /// How long a write attempt may go unanswered before the path counts as refusing (a
    /// cut-off region answers nothing at all).
    pub attempt_timeout: Duration,
    /// Starts PostgreSQL's tools; see `lifeboat_backup::process`.
    pub spawner: Spawner,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathCheck {
    pub path: String,
    /// How the write attempt failed.
    pub refused: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fence {
    /// `stopped`, `already_down` or `not_local`.
    pub action: String,
    pub checks: Vec<PathCheck>,
    pub fenced_at: DateTime<Utc>,
}

/// The default of [`FenceOptions::attempt_timeout`].
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn fence(options: &FenceOptions) -> Result<Fence> {
    let target = parse_dsn(&options.dsn)?;
    let action = match &options.dir {
        Some(dir) => {
            let instance = LocalInstance::new(dir, target.get_port(), options.spawner.clone())?;
            if instance.running_pid().is_some() {
                // Immediate: no checkpoint, no waiting for clients — the goal is that nothing
                // more is acknowledged, as fast as possible.
                instance.stop(StopMode::Immediate).await?;
                "stopped"
            } else {
                "already_down"
            }
        }
        None => "not_local",
    };
    // All paths at once: a cut-off one costs its timeout, and only once.
    let attempts: Vec<_> = std::iter::once(&options.dsn)
        .chain(&options.paths)
        .map(|path| (path, tokio::spawn(attempt_write(path.clone(), options.attempt_timeout))))
        .collect();
    let mut checks = Vec::new();
    for (path, attempt) in attempts {
        let attempt = attempt
            .await
            .unwrap_or_else(|e| Attempt::Unproven(format!("the write attempt crashed: {e}")));
        match attempt {
            Attempt::Accepted => {
                return Err(FailoverError::NotReady(format!(
                    "fence not holding: a write through {} was accepted",
                    shown(path)
                )));
            }
            Attempt::Unproven(why) => {
                return Err(FailoverError::NotReady(format!(
                    "fence not verified: the write through {} failed in a way that does not prove the server refuses writes ({why})",
                    shown(path)
                )));
            }
            Attempt::Refused(refused) => checks.push(PathCheck {
                path: shown(path),
                refused,
            }),
        }
    }
    Ok(Fence {
        action: action.into(),
        checks,
        fenced_at: Utc::now(),
    })
}

/// Host, port and database of a DSN, without credentials.
fn shown(dsn: &str) -> String {
    parse_dsn(dsn).map_or_else(
        |_| "an invalid DSN".into(),
        |o| format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or("postgres")),
    )
}

enum Attempt {
    Accepted,
    /// How the write was refused.
    Refused(String),
    /// The attempt failed for a reason that says nothing about the server taking writes
    /// (say, a pooler that lost a prepared statement): not a proof of the fence.
    Unproven(String),
}

/// Tries to commit a write through `dsn`.
async fn attempt_write(dsn: String, timeout: Duration) -> Attempt {
    let options = match parse_dsn(&dsn) {
        Ok(o) => o,
        Err(e) => return Attempt::Unproven(e.to_string()),
    };
    let attempt = async {
        let mut conn = match options.connect().await {
            Ok(c) => c,
            Err(e) => return Attempt::Refused(format!("no connection: {e}")),
        };
        // Assigning a transaction id is a write; it fails on a read-only server. The simple
        // query protocol, so that a pooler in transaction mode cannot lose the statement.
        match sqlx::Executor::execute(&mut conn, "SELECT pg_current_xact_id()").await {
            Ok(_) => Attempt::Accepted,
            Err(sqlx::Error::Database(db)) if db.code().is_some_and(|c| refuses_writes(&c)) => {
                Attempt::Refused(format!("write refused: {db}"))
            }
            Err(sqlx::Error::Database(db)) => Attempt::Unproven(format!("{db} (SQLSTATE {})", db.code().unwrap_or_default())),
            Err(e @ sqlx::Error::Io(_)) => Attempt::Refused(format!("connection lost: {e}")),
            Err(e) => Attempt::Unproven(e.to_string()),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Attempt::Refused(format!("no answer within {timeout:?}")),
    }
}

/// SQLSTATEs that mean the server (or the pooler in front of it) takes no writes: a
/// read-only transaction (a standby), connection exceptions (class 08, also what PgBouncer
/// answers when its server is gone), operator intervention (57: shutting down, cannot
/// connect now).
fn refuses_writes(code: &str) -> bool {
    code == "25006" || code.starts_with("08") || code.starts_with("57")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_refusals_prove_the_fence() {
        for code in ["25006", "08P01", "08006", "57P01", "57P03"] {
            assert!(super::refuses_writes(code), "{code}");
        }
        for code in ["26000", "42601", "53300", "XX000"] {
            assert!(!super::refuses_writes(code), "{code}");
        }
    }
}

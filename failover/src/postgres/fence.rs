//! Fencing a former primary: make sure it can never accept writes again — stop it where
//! it is reachable — and *verify* the fence by attempting a write through every path a
//! client could take. A fence that cannot be verified is an error.

use super::parse_dsn;
use crate::error::{FailoverError, Result};
use chrono::{DateTime, Utc};
use lifeboat_backup::instance::{LocalInstance, StopMode};
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

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn fence(options: &FenceOptions) -> Result<Fence> {
    let target = parse_dsn(&options.dsn)?;
    let action = match &options.dir {
        Some(dir) => {
            let instance = LocalInstance::new(dir, target.get_port())?;
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
    let mut checks = Vec::new();
    for path in std::iter::once(&options.dsn).chain(&options.paths) {
        match attempt_write(path).await {
            Ok(()) => {
                return Err(FailoverError::NotReady(format!(
                    "fence not holding: a write through {} was accepted",
                    shown(path)
                )));
            }
            Err(refused) => checks.push(PathCheck {
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

/// Tries to commit a write; `Err` says how it was refused.
async fn attempt_write(dsn: &str) -> std::result::Result<(), String> {
    let options = parse_dsn(dsn).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut conn = options.connect().await.map_err(|e| format!("no connection: {e}"))?;
        // Assigning a transaction id is a write; it fails on a read-only server.
        sqlx::query_scalar::<_, String>("SELECT pg_current_xact_id()::text")
            .fetch_one(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| format!("write refused: {e}"))
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
    }
}

//! The audit trail of what people did through the service: approvals, aborts, pauses,
//! starts, the emergency stop. Each entry is written by the call that acts.

use super::{Journal, JournalError, from_micros, micros};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One audited action.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The token's name that acted.
    pub actor: String,
    /// e.g. `run.start`, `run.abort`, `run.approve`, `step.reject`, `schedule.pause`, `emergency_stop.engage`.
    pub action: String,
    /// The run, schedule or switch acted on.
    pub target: Option<String>,
    pub comment: Option<String>,
    /// What the action did, in words (e.g. "aborted 2 runs").
    pub detail: Option<String>,
}

impl Journal {
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), JournalError> {
        sqlx::query("INSERT INTO audit (id, at, actor, action, target, comment, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(micros(entry.at))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(entry.target.as_deref())
            .bind(entry.comment.as_deref())
            .bind(entry.detail.as_deref())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest entries first; only those about `target` when given.
    pub async fn audit_trail(&self, target: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>, JournalError> {
        let filter = if target.is_some() { "WHERE target = $2" } else { "" };
        let sql = format!("SELECT at, actor, action, target, comment, detail FROM audit {filter} ORDER BY at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(&sql).bind(limit);
        let rows = match target {
            Some(t) => rows.bind(t),
            None => rows,
        }
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: from_micros(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    comment: r.try_get("comment")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

//! Service-wide switches kept in the journal so every replica sees them: the emergency
//! stop. A switch row remembers who changed it last, when and why.

use super::{Journal, JournalError, from_micros, micros};
use chrono::{DateTime, Utc};
use sqlx::Row;

pub const EMERGENCY_STOP: &str = "emergency_stop";

/// A switch's state as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SwitchState {
    pub engaged: bool,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
    pub note: Option<String>,
}

impl Journal {
    /// The switch's state; `None` if it was never changed (released).
    pub async fn switch(&self, name: &str) -> Result<Option<SwitchState>, JournalError> {
        let row = sqlx::query("SELECT engaged, changed_by, changed_at, note FROM switches WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(SwitchState {
                engaged: r.try_get::<i64, _>("engaged")? != 0,
                changed_by: r.try_get("changed_by")?,
                changed_at: from_micros(r.try_get("changed_at")?),
                note: r.try_get("note")?,
            })
        })
        .transpose()
    }

    /// Whether the switch is engaged, with its state.
    pub async fn engaged(&self, name: &str) -> Result<Option<SwitchState>, JournalError> {
        Ok(self.switch(name).await?.filter(|s| s.engaged))
    }

    /// Engages or releases a switch. False if it already was in that position (nothing
    /// is changed, so the first engager stays on record).
    pub async fn set_switch(&self, name: &str, engaged: bool, by: &str, note: Option<&str>) -> Result<bool, JournalError> {
        sqlx::query(
            "INSERT INTO switches (name, engaged, changed_by, changed_at, note) VALUES ($1, 0, '', 0, NULL) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        let done =
            sqlx::query("UPDATE switches SET engaged = $1, changed_by = $2, changed_at = $3, note = $4 WHERE name = $5 AND engaged <> $1")
                .bind(i64::from(engaged))
                .bind(by)
                .bind(micros(Utc::now()))
                .bind(note)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

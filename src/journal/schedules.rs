//! Schedules as the journal keeps them: how far each has been decided, its pause, and
//! every occurrence decided (fired, skipped, missed, buffered) with its reason.
//!
//! # Expected flow
//! `serve` upserts the configured schedules at start. The scheduler's leader decides the
//! occurrences that came due and stores those decisions, the requests they fire and the
//! schedule's new position in one transaction, checked against its lease term.
//!
//! # Guarantees
//! An occurrence is decided once: `(schedule, scheduled_at)` is the occurrences' key, the
//! request it fires has the id derived from it, and the position moves only from the value
//! the leader read (compare-and-swap) and only while its lease term is current.

use super::requests::{NewRequest, insert_request};
use super::{Journal, JournalError, from_micros, micros};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A row of the `schedules` table.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub name: String,
    /// The schedule's configuration as last loaded (JSON), for display.
    pub definition: String,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<DateTime<Utc>>,
    pub pause_note: Option<String>,
    /// Occurrences up to this instant are decided.
    pub considered_until: DateTime<Utc>,
    pub next_at: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<String>,
}

/// How an occurrence was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OccurrenceOutcome {
    Fired,
    /// Fired, buffered behind the schedule's running run.
    Buffered,
    Skipped,
    Missed,
}

impl OccurrenceOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            OccurrenceOutcome::Fired => "fired",
            OccurrenceOutcome::Buffered => "buffered",
            OccurrenceOutcome::Skipped => "skipped",
            OccurrenceOutcome::Missed => "missed",
        }
    }

    fn parse(s: &str) -> OccurrenceOutcome {
        match s {
            "fired" => OccurrenceOutcome::Fired,
            "buffered" => OccurrenceOutcome::Buffered,
            "skipped" => OccurrenceOutcome::Skipped,
            _ => OccurrenceOutcome::Missed,
        }
    }
}

/// One decided occurrence.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub schedule: String,
    pub scheduled_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    pub outcome: OccurrenceOutcome,
    pub run_id: Option<String>,
    pub fire_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// The leader's decisions for one schedule, stored together.
#[derive(Debug, Clone)]
pub struct Decided {
    pub schedule: String,
    /// The position the leader read; the write fails if it moved since.
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub next_at: Option<DateTime<Utc>>,
    pub occurrences: Vec<Occurrence>,
    pub requests: Vec<NewRequest>,
}

/// A leader's lease, which every leader-only write checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub lease: String,
    pub holder: String,
    pub term: i64,
}

impl Journal {
    /// Adds a configured schedule, or updates its definition (its pause and position are
    /// kept). A new schedule starts deciding from `start`: history before it is not caught up.
    pub async fn upsert_schedule(&self, name: &str, definition: &str, start: DateTime<Utc>) -> Result<(), JournalError> {
        sqlx::query(
            "INSERT INTO schedules (name, definition, paused, considered_until) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
        )
        .bind(name)
        .bind(definition)
        .bind(micros(start))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, JournalError> {
        let rows = sqlx::query(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(schedule_row).collect()
    }

    pub async fn schedule(&self, name: &str) -> Result<Option<ScheduleRow>, JournalError> {
        let row = sqlx::query(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(schedule_row).transpose()
    }

    /// Pauses or resumes a schedule, recording who and why. False if no such schedule.
    pub async fn set_paused(&self, name: &str, paused: bool, by: &str, note: Option<&str>) -> Result<bool, JournalError> {
        let done = sqlx::query("UPDATE schedules SET paused = $1, paused_by = $2, paused_at = $3, pause_note = $4 WHERE name = $5")
            .bind(i64::from(paused))
            .bind(by)
            .bind(micros(Utc::now()))
            .bind(note)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the leader's decisions for a schedule in one transaction. False — and
    /// nothing written — if the lease term is no longer current or the schedule's position
    /// moved since it was read.
    pub async fn store_decisions(&self, term: &Term, decided: &Decided) -> Result<bool, JournalError> {
        let mut tx = self.pool.begin().await?;
        let fired = decided
            .occurrences
            .iter()
            .rev()
            .find(|o| matches!(o.outcome, OccurrenceOutcome::Fired | OccurrenceOutcome::Buffered));
        let moved = sqlx::query(&format!(
            "UPDATE schedules SET considered_until = $1, next_at = $2, \
             last_fired_at = COALESCE($3, last_fired_at), last_run_id = COALESCE($4, last_run_id) \
             WHERE name = $5 AND considered_until = $6 AND EXISTS \
             (SELECT 1 FROM leases WHERE name = $7 AND holder = $8 AND term = $9 AND expires_at > {})",
            self.now_sql()
        ))
        .bind(micros(decided.until))
        .bind(decided.next_at.map(micros))
        .bind(fired.map(|o| micros(o.scheduled_at)))
        .bind(fired.and_then(|o| o.run_id.clone()))
        .bind(&decided.schedule)
        .bind(micros(decided.from))
        .bind(&term.lease)
        .bind(&term.holder)
        .bind(term.term)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for o in &decided.occurrences {
            sqlx::query(
                "INSERT INTO occurrences (schedule_name, scheduled_at, decided_at, outcome, run_id, fire_at, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (schedule_name, scheduled_at) DO NOTHING",
            )
            .bind(&o.schedule)
            .bind(micros(o.scheduled_at))
            .bind(micros(o.decided_at))
            .bind(o.outcome.as_str())
            .bind(o.run_id.as_deref())
            .bind(o.fire_at.map(micros))
            .bind(o.reason.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        for r in &decided.requests {
            insert_request(&mut tx, r).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A schedule's decided occurrences, newest first.
    pub async fn occurrences(&self, schedule: &str, limit: i64) -> Result<Vec<Occurrence>, JournalError> {
        let rows = sqlx::query(
            "SELECT schedule_name, scheduled_at, decided_at, outcome, run_id, fire_at, reason FROM occurrences \
             WHERE schedule_name = $1 ORDER BY scheduled_at DESC LIMIT $2",
        )
        .bind(schedule)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Occurrence {
                    schedule: row.try_get("schedule_name")?,
                    scheduled_at: from_micros(row.try_get("scheduled_at")?),
                    decided_at: from_micros(row.try_get("decided_at")?),
                    outcome: OccurrenceOutcome::parse(&row.try_get::<String, _>("outcome")?),
                    run_id: row.try_get("run_id")?,
                    fire_at: row.try_get::<Option<i64>, _>("fire_at")?.map(from_micros),
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }
}

const SCHEDULE_COLUMNS: &str =
    "name, definition, paused, paused_by, paused_at, pause_note, considered_until, next_at, last_fired_at, last_run_id";

fn schedule_row(row: &AnyRow) -> Result<ScheduleRow, JournalError> {
    let opt_time =
        |name: &str| -> Result<Option<DateTime<Utc>>, JournalError> { Ok(row.try_get::<Option<i64>, _>(name)?.map(from_micros)) };
    Ok(ScheduleRow {
        name: row.try_get("name")?,
        definition: row.try_get("definition")?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        paused_by: row.try_get("paused_by")?,
        paused_at: opt_time("paused_at")?,
        pause_note: row.try_get("pause_note")?,
        considered_until: from_micros(row.try_get("considered_until")?),
        next_at: opt_time("next_at")?,
        last_fired_at: opt_time("last_fired_at")?,
        last_run_id: row.try_get("last_run_id")?,
    })
}

//! Runs requested but not started yet: what `lifeboat serve`'s schedules, incident
//! webhooks and API ask to run.
//!
//! # Expected flow
//! A trigger stores a request (its id is the future run's id) — waiting for an approval,
//! for the previous run of its schedule, or queued. A replica takes the oldest queued one
//! and, in the same transaction, creates the run with itself as owner; from then on the
//! run is an ordinary journaled run.
//!
//! # Guarantees
//! A request becomes at most one run: its id is the run's primary key, and taking it is a
//! compare-and-swap on its state inside the transaction that creates the run. On
//! PostgreSQL replicas skip rows another replica is taking (`FOR UPDATE SKIP LOCKED`)
//! instead of queueing behind them.
//!
//! # Caveats
//! A request's plan is the snapshot taken when it was requested (what was approved is what
//! runs); a plan file edited later does not change it.

use super::{Backend, Event, Journal, JournalError, Owner, from_micros, micros};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Schedule,
    Webhook,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Schedule => "schedule",
            Origin::Webhook => "webhook",
            Origin::Api => "api",
        }
    }

    fn parse(s: &str) -> Origin {
        match s {
            "schedule" => Origin::Schedule,
            "webhook" => Origin::Webhook,
            _ => Origin::Api,
        }
    }
}

/// Where a request is on its way to becoming a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// A person must approve it before its first step.
    AwaitingApproval,
    /// Buffered behind the running run of its schedule.
    Waiting,
    /// Ready: the next free replica starts it.
    Queued,
    /// A run with the request's id exists.
    Started,
    Rejected,
    Cancelled,
    /// It could not be started (its plan no longer compiles on this version).
    Failed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::AwaitingApproval => "awaiting_approval",
            RequestState::Waiting => "waiting",
            RequestState::Queued => "queued",
            RequestState::Started => "started",
            RequestState::Rejected => "rejected",
            RequestState::Cancelled => "cancelled",
            RequestState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        Some(match s {
            "awaiting_approval" => RequestState::AwaitingApproval,
            "waiting" => RequestState::Waiting,
            "queued" => RequestState::Queued,
            "started" => RequestState::Started,
            "rejected" => RequestState::Rejected,
            "cancelled" => RequestState::Cancelled,
            "failed" => RequestState::Failed,
            _ => return None,
        })
    }
}

/// A request to store.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub origin: Origin,
    pub plan_file: String,
    pub plan_name: String,
    pub plan_source: String,
    pub params: BTreeMap<String, Value>,
    pub state: RequestState,
    pub requested_by: String,
    pub schedule: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub trigger_id: Option<String>,
    /// Not started before this instant (a schedule's jitter).
    pub not_before: DateTime<Utc>,
}

/// A row of the `requests` table.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub id: String,
    pub origin: Origin,
    pub plan_file: String,
    pub plan_name: String,
    pub plan_source: String,
    pub params: BTreeMap<String, Value>,
    pub state: RequestState,
    pub requested_by: String,
    pub schedule: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub trigger_id: Option<String>,
    pub not_before: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_comment: Option<String>,
    pub started_by: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

/// What filters `requests` takes.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub plan: Option<String>,
    pub state: Option<RequestState>,
    pub origin: Option<Origin>,
    pub schedule: Option<String>,
    pub limit: i64,
}

const COLUMNS: &str = "id, origin, plan_file, plan_name, plan_source, params, state, requested_by, schedule_name, scheduled_at, \
                       trigger_id, not_before, created_at, decided_by, decided_at, decision_comment, started_by, started_at, detail";

impl Journal {
    /// Stores a request; false if one with its id exists already (nothing is changed).
    pub async fn insert_request(&self, request: &NewRequest) -> Result<bool, JournalError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_request(&mut tx, request).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>, JournalError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// Requests, newest first.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRow>, JournalError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM requests WHERE ($1 IS NULL OR plan_name = $1) AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR origin = $3) AND ($4 IS NULL OR schedule_name = $4) ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(filter.plan.as_deref())
        .bind(filter.state.map(RequestState::as_str))
        .bind(filter.origin.map(Origin::as_str))
        .bind(filter.schedule.as_deref())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// Takes the oldest queued request that is due and creates its run, owned by `owner`,
    /// in one transaction. `build` turns the request into the run's first events (and
    /// its plan lock), or says why it cannot run, which fails the request.
    pub async fn take_next_request(
        &self,
        owner: &Owner,
        taker: &str,
        build: impl FnOnce(&RequestRow) -> Result<(Option<String>, Vec<Event>), String>,
    ) -> Result<Option<(RequestRow, Result<(), String>)>, JournalError> {
        let skip_locked = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM requests WHERE state = 'queued' AND not_before <= {} ORDER BY not_before, id LIMIT 1{skip_locked}",
            self.now_sql()
        ))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let request = request_row(&row)?;
        let (state, detail, result) = match build(&request) {
            Ok((lock, events)) => {
                self.insert_run(&mut tx, &request.id, &request.plan_name, lock.as_deref(), owner, &events)
                    .await?;
                (RequestState::Started, None, Ok(()))
            }
            Err(reason) => (RequestState::Failed, Some(reason.clone()), Err(reason)),
        };
        let taken = sqlx::query(&format!(
            "UPDATE requests SET state = $1, started_by = $2, started_at = {}, detail = $3 WHERE id = $4 AND state = 'queued'",
            self.now_sql()
        ))
        .bind(state.as_str())
        .bind(taker)
        .bind(detail)
        .bind(&request.id)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some((request, result)))
    }

    /// Approves or rejects a request that awaits approval. Returns its new state, or
    /// `None` if it was not awaiting approval (decided already, or no such request).
    pub async fn decide_request(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Option<RequestState>, JournalError> {
        let state = if approve { RequestState::Queued } else { RequestState::Rejected };
        let done = self.set_decided(id, state, "'awaiting_approval'", by, comment).await?;
        Ok(done.then_some(state))
    }

    /// Cancels a request that has not become a run; false if it had (or does not exist).
    pub async fn cancel_request(&self, id: &str, by: &str, reason: Option<&str>) -> Result<bool, JournalError> {
        self.set_decided(id, RequestState::Cancelled, "'awaiting_approval', 'waiting', 'queued'", by, reason)
            .await
    }

    /// Moves a request from one of the states `from` (an SQL list) to `to`, recording who
    /// decided and why; false if it was in none of them.
    async fn set_decided(&self, id: &str, to: RequestState, from: &str, by: &str, comment: Option<&str>) -> Result<bool, JournalError> {
        let done = sqlx::query(&format!(
            "UPDATE requests SET state = $1, decided_by = $2, decided_at = $3, decision_comment = $4 WHERE id = $5 AND state IN ({from})"
        ))
        .bind(to.as_str())
        .bind(by)
        .bind(micros(Utc::now()))
        .bind(comment)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues the buffered request of a schedule once no run of it is active any more.
    /// Returns the id it queued.
    pub async fn release_buffered(&self, schedule: &str) -> Result<Option<String>, JournalError> {
        if self.schedule_has_active_run(schedule).await? {
            return Ok(None);
        }
        let row = sqlx::query("SELECT id FROM requests WHERE schedule_name = $1 AND state = 'waiting' ORDER BY scheduled_at LIMIT 1")
            .bind(schedule)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let done = sqlx::query("UPDATE requests SET state = 'queued' WHERE id = $1 AND state = 'waiting'")
            .bind(&id)
            .execute(&self.pool)
            .await?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// Whether a run of the schedule is queued, awaiting approval or still running.
    pub async fn schedule_has_active_run(&self, schedule: &str) -> Result<bool, JournalError> {
        Ok(!self.active_runs_of_schedule(schedule).await?.is_empty())
    }

    /// The ids of the schedule's runs that are queued, awaiting approval or running.
    pub async fn active_runs_of_schedule(&self, schedule: &str) -> Result<Vec<String>, JournalError> {
        let rows = sqlx::query(
            "SELECT r.id FROM requests r LEFT JOIN runs u ON u.id = r.id WHERE r.schedule_name = $1 AND \
             (r.state IN ('queued', 'awaiting_approval') OR (r.state = 'started' AND u.status = 'running')) ORDER BY r.id",
        )
        .bind(schedule)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

pub(super) async fn insert_request(tx: &mut sqlx::Transaction<'_, sqlx::Any>, r: &NewRequest) -> Result<bool, JournalError> {
    let done = sqlx::query(
        "INSERT INTO requests (id, origin, plan_file, plan_name, plan_source, params, state, requested_by, schedule_name, \
         scheduled_at, trigger_id, not_before, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&r.id)
    .bind(r.origin.as_str())
    .bind(&r.plan_file)
    .bind(&r.plan_name)
    .bind(&r.plan_source)
    .bind(serde_json::to_string(&r.params).expect("params serialize"))
    .bind(r.state.as_str())
    .bind(&r.requested_by)
    .bind(r.schedule.as_deref())
    .bind(r.scheduled_at.map(micros))
    .bind(r.trigger_id.as_deref())
    .bind(micros(r.not_before))
    .bind(micros(Utc::now()))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn request_row(row: &AnyRow) -> Result<RequestRow, JournalError> {
    let params: String = row.try_get("params")?;
    let state: String = row.try_get("state")?;
    let id: String = row.try_get("id")?;
    let opt_time =
        |name: &str| -> Result<Option<DateTime<Utc>>, JournalError> { Ok(row.try_get::<Option<i64>, _>(name)?.map(from_micros)) };
    Ok(RequestRow {
        params: serde_json::from_str(&params).map_err(|e| JournalError::CorruptRecord {
            run: id.clone(),
            channel: "requests".into(),
            key: 0,
            message: format!("params: {e}"),
        })?,
        state: RequestState::parse(&state).unwrap_or(RequestState::Failed),
        origin: Origin::parse(&row.try_get::<String, _>("origin")?),
        plan_file: row.try_get("plan_file")?,
        plan_name: row.try_get("plan_name")?,
        plan_source: row.try_get("plan_source")?,
        requested_by: row.try_get("requested_by")?,
        schedule: row.try_get("schedule_name")?,
        scheduled_at: opt_time("scheduled_at")?,
        trigger_id: row.try_get("trigger_id")?,
        not_before: from_micros(row.try_get("not_before")?),
        created_at: from_micros(row.try_get("created_at")?),
        decided_by: row.try_get("decided_by")?,
        decided_at: opt_time("decided_at")?,
        decision_comment: row.try_get("decision_comment")?,
        started_by: row.try_get("started_by")?,
        started_at: opt_time("started_at")?,
        detail: row.try_get("detail")?,
        id,
    })
}

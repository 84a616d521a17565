//! One list of everything the service ran or was asked to run, newest first, paged by a
//! keyset cursor so that a page costs the same at the first run and the ten-thousandth.
//! Runs started from the command line have no request; requests not started have no run.

use super::{Journal, JournalError, from_micros, micros};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// What started a run, as people name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Alert,
    /// The API, the dashboard or the command line.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Alert => "alert",
            Trigger::Manual => "manual",
        }
    }

    fn condition(self) -> &'static str {
        match self {
            Trigger::Schedule => "origin = 'schedule'",
            Trigger::Alert => "origin = 'webhook'",
            Trigger::Manual => "(origin = 'api' OR origin IS NULL)",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub plan: Option<String>,
    /// A run's status (`running`, `succeeded`, …) or a request's state (`queued`, `awaiting_approval`, …).
    pub status: Option<String>,
    pub trigger: Option<Trigger>,
    /// `schedule`, `webhook` or `api`.
    pub origin: Option<String>,
    pub schedule: Option<String>,
    /// Only entries older than this one (the last of the previous page).
    pub before: Option<Cursor>,
    pub limit: i64,
}

/// Where a page ends: its last entry's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    /// `<micros>.<id>`, safe in a query string once URL-encoded.
    pub fn encode(&self) -> String {
        format!("{}.{}", micros(self.at), self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (at, id) = text.split_once('.')?;
        Some(Cursor {
            at: from_micros(at.parse().ok()?),
            id: id.to_owned(),
        })
    }
}

/// A run, or a request that has not become one.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub plan_name: String,
    /// The run's status, or the request's state while it has no run.
    pub status: String,
    /// `schedule`, `webhook`, `api`; `None` for runs started from the command line.
    pub origin: Option<String>,
    pub requested_by: Option<String>,
    pub schedule: Option<String>,
    /// When it was requested (or started, without a request).
    pub at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Listed {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            at: self.at,
            id: self.id.clone(),
        }
    }
}

const UNION: &str = "SELECT r.id AS id, r.plan_name AS plan_name, r.status AS status, q.origin AS origin, \
     q.requested_by AS requested_by, q.schedule_name AS schedule_name, COALESCE(q.created_at, r.created_at) AS at, \
     r.finished_at AS finished_at FROM runs r LEFT JOIN requests q ON q.id = r.id \
     UNION ALL SELECT id, plan_name, state, origin, requested_by, schedule_name, created_at, NULL \
     FROM requests WHERE state <> 'started'";

impl Journal {
    /// A page of runs and requests, newest first.
    pub async fn list_runs(&self, filter: &ListFilter) -> Result<Vec<Listed>, JournalError> {
        let mut conditions = Vec::new();
        let mut next = 1;
        let mut param = || {
            let p = format!("${next}");
            next += 1;
            p
        };
        if filter.plan.is_some() {
            conditions.push(format!("plan_name = {}", param()));
        }
        if filter.status.is_some() {
            conditions.push(format!("status = {}", param()));
        }
        if let Some(t) = filter.trigger {
            conditions.push(t.condition().to_owned());
        }
        if filter.origin.is_some() {
            conditions.push(format!("origin = {}", param()));
        }
        if filter.schedule.is_some() {
            conditions.push(format!("schedule_name = {}", param()));
        }
        if filter.before.is_some() {
            let (at, id, at_again) = (param(), param(), param());
            conditions.push(format!("(at < {at} OR (at = {at_again} AND id < {id}))"));
        }
        let limit = param();
        let filter_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!("SELECT * FROM ({UNION}) AS listed {filter_sql} ORDER BY at DESC, id DESC LIMIT {limit}");
        let mut query = sqlx::query(&sql);
        if let Some(p) = &filter.plan {
            query = query.bind(p);
        }
        if let Some(s) = &filter.status {
            query = query.bind(s);
        }
        if let Some(o) = &filter.origin {
            query = query.bind(o);
        }
        if let Some(s) = &filter.schedule {
            query = query.bind(s);
        }
        if let Some(c) = &filter.before {
            query = query.bind(micros(c.at)).bind(&c.id).bind(micros(c.at));
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Listed {
                    id: r.try_get("id")?,
                    plan_name: r.try_get("plan_name")?,
                    status: r.try_get("status")?,
                    origin: r.try_get("origin")?,
                    requested_by: r.try_get("requested_by")?,
                    schedule: r.try_get("schedule_name")?,
                    at: from_micros(r.try_get("at")?),
                    finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(from_micros),
                })
            })
            .collect()
    }

    /// The newest event of a run: its sequence number and when it was written. Live views
    /// poll this, and replay the run only when it moved.
    pub async fn last_event(&self, run_id: &str) -> Result<Option<(i64, DateTime<Utc>)>, JournalError> {
        let row = sqlx::query("SELECT seq, at FROM events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("seq")?, from_micros(r.try_get("at")?)))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_text_form_and_refuses_garbage() {
        let c = Cursor {
            at: from_micros(1_764_600_000_123_456),
            id: "nightly-20261202T020000Z.1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "abc", "12x.id", ".id"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}

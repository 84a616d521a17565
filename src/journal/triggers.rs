//! Incident triggers received by `lifeboat serve`'s webhooks, each stored once.
//!
//! # Guarantees
//! A trigger is stored once per `(source, fingerprint, starts_at)` — Alertmanager's
//! resends, its HA peers' duplicates and deliveries to other replicas all meet the same
//! unique index — and the request it fires is stored in the same transaction, so the
//! webhook is acknowledged only once both are durable.

use super::requests::{NewRequest, insert_request};
use super::{Journal, JournalError, from_micros, micros};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::BTreeMap;

/// A trigger to store.
#[derive(Debug, Clone)]
pub struct NewTrigger {
    pub id: String,
    /// The receiver it came through (`alertmanager/<name>`, `grafana/<name>`, …).
    pub source: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub route: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `fired`, `awaiting_approval`, `unrouted`, …
    pub outcome: String,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// A stored trigger.
#[derive(Debug, Clone)]
pub struct TriggerRow {
    pub id: String,
    pub source: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub received_at: DateTime<Utc>,
    pub route: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub outcome: String,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// Whether a trigger was new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Seen before: the earlier one's run, if it started one.
    Duplicate {
        run_id: Option<String>,
    },
}

impl Journal {
    /// Stores a trigger and the request it fires, once (see the module doc).
    pub async fn store_trigger(&self, trigger: &NewTrigger, request: Option<&NewRequest>) -> Result<Stored, JournalError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO triggers (id, source, fingerprint, starts_at, received_at, route, labels, outcome, run_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (source, fingerprint, starts_at) DO NOTHING",
        )
        .bind(&trigger.id)
        .bind(&trigger.source)
        .bind(&trigger.fingerprint)
        .bind(&trigger.starts_at)
        .bind(micros(Utc::now()))
        .bind(trigger.route.as_deref())
        .bind(serde_json::to_string(&trigger.labels).expect("labels serialize"))
        .bind(&trigger.outcome)
        .bind(trigger.run_id.as_deref())
        .bind(trigger.detail.as_deref())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            let earlier = sqlx::query("SELECT run_id FROM triggers WHERE source = $1 AND fingerprint = $2 AND starts_at = $3")
                .bind(&trigger.source)
                .bind(&trigger.fingerprint)
                .bind(&trigger.starts_at)
                .fetch_optional(&self.pool)
                .await?;
            let run_id = earlier.map(|r| r.try_get::<Option<String>, _>("run_id")).transpose()?.flatten();
            return Ok(Stored::Duplicate { run_id });
        }
        if let Some(request) = request {
            insert_request(&mut tx, request).await?;
        }
        tx.commit().await?;
        Ok(Stored::New)
    }

    /// Triggers, newest first.
    pub async fn triggers(&self, limit: i64) -> Result<Vec<TriggerRow>, JournalError> {
        let rows = sqlx::query(
            "SELECT id, source, fingerprint, starts_at, received_at, route, labels, outcome, run_id, detail FROM triggers \
             ORDER BY received_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let labels: String = row.try_get("labels")?;
                Ok(TriggerRow {
                    id: row.try_get("id")?,
                    source: row.try_get("source")?,
                    fingerprint: row.try_get("fingerprint")?,
                    starts_at: row.try_get("starts_at")?,
                    received_at: from_micros(row.try_get("received_at")?),
                    route: row.try_get("route")?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    outcome: row.try_get("outcome")?,
                    run_id: row.try_get("run_id")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

//! Leases: which replica leads (fires the schedules), timed by the database's clock.
//!
//! # Guarantees
//! At most one holder per lease at any instant of the database's clock: a lease is taken
//! only once expired, and each taking increments its term. A write that only the leader
//! may make checks, in its own transaction, that its term is still current
//! ([`super::schedules::Term`]), so a leader that stalled past its lease cannot write.
//!
//! # Caveats
//! The holder's own clock plays no part; a holder that stalls longer than the lease loses
//! it without knowing until its next renewal fails.

use super::schedules::Term;
use super::{Journal, JournalError, from_micros};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::time::Duration;

/// A lease as stored.
#[derive(Debug, Clone)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub term: i64,
    pub expires_at: DateTime<Utc>,
    /// Whether it is in force now, by the database's clock.
    pub live: bool,
}

impl Journal {
    /// Takes the lease if it is free or expired (a new term), or renews it if `holder`
    /// holds it. `None` if someone else holds it.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Term>, JournalError> {
        let now = self.now_sql();
        let ttl_us = ttl.as_micros() as i64;
        sqlx::query("INSERT INTO leases (name, holder, term, expires_at) VALUES ($1, '', 0, 0) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        let renewed = sqlx::query(&format!(
            "UPDATE leases SET expires_at = {now} + $1 WHERE name = $2 AND holder = $3 AND expires_at > {now}"
        ))
        .bind(ttl_us)
        .bind(name)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        if renewed.rows_affected() == 0 {
            let taken = sqlx::query(&format!(
                "UPDATE leases SET holder = $1, term = term + 1, expires_at = {now} + $2 WHERE name = $3 AND expires_at <= {now}"
            ))
            .bind(holder)
            .bind(ttl_us)
            .bind(name)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 0 {
                return Ok(None);
            }
        }
        let row = sqlx::query("SELECT term FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("term")).transpose()?.map(|term| Term {
            lease: name.to_owned(),
            holder: holder.to_owned(),
            term,
        }))
    }

    /// Extends a lease held under `term`; false if it was lost (expired or taken).
    pub async fn renew_lease(&self, term: &Term, ttl: Duration) -> Result<bool, JournalError> {
        let now = self.now_sql();
        let done = sqlx::query(&format!(
            "UPDATE leases SET expires_at = {now} + $1 WHERE name = $2 AND holder = $3 AND term = $4 AND expires_at > {now}"
        ))
        .bind(ttl.as_micros() as i64)
        .bind(&term.lease)
        .bind(&term.holder)
        .bind(term.term)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up at once, so that another replica need not wait for it to expire.
    pub async fn release_lease(&self, term: &Term) -> Result<(), JournalError> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND term = $3")
            .bind(&term.lease)
            .bind(&term.holder)
            .bind(term.term)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn lease(&self, name: &str) -> Result<Option<LeaseRow>, JournalError> {
        let row = sqlx::query(&format!(
            "SELECT name, holder, term, expires_at, CASE WHEN expires_at > {} THEN 1 ELSE 0 END AS live FROM leases WHERE name = $1",
            self.now_sql()
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LeaseRow {
                name: r.try_get("name")?,
                holder: r.try_get("holder")?,
                term: r.try_get("term")?,
                expires_at: from_micros(r.try_get("expires_at")?),
                live: r.try_get::<i64, _>("live")? == 1,
            })
        })
        .transpose()
    }
}

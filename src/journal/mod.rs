//! The journal: the single source of truth of every run, in SQLite or PostgreSQL.
//!
//! # Expected flow
//! A runner creates a run (row + `RunCreated` in one transaction), then appends batches
//! of events, each batch in one transaction, *before* acting on them. Commands from
//! other processes (abort, approve, reject) go to the `inbox` table; only the run's
//! owner appends to its events, so event sequence numbers never collide.
//!
//! # Guarantees
//! An event that [`Journal::append`] returned `Ok` for survives a crash of the process
//! (SQLite runs with `synchronous=FULL` in WAL mode; PostgreSQL commits are durable).
//! A batch is all-or-nothing.
//!
//! # Assumptions
//! One owner per run at a time: ownership is taken with a compare-and-swap on the
//! `runs` row ([`Journal::claim`]), and only from an owner that is dead.
//!
//! # Caveats
//! Whatever a step did between its `StepStarted` and the crash is not in the journal;
//! that step is run again with the same idempotency key and must tolerate it.

pub mod audit;
pub mod events;
pub mod lease;
pub mod listing;
pub mod owner;
pub mod requests;
pub mod schedules;
pub mod switches;
pub mod triggers;

use chrono::{DateTime, TimeZone, Utc};
pub use events::{Event, Recorded, RunStatus};
pub use owner::Owner;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("journal migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("journal query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("corrupt journal event {run}#{seq}: {source}")]
    Corrupt { run: String, seq: i64, source: serde_json::Error },
    #[error("no run `{0}` in the journal; `lifeboat runs` lists the runs")]
    NoSuchRun(String),
    #[error("corrupt journal record {run} {channel}#{key}: {message}")]
    CorruptRecord {
        run: String,
        channel: String,
        key: i64,
        message: String,
    },
}

impl JournalError {
    /// Busy databases and dropped connections pass; corruption and missing runs do not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            JournalError::Query(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Database(_))
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A cheap-to-clone handle on the journal database.
#[derive(Clone, Debug)]
pub struct Journal {
    pool: AnyPool,
    pub backend: Backend,
    pub url_for_display: String,
}

/// A row of the `runs` table.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub plan_name: String,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub owner: Owner,
    pub heartbeat_at: DateTime<Utc>,
    /// How old the heartbeat was when the row was read, by the database's clock: replicas
    /// on other hosts judge each other's liveness by one clock, never by their own.
    pub heartbeat_age: Duration,
    pub lock_name: Option<String>,
}

impl RunRow {
    /// A run marked running whose owner process is gone: `lifeboat resume` continues it.
    pub fn is_interrupted(&self) -> bool {
        self.status == RunStatus::Running && !self.owner.is_alive(self.heartbeat_age)
    }

    pub fn display_status(&self) -> &'static str {
        if self.is_interrupted() {
            "interrupted"
        } else {
            self.status.as_str()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// The previous holder was dead or finished; its lock was taken over.
    TakenOver {
        from_run: String,
    },
    Held {
        by_run: String,
        owner: Owner,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Approve,
    Reject,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: DecisionKind,
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortCommand {
    pub by: String,
    pub reason: Option<String>,
    pub rollback: bool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/journal/migrations");

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// Turns `--state` into a database URL: a bare path means a SQLite file.
pub fn normalize_url(state: &str) -> String {
    if state.starts_with("postgres://") || state.starts_with("postgresql://") || state.starts_with("sqlite:") {
        state.to_owned()
    } else {
        format!("sqlite://{state}")
    }
}

impl Journal {
    /// Opens (creating if needed) the journal and applies migrations.
    pub async fn open(state: &str) -> Result<Journal, JournalError> {
        sqlx::any::install_default_drivers();
        let url = normalize_url(state);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut connect_url = url.clone();
        if backend == Backend::Sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| JournalError::Open {
                    url: url.clone(),
                    source: sqlx::Error::Io(e),
                })?;
            }
            if !connect_url.contains('?') {
                connect_url.push_str("?mode=rwc");
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (inbox polls, `runs show`) proceed beside the
                        // writer; FULL makes every commit durable before it returns.
                        // busy_timeout first: switching to WAL needs a lock another
                        // process may hold for a moment.
                        sqlx::query("PRAGMA busy_timeout=15000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA journal_mode=WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous=FULL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|source| JournalError::Open {
                url: redact_url(&url),
                source,
            })?;
        migrate(&pool).await?;
        Ok(Journal {
            pool,
            backend,
            url_for_display: redact_url(&url),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the run row and its first events atomically; `owner` becomes its owner.
    pub async fn create_run(
        &self,
        run_id: &str,
        plan_name: &str,
        lock: Option<&str>,
        owner: &Owner,
        events: &[Event],
    ) -> Result<(), JournalError> {
        let mut tx = self.pool.begin().await?;
        self.insert_run(&mut tx, run_id, plan_name, lock, owner, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_run(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        run_id: &str,
        plan_name: &str,
        lock: Option<&str>,
        owner: &Owner,
        events: &[Event],
    ) -> Result<(), JournalError> {
        let now = micros(Utc::now());
        sqlx::query(&format!(
            "INSERT INTO runs (id, plan_name, status, created_at, owner_host, owner_pid, owner_started, heartbeat_at, lock_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, {}, $8)",
            self.now_sql()
        ))
        .bind(run_id)
        .bind(plan_name)
        .bind(RunStatus::Running.as_str())
        .bind(now)
        .bind(&owner.host)
        .bind(owner.pid as i64)
        .bind(owner.started as i64)
        .bind(lock)
        .execute(&mut **tx)
        .await?;
        for (i, event) in events.iter().enumerate() {
            insert_event(tx, run_id, i as i64, now, event).await?;
        }
        Ok(())
    }

    /// Appends events starting at `first_seq`, in one transaction. A `RunFinished` event
    /// also updates the run's status row, in the same transaction.
    pub async fn append(&self, run_id: &str, first_seq: i64, events: &[Event]) -> Result<DateTime<Utc>, JournalError> {
        let now = Utc::now();
        let at = micros(now);
        let mut tx = self.pool.begin().await?;
        for (i, event) in events.iter().enumerate() {
            insert_event(&mut tx, run_id, first_seq + i as i64, at, event).await?;
            if let Event::RunFinished { status, .. } = event {
                sqlx::query("UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(at)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(now)
    }

    pub async fn run(&self, run_id: &str) -> Result<RunRow, JournalError> {
        let row = sqlx::query(&format!("SELECT {} FROM runs WHERE id = $1", self.run_columns()))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| JournalError::NoSuchRun(run_id.to_owned()))?;
        run_row(&row)
    }

    /// Finds a run by id or unique id prefix, so people can type a short id.
    pub async fn find_run(&self, id_or_prefix: &str) -> Result<RunRow, JournalError> {
        if let Ok(row) = self.run(id_or_prefix).await {
            return Ok(row);
        }
        let pattern = format!("{}%", id_or_prefix.replace(['%', '_'], ""));
        let rows = sqlx::query(&format!(
            "SELECT {} FROM runs WHERE id LIKE $1 ORDER BY created_at DESC LIMIT 2",
            self.run_columns()
        ))
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?;
        match rows.as_slice() {
            [one] => run_row(one),
            _ => Err(JournalError::NoSuchRun(id_or_prefix.to_owned())),
        }
    }

    pub async fn runs(&self, plan: Option<&str>, limit: i64) -> Result<Vec<RunRow>, JournalError> {
        let rows = match plan {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {} FROM runs WHERE plan_name = $1 ORDER BY created_at DESC LIMIT $2",
                    self.run_columns()
                ))
                .bind(p)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {} FROM runs ORDER BY created_at DESC LIMIT $1",
                    self.run_columns()
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(run_row).collect()
    }

    /// Every run marked running (live or interrupted), oldest first.
    pub async fn running_runs(&self) -> Result<Vec<RunRow>, JournalError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM runs WHERE status = 'running' ORDER BY created_at",
            self.run_columns()
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    pub async fn events(&self, run_id: &str) -> Result<Vec<Recorded>, JournalError> {
        let rows = sqlx::query("SELECT seq, at, payload FROM events WHERE run_id = $1 ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let payload: String = row.try_get("payload")?;
                let event = serde_json::from_str(&payload).map_err(|source| JournalError::Corrupt {
                    run: run_id.to_owned(),
                    seq,
                    source,
                })?;
                Ok(Recorded {
                    seq,
                    at: from_micros(row.try_get("at")?),
                    event,
                })
            })
            .collect()
    }

    /// Takes ownership of a run from `previous` (compare-and-swap). False if someone
    /// else changed the owner first.
    pub async fn claim(&self, run_id: &str, previous: &Owner, me: &Owner) -> Result<bool, JournalError> {
        let done = sqlx::query(&format!(
            "UPDATE runs SET owner_host = $1, owner_pid = $2, owner_started = $3, heartbeat_at = {} \
             WHERE id = $4 AND owner_host = $5 AND owner_pid = $6 AND owner_started = $7",
            self.now_sql()
        ))
        .bind(&me.host)
        .bind(me.pid as i64)
        .bind(me.started as i64)
        .bind(run_id)
        .bind(&previous.host)
        .bind(previous.pid as i64)
        .bind(previous.started as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn heartbeat(&self, run_id: &str) -> Result<(), JournalError> {
        sqlx::query(&format!("UPDATE runs SET heartbeat_at = {} WHERE id = $1", self.now_sql()))
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives up ownership of a run this process owns, so that another process may claim
    /// it at once instead of waiting for the heartbeat to go stale. False if the run was
    /// not ours (any more).
    pub async fn release_ownership(&self, run_id: &str, me: &Owner) -> Result<bool, JournalError> {
        let done = sqlx::query(
            "UPDATE runs SET owner_host = '', owner_pid = 0, owner_started = 0, heartbeat_at = 0 \
             WHERE id = $1 AND owner_host = $2 AND owner_pid = $3 AND owner_started = $4 AND status = 'running'",
        )
        .bind(run_id)
        .bind(&me.host)
        .bind(me.pid as i64)
        .bind(me.started as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The database's clock, in microseconds since the Unix epoch, as an SQL expression.
    /// Every time that decides between processes (heartbeats, leases, when a schedule is
    /// due) is taken from it, so skewed hosts cannot disagree.
    pub fn now_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
        }
    }

    /// The database's clock now.
    pub async fn db_now(&self) -> Result<DateTime<Utc>, JournalError> {
        let row = sqlx::query(&format!("SELECT {} AS now_us", self.now_sql()))
            .fetch_one(&self.pool)
            .await?;
        Ok(from_micros(row.try_get("now_us")?))
    }

    /// Takes the plan lock `name` for `run_id`, or says who holds it.
    pub async fn acquire_lock(&self, name: &str, run_id: &str) -> Result<LockOutcome, JournalError> {
        for _ in 0..5 {
            let inserted = sqlx::query("INSERT INTO locks (name, run_id, acquired_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(run_id)
                .bind(micros(Utc::now()))
                .execute(&self.pool)
                .await?;
            if inserted.rows_affected() == 1 {
                return Ok(LockOutcome::Acquired);
            }
            let Some(row) = sqlx::query("SELECT run_id FROM locks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            else {
                continue; // released in between: try again
            };
            let holder: String = row.try_get("run_id")?;
            if holder == run_id {
                return Ok(LockOutcome::Acquired);
            }
            let holder_run = self.run(&holder).await.ok();
            let holder_alive = holder_run
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Running && !r.is_interrupted());
            if holder_alive {
                let owner = holder_run.map(|r| r.owner).expect("checked above");
                return Ok(LockOutcome::Held { by_run: holder, owner });
            }
            let taken = sqlx::query("UPDATE locks SET run_id = $1, acquired_at = $2 WHERE name = $3 AND run_id = $4")
                .bind(run_id)
                .bind(micros(Utc::now()))
                .bind(name)
                .bind(&holder)
                .execute(&self.pool)
                .await?;
            if taken.rows_affected() == 1 {
                return Ok(LockOutcome::TakenOver { from_run: holder });
            }
        }
        Err(JournalError::Query(sqlx::Error::Protocol(format!(
            "lock `{name}` kept changing hands; try again"
        ))))
    }

    pub async fn release_lock(&self, name: &str, run_id: &str) -> Result<(), JournalError> {
        sqlx::query("DELETE FROM locks WHERE name = $1 AND run_id = $2")
            .bind(name)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Posts a command for a run's owner: `abort`, `approve` or `reject`. For approvals
    /// `step` names the approval step; for `abort` it carries the mode (`rollback` or none).
    pub async fn post_command(
        &self,
        run_id: &str,
        kind: &str,
        step: Option<&str>,
        actor: &str,
        comment: Option<&str>,
    ) -> Result<(), JournalError> {
        sqlx::query("INSERT INTO inbox (id, run_id, kind, step, actor, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(run_id)
            .bind(kind)
            .bind(step)
            .bind(actor)
            .bind(comment)
            .bind(micros(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether an abort was ever posted to the run (consumed or not).
    pub async fn abort_requested(&self, run_id: &str) -> Result<bool, JournalError> {
        let row = sqlx::query("SELECT id FROM inbox WHERE run_id = $1 AND kind = 'abort' LIMIT 1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Takes the unconsumed abort commands of a run (marking them consumed).
    pub async fn take_abort(&self, run_id: &str) -> Result<Option<AbortCommand>, JournalError> {
        let rows = sqlx::query(
            "SELECT id, actor, comment, step FROM inbox WHERE run_id = $1 AND kind = 'abort' AND consumed_at IS NULL ORDER BY created_at",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        for row in &rows {
            let id: String = row.try_get("id")?;
            sqlx::query("UPDATE inbox SET consumed_at = $1 WHERE id = $2")
                .bind(micros(Utc::now()))
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        let mode: Option<String> = first.try_get("step")?;
        Ok(Some(AbortCommand {
            by: first.try_get("actor")?,
            reason: first.try_get("comment")?,
            rollback: mode.as_deref() == Some("rollback"),
        }))
    }

    /// The first approve/reject decision for an approval step, if any.
    /// Every approve/reject decision on `step`, oldest first.
    pub async fn decisions_for(&self, run_id: &str, step: &str) -> Result<Vec<Decision>, JournalError> {
        let rows = sqlx::query(
            "SELECT kind, actor, comment, created_at FROM inbox WHERE run_id = $1 AND step = $2 AND kind IN ('approve', 'reject') \
             ORDER BY created_at, id",
        )
        .bind(run_id)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Decision {
                    kind: if kind == "approve" {
                        DecisionKind::Approve
                    } else {
                        DecisionKind::Reject
                    },
                    by: row.try_get("actor")?,
                    at: from_micros(row.try_get("created_at")?),
                    comment: row.try_get("comment")?,
                })
            })
            .collect()
    }
}

/// One side-channel record (see migration 0002): a keyed, timestamped JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SideRecord {
    pub key: i64,
    pub at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

impl Journal {
    /// Writes records of one channel in one transaction; a key written again replaces
    /// the earlier record.
    pub async fn put_records(&self, run_id: &str, channel: &str, records: &[SideRecord]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO records (run_id, channel, record_key, at, payload) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (run_id, channel, record_key) DO UPDATE SET at = excluded.at, payload = excluded.payload",
            )
            .bind(run_id)
            .bind(channel)
            .bind(r.key)
            .bind(micros(r.at))
            .bind(r.payload.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The records of every channel starting with `prefix`, by channel then key.
    pub async fn records(&self, run_id: &str, prefix: &str) -> Result<Vec<(String, SideRecord)>, JournalError> {
        // `_` and `%` in the prefix become single-character wildcards; the exact
        // prefix test below drops what they let through.
        let pattern = format!("{}%", prefix.replace('%', "_"));
        let rows = sqlx::query(
            "SELECT channel, record_key, at, payload FROM records WHERE run_id = $1 AND channel LIKE $2 ORDER BY channel, record_key",
        )
        .bind(run_id)
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .filter(|row| row.try_get::<String, _>("channel").is_ok_and(|c| c.starts_with(prefix)))
            .map(|row| Ok((row.try_get("channel")?, side_record(row)?)))
            .collect()
    }

    /// The records of exactly one channel, by key.
    pub async fn channel(&self, run_id: &str, channel: &str) -> Result<Vec<SideRecord>, JournalError> {
        let rows = sqlx::query("SELECT record_key, at, payload FROM records WHERE run_id = $1 AND channel = $2 ORDER BY record_key")
            .bind(run_id)
            .bind(channel)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(side_record).collect()
    }
}

fn side_record(row: &AnyRow) -> Result<SideRecord, JournalError> {
    let payload: String = row.try_get("payload")?;
    Ok(SideRecord {
        key: row.try_get("record_key")?,
        at: from_micros(row.try_get("at")?),
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
    })
}

/// Applies migrations. SQLite has no migration lock, so two processes opening a new
/// journal at once can race; the loser retries and then finds the work done.
async fn migrate(pool: &AnyPool) -> Result<(), JournalError> {
    let mut attempt = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "journal migration raced with another process; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Journal {
    /// The columns [`run_row`] reads, with the heartbeat's age computed by the database.
    fn run_columns(&self) -> String {
        format!(
            "id, plan_name, status, created_at, finished_at, owner_host, owner_pid, owner_started, heartbeat_at, lock_name, \
             ({} - heartbeat_at) AS heartbeat_age",
            self.now_sql()
        )
    }
}

fn run_row(row: &AnyRow) -> Result<RunRow, JournalError> {
    let status: String = row.try_get("status")?;
    Ok(RunRow {
        id: row.try_get("id")?,
        plan_name: row.try_get("plan_name")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        created_at: from_micros(row.try_get("created_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_micros),
        owner: Owner {
            host: row.try_get("owner_host")?,
            pid: row.try_get::<i64, _>("owner_pid")? as u32,
            started: row.try_get::<i64, _>("owner_started")? as u64,
        },
        heartbeat_at: from_micros(row.try_get("heartbeat_at")?),
        heartbeat_age: Duration::from_micros(row.try_get::<i64, _>("heartbeat_age")?.max(0) as u64),
        lock_name: row.try_get("lock_name")?,
    })
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    seq: i64,
    at: i64,
    event: &Event,
) -> Result<(), JournalError> {
    let payload = serde_json::to_string(event).expect("events serialize");
    sqlx::query("INSERT INTO events (run_id, seq, at, kind, step, payload) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(run_id)
        .bind(seq)
        .bind(at)
        .bind(event.kind())
        .bind(event.step())
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Hides a password in a database URL before it reaches a message or a log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

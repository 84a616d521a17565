//! Step kinds: one adapter file per kind turns a plan step into a call of real work.
//!
//! An adapter receives its options already rendered (expressions resolved) and a
//! [`StepContext`]; it returns outputs or a [`StepError`] that says whether a retry could
//! help. Adapters never retry, time out or journal by themselves: the engine owns that.

pub mod approval;
pub mod chaos;
pub mod chaos_clock_skew;
pub mod chaos_disk_fill;
pub mod chaos_http;
pub mod chaos_network;
pub mod chaos_partition;
pub mod chaos_process_kill;
pub mod chaos_revert;
pub mod chaos_sql;
pub mod chaos_stress;
pub mod exec;
pub mod failover;
pub mod http;
mod postgres;
pub mod postgres_backup;
pub mod postgres_fence;
pub mod postgres_local_instance;
pub mod postgres_promote;
pub mod postgres_replication_status;
pub mod postgres_reprotect;
pub mod postgres_restore;
pub mod postgres_standby;
pub mod postgres_switchover;
pub mod postgres_verify_backup;
pub mod sleep;
pub mod traffic_pgbouncer;
pub mod traffic_proxy;
pub mod traffic_route53;
pub mod validation;
pub mod validation_canary;
pub mod validation_canary_stop;
pub mod validation_http_probe;
pub mod validation_rpo;
pub mod validation_sql_compare;
pub mod validation_sql_probe;
pub mod validation_tcp_probe;

use crate::journal::Journal;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use tokio_util::sync::CancellationToken;

pub type Outputs = Map<String, Value>;

/// A failed attempt. `retryable` says whether the same attempt could succeed later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
}

impl StepError {
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn terminal(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Kinds whose work outlives their step (a background writer). When a crashed run is
/// resumed, their adapters run again for the steps that had succeeded, to start that work
/// where it left off; each adapter recognises work that was stopped before the crash.
pub const BACKGROUND_KINDS: &[&str] = &["validation.canary"];

/// What a step attempt knows about where it runs.
#[derive(Clone)]
pub struct StepContext {
    pub run_id: String,
    pub step_id: String,
    /// `<run id>/<step id>`: the same for every attempt and after a crash, so a step can
    /// recognise work it already did.
    pub idempotency_key: String,
    pub attempt: u32,
    /// Cancelled on abort or timeout; adapters stop their work and clean up.
    pub cancel: CancellationToken,
    pub journal: Journal,
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Outputs, StepError>> + Send + 'a>>;

/// A step kind: its name, its options' JSON Schema and its adapter.
pub struct KindSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub options_schema: fn() -> Value,
    pub run: for<'a> fn(Value, &'a StepContext) -> StepFuture<'a>,
}

/// A [`KindSpec`] for the adapter module `$module` (its `Options` and `run`).
macro_rules! kind {
    ($name:literal, $summary:literal, $module:ident) => {
        KindSpec {
            name: $name,
            summary: $summary,
            options_schema: schema_of::<$module::Options>,
            run: |with, cx| Box::pin(async move { $module::run(options(with)?, cx).await }),
        }
    };
}

/// Every step kind the engine knows, by name.
pub const KINDS: &[KindSpec] = &[
    kind!("approval", "wait until `lifeboat approve RUN STEP` (or reject)", approval),
    kind!(
        "chaos.clock_skew",
        "run a command under a shifted clock (faketime) for a duration",
        chaos_clock_skew
    ),
    kind!(
        "chaos.disk_fill",
        "fill a filesystem until only so much space remains; removed on revert",
        chaos_disk_fill
    ),
    kind!("chaos.http", "HTTP fault proxy: abort or delay matching requests", chaos_http),
    kind!(
        "chaos.network",
        "TCP fault proxy: latency, bandwidth, blackhole, resets, down (Toxiproxy toxics)",
        chaos_network
    ),
    kind!(
        "chaos.partition",
        "cut a region off the network: a link down or a blackhole route, optionally in a network namespace",
        chaos_partition
    ),
    kind!(
        "chaos.process_kill",
        "signal a process (KILL/TERM/INT, or STOP then CONT) and observe it gone",
        chaos_process_kill
    ),
    kind!(
        "chaos.revert",
        "revert the run's active faults (all or of named steps)",
        chaos_revert
    ),
    kind!(
        "chaos.sql",
        "run a destructive SQL statement (e.g. an accidental DROP TABLE)",
        chaos_sql
    ),
    kind!("chaos.stress", "CPU and memory pressure for a duration", chaos_stress),
    kind!(
        "exec",
        "run a command; outputs from its last stdout line (a JSON object) or a file",
        exec
    ),
    kind!("http", "send an HTTP request and check status, body and JSON", http),
    kind!(
        "postgres.backup",
        "take a base backup of a running PostgreSQL into a repository (file:// or s3://)",
        postgres_backup
    ),
    kind!(
        "postgres.fence",
        "stop a former primary, cut proxies that route to it, and verify no path accepts a write",
        postgres_fence
    ),
    kind!(
        "postgres.local_instance",
        "start (creating if needed) or stop a throwaway PostgreSQL in a directory on a port",
        postgres_local_instance
    ),
    kind!(
        "postgres.promote",
        "promote a standby and wait until it commits a write; outputs timeline and promotion LSN",
        postgres_promote
    ),
    kind!(
        "postgres.replication_status",
        "standbys, sync state and lag of a primary; fails above a threshold",
        postgres_replication_status
    ),
    kind!(
        "postgres.reprotect",
        "make a former primary a standby of the new one (pg_rewind, else a fresh base backup)",
        postgres_reprotect
    ),
    kind!(
        "postgres.restore",
        "restore PostgreSQL to a point in time (native or pgBackRest), start it, report what was reached",
        postgres_restore
    ),
    kind!(
        "postgres.standby",
        "build a streaming standby of a primary (slot, pg_basebackup, optional sync) and wait until it streams",
        postgres_standby
    ),
    kind!(
        "postgres.switchover",
        "planned zero-loss switchover: stop the primary cleanly, promote the caught-up standby, demote the old primary",
        postgres_switchover
    ),
    kind!(
        "postgres.verify_backup",
        "check every backup object's checksum and WAL continuity; fail on any problem",
        postgres_verify_backup
    ),
    kind!("sleep", "wait for a duration", sleep),
    kind!(
        "traffic.pgbouncer",
        "move a PgBouncer database to a new host/port without dropping clients (PAUSE, rewrite, RELOAD, RESUME)",
        traffic_pgbouncer
    ),
    kind!(
        "traffic.proxy",
        "re-point the built-in TCP endpoint at a new upstream; open connections are closed",
        traffic_proxy
    ),
    kind!(
        "traffic.route53",
        "UPSERT a Route53 record (simple or weighted) and wait until INSYNC",
        traffic_route53
    ),
    kind!(
        "validation.canary",
        "start the RPO canary: a background writer whose acknowledged rows measure data loss",
        validation_canary
    ),
    kind!(
        "validation.canary_stop",
        "stop a canary and report its counts",
        validation_canary_stop
    ),
    kind!(
        "validation.http_probe",
        "poll a URL until status, body and JSON match",
        validation_http_probe
    ),
    kind!(
        "validation.rpo",
        "measure RPO and rows lost from the canary's acknowledged writes in the recovered database",
        validation_rpo
    ),
    kind!(
        "validation.sql_compare",
        "compare tables of two PostgreSQL databases (counts, checksums, differing keys)",
        validation_sql_compare
    ),
    kind!(
        "validation.sql_probe",
        "poll a SQL query until its value matches",
        validation_sql_probe
    ),
    kind!(
        "validation.tcp_probe",
        "poll until a TCP connection is accepted",
        validation_tcp_probe
    ),
];

pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

/// The options schema of a kind, generated once per process.
pub fn cached_options_schema(kind: &KindSpec) -> &'static Value {
    static SCHEMAS: std::sync::OnceLock<std::collections::HashMap<&'static str, Value>> = std::sync::OnceLock::new();
    SCHEMAS
        .get_or_init(|| KINDS.iter().map(|k| (k.name, (k.options_schema)())).collect())
        .get(kind.name)
        .expect("every kind is in KINDS")
}

fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("schema serializes")
}

/// Options are checked by the compiler, but expressions only get their types at run
/// time, so a mismatch here is the plan's fault and retrying cannot fix it.
fn options<T: DeserializeOwned>(with: Value) -> Result<T, StepError> {
    serde_json::from_value(with).map_err(|e| StepError::terminal(format!("invalid options after evaluating expressions: {e}")))
}

/// A scalar option read as text, so that `${{ params.port }}` (a number) can fill a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            v @ (Value::Number(_) | Value::Bool(_)) => Ok(Text(v.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {other}"
            ))),
        }
    }
}

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// Keeps the last `limit` bytes written to it: stdout/stderr tails, response bodies.
#[derive(Debug, Default)]
pub struct Tail {
    buf: std::collections::VecDeque<u8>,
    limit: usize,
    pub total: u64,
}

impl Tail {
    pub fn new(limit: usize) -> Self {
        Tail {
            buf: Default::default(),
            limit,
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(self.limit);
        self.buf.drain(..excess);
    }

    pub fn text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

//! The kinds the engine knows: each kind's name, summary, options schema and adapter, and
//! the catalog the plan compiler checks steps against.

use super::{
    Outputs, StepContext, StepError, alertmanager, approval, argocd, chaos, chaos_mesh, chaostoolkit, exec, http, k8s, litmus, manual,
    options, postgres, sleep, traffic, validation, velero,
};
use crate::plan::catalog::{KindCatalog, KindInfo};
use schemars::JsonSchema;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// Kinds whose work outlives their step (a background writer). When a crashed run is
/// resumed, their adapters run again for the steps that had succeeded, to start that work
/// where it left off; each adapter recognises work that was stopped before the crash.
pub const BACKGROUND_KINDS: &[&str] = &["validation.canary"];

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
    ($name:literal, $summary:literal, $($module:ident)::+) => {
        KindSpec {
            name: $name,
            summary: $summary,
            options_schema: schema_of::<$($module)::+::Options>,
            run: |with, cx| Box::pin(async move { $($module)::+::run(options(with)?, cx).await }),
        }
    };
}

/// Every step kind the engine knows, by name.
pub const KINDS: &[KindSpec] = &[
    kind!(
        "alertmanager.expect_alert",
        "assert that an alert fired after the disaster and reached Alertmanager in time (optionally silenced)",
        alertmanager::expect_alert
    ),
    kind!(
        "alertmanager.silence",
        "silence matching alerts for the rest of the run; expired when the run ends, whichever way",
        alertmanager::silence
    ),
    kind!("approval", "wait until `lifeboat approve RUN STEP` (or reject)", approval),
    kind!(
        "chaos.clock_skew",
        "run a command under a shifted clock (faketime) for a duration",
        chaos::clock_skew
    ),
    kind!(
        "chaos.disk_fill",
        "fill a filesystem until only so much space remains; removed on revert",
        chaos::disk_fill
    ),
    kind!("chaos.http", "HTTP fault proxy: abort or delay matching requests", chaos::http),
    kind!(
        "chaos.network",
        "TCP fault proxy: latency, bandwidth, blackhole, resets, down (Toxiproxy toxics)",
        chaos::network
    ),
    kind!(
        "chaos.partition",
        "cut a region off the network: a link down or a blackhole route, optionally in a network namespace",
        chaos::partition
    ),
    kind!(
        "chaos.process_kill",
        "signal a process (KILL/TERM/INT, or STOP then CONT) and observe it gone",
        chaos::process_kill
    ),
    kind!(
        "chaos.revert",
        "revert the run's active faults (all or of named steps)",
        chaos::revert
    ),
    kind!(
        "chaos.sql",
        "run a destructive SQL statement (e.g. an accidental DROP TABLE)",
        chaos::sql
    ),
    kind!("chaos.stress", "CPU and memory pressure for a duration", chaos::stress),
    kind!(
        "chaostoolkit.experiment",
        "run a Chaos Toolkit experiment file unchanged with the `chaos` CLI; its journal becomes evidence",
        chaostoolkit::experiment
    ),
    kind!(
        "argocd.auto_sync",
        "turn an Argo CD Application's automated sync off (or on); the previous policy is an output for finally",
        argocd::auto_sync
    ),
    kind!(
        "argocd.sync",
        "sync an Argo CD Application and wait until the operation succeeded and it is Synced and Healthy",
        argocd::sync
    ),
    kind!(
        "chaos_mesh.experiment",
        "a Chaos Mesh experiment, injected when its status proves it and recovered when the run is done with it",
        chaos_mesh::experiment
    ),
    kind!(
        "exec",
        "run a command; outputs from its last stdout line (a JSON object) or a file",
        exec
    ),
    kind!("http", "send an HTTP request and check status, body and JSON", http),
    kind!(
        "k8s.apply",
        "server-side apply manifests (inline or files) with field manager `lifeboat`",
        k8s::apply
    ),
    kind!(
        "k8s.delete",
        "delete an object and wait until it is gone; as a disaster, timed from the observed deletion",
        k8s::delete
    ),
    kind!(
        "k8s.job",
        "run a Job to completion in the cluster; its exit status and log tail are outputs",
        k8s::job
    ),
    kind!(
        "k8s.rollout_wait",
        "wait until a Deployment or StatefulSet rollout is complete, as `kubectl rollout status` judges it",
        k8s::rollout_wait
    ),
    kind!(
        "k8s.scale",
        "set a Deployment's or StatefulSet's replicas; the previous count is an output for compensation",
        k8s::scale
    ),
    kind!(
        "k8s.wait",
        "wait by watch until an object has a condition or a JSONPath value",
        k8s::wait
    ),
    kind!(
        "litmus.experiment",
        "a LitmusChaos engine run to its end and judged by its ChaosResults (verdict, probes, fail step)",
        litmus::experiment
    ),
    kind!(
        "manual",
        "show instructions (text or a runbook section) and wait until a person says it is done: `lifeboat done RUN STEP`",
        manual
    ),
    kind!(
        "postgres.backup",
        "take a base backup of a running PostgreSQL into a repository (file:// or s3://)",
        postgres::backup
    ),
    kind!(
        "postgres.fence",
        "stop a former primary, cut proxies that route to it, and verify no path accepts a write",
        postgres::fence
    ),
    kind!(
        "postgres.local_instance",
        "start (creating if needed) or stop a throwaway PostgreSQL in a directory on a port",
        postgres::local_instance
    ),
    kind!(
        "postgres.promote",
        "promote a standby and wait until it commits a write; outputs timeline and promotion LSN",
        postgres::promote
    ),
    kind!(
        "postgres.replication_status",
        "standbys, sync state and lag of a primary; fails above a threshold",
        postgres::replication_status
    ),
    kind!(
        "postgres.reprotect",
        "make a former primary a standby of the new one (pg_rewind, else a fresh base backup)",
        postgres::reprotect
    ),
    kind!(
        "postgres.restore",
        "restore PostgreSQL to a point in time (native or pgBackRest), start it, report what was reached",
        postgres::restore
    ),
    kind!(
        "postgres.standby",
        "build a streaming standby of a primary (slot, pg_basebackup, optional sync) and wait until it streams",
        postgres::standby
    ),
    kind!(
        "postgres.switchover",
        "planned zero-loss switchover: stop the primary cleanly, promote the caught-up standby, demote the old primary",
        postgres::switchover
    ),
    kind!(
        "postgres.verify_backup",
        "check every backup object's checksum and WAL continuity; fail on any problem",
        postgres::verify_backup
    ),
    kind!("sleep", "wait for a duration", sleep),
    kind!(
        "traffic.pgbouncer",
        "move a PgBouncer database to a new host/port without dropping clients (PAUSE, rewrite, RELOAD, RESUME)",
        traffic::pgbouncer
    ),
    kind!(
        "traffic.k8s_service",
        "point a Kubernetes Service at other pods, a DNS name or external addresses; done when its EndpointSlices show it",
        traffic::k8s_service
    ),
    kind!(
        "traffic.proxy",
        "re-point the built-in TCP endpoint at a new upstream; open connections are closed",
        traffic::proxy
    ),
    kind!(
        "traffic.route53",
        "UPSERT a Route53 record (simple or weighted) and wait until INSYNC",
        traffic::route53
    ),
    kind!(
        "validation.canary",
        "start the RPO canary: a background writer whose acknowledged rows measure data loss",
        validation::canary
    ),
    kind!(
        "validation.canary_stop",
        "stop a canary and report its counts",
        validation::canary_stop
    ),
    kind!(
        "validation.http_probe",
        "poll a URL until status, body and JSON match",
        validation::http_probe
    ),
    kind!(
        "validation.prometheus_probe",
        "poll an instant PromQL query until its value meets a condition (an SLO, an error ratio)",
        validation::prometheus_probe
    ),
    kind!(
        "validation.prometheus_range",
        "check that a PromQL condition held at every point of a window (e.g. the 5 minutes after recovery)",
        validation::prometheus_range
    ),
    kind!(
        "validation.rpo",
        "measure RPO and rows lost from the canary's acknowledged writes in the recovered database",
        validation::rpo
    ),
    kind!(
        "validation.k8s_inventory",
        "record namespaces' objects, or compare them with a record after a restore (missing, extra, changed)",
        validation::k8s_inventory
    ),
    kind!(
        "validation.sql_compare",
        "compare tables of two PostgreSQL databases (counts, checksums, differing keys)",
        validation::sql_compare
    ),
    kind!(
        "validation.sql_probe",
        "poll a SQL query until its value matches",
        validation::sql_probe
    ),
    kind!(
        "validation.tcp_probe",
        "poll until a TCP connection is accepted",
        validation::tcp_probe
    ),
    kind!(
        "velero.backup",
        "a Velero backup, waited for to a terminal phase (Completed, or PartiallyFailed with `partially_failed: warn`)",
        velero::backup
    ),
    kind!(
        "velero.check_schedule",
        "fail unless a Velero schedule's newest Completed backup is younger than the RPO objective",
        velero::check_schedule
    ),
    kind!(
        "velero.restore",
        "a Velero restore from a backup or a schedule's newest, optionally into other namespaces",
        velero::restore
    ),
    kind!(
        "velero.storage_location",
        "set a backup storage location ReadOnly or ReadWrite; the previous mode is an output for compensation",
        velero::storage_location
    ),
    kind!(
        "velero.wait_backup_sync",
        "wait until a backup taken elsewhere is synced into this cluster and finished",
        velero::wait_backup_sync
    ),
];

/// Kinds that work on a Kubernetes cluster, by family.
pub fn is_kubernetes(kind: &str) -> bool {
    kind.starts_with("k8s.")
        || kind.starts_with("velero.")
        || kind.starts_with("chaos_mesh.")
        || kind.starts_with("litmus.")
        || kind.starts_with("argocd.")
        || kind == "validation.k8s_inventory"
        || kind == "traffic.k8s_service"
}

pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

/// What the compiler needs to know of every kind, built once per process.
pub fn catalog() -> &'static KindCatalog {
    static CATALOG: OnceLock<KindCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        KindCatalog::new(
            KINDS
                .iter()
                .map(|k| KindInfo {
                    name: k.name,
                    summary: k.summary,
                    options_schema: (k.options_schema)(),
                    probe: validation::PROBE_KINDS.contains(&k.name),
                    cluster: is_kubernetes(k.name),
                })
                .collect(),
            super::monitoring::GRAMMARS.to_vec(),
        )
    })
}

fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Bool(true))
}

//! `postgres.restore`: point-in-time restore into a new data directory, by lifeboat itself
//! (`provider: native`) or by pgBackRest (`provider: pgbackrest`), then (by default) start the
//! server and wait until it reached the target and was promoted. The default data directory
//! is named by the idempotency key; a resumed step finishes the restore it had begun.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat_backup::instance::{LocalInstance, ServerUser, executable_for_server, has_entries, run_checked, sibling};
use lifeboat_backup::restore::{self, RestoreOptions, RestoreReport, Target, parse_target_time};
use lifeboat_backup::wal_name::{format_lsn, parse_lsn};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::plan::model::Limit;
use crate::steps::postgres::{Port, free_port, lifeboat_exe, open_store, scratch_dir};
use crate::steps::{Outputs, StepContext, StepError, Text};

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    Native,
    Pgbackrest,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// Replay all archived WAL.
    Latest,
    /// Stop as soon as the backup is consistent.
    Immediate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub provider: Provider,
    /// Repository URL (native provider).
    pub repo: Option<Text>,
    /// pgBackRest stanza (pgbackrest provider).
    pub stanza: Option<Text>,
    /// Extra pgBackRest options, e.g. `--config=/etc/pgbackrest.conf` or `--repo1-path=/backup`.
    #[serde(default)]
    pub pgbackrest_options: Vec<Text>,
    /// New data directory. Default: a scratch directory named by the run and step.
    pub pgdata: Option<Text>,
    pub target: Option<Keyword>,
    /// RFC 3339 or `YYYY-MM-DD HH:MM:SS+TZ`.
    pub target_time: Option<Text>,
    pub target_lsn: Option<Text>,
    pub target_name: Option<Text>,
    pub target_xid: Option<Text>,
    /// Stop just before the target instead of just after it: with `target_xid` of a bad
    /// transaction, restores everything committed before it.
    #[serde(default)]
    pub target_exclusive: bool,
    /// Restore this backup (native) / set (pgbackrest) instead of the newest that fits.
    pub backup: Option<Text>,
    #[serde(default)]
    pub delta: bool,
    #[serde(default = "default_true")]
    pub start: bool,
    /// Port for the restored server (default: a free one).
    pub port: Option<Port>,
    #[serde(default = "default_user")]
    pub user: Text,
    #[serde(default = "default_parallel")]
    pub parallel: crate::plan::count::Count<1, 64>,
    /// How long to wait for recovery to finish.
    pub wait_timeout: Option<Limit>,
}

fn default_true() -> bool {
    true
}

fn default_user() -> Text {
    Text("postgres".into())
}

fn default_parallel() -> crate::plan::count::Count<1, 64> {
    crate::plan::count::Count::clamped(4)
}

fn target(options: &Options) -> Result<Target, StepError> {
    let mut targets = Vec::new();
    if let Some(keyword) = options.target {
        targets.push(match keyword {
            Keyword::Latest => Target::Latest,
            Keyword::Immediate => Target::Immediate,
        });
    }
    if let Some(t) = &options.target_time {
        targets.push(Target::Time(parse_target_time(&t.0)?));
    }
    if let Some(l) = &options.target_lsn {
        targets.push(Target::Lsn(parse_lsn(&l.0)?));
    }
    if let Some(n) = &options.target_name {
        targets.push(Target::Name(n.0.clone()));
    }
    if let Some(x) = &options.target_xid {
        targets.push(Target::Xid(x.0.clone()));
    }
    match targets.len() {
        1 => Ok(targets.remove(0)),
        0 => Err(StepError::terminal(
            "postgres.restore needs a target: target: latest|immediate, target_time, target_lsn, target_name or target_xid",
        )),
        _ => Err(StepError::terminal(
            "postgres.restore takes exactly one of target, target_time, target_lsn, target_name, target_xid",
        )),
    }
}

fn done_marker(pgdata: &Path) -> PathBuf {
    sibling(pgdata, ".lifeboat-restore.json")
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let target = target(&options)?;
    let pgdata = match &options.pgdata {
        Some(p) => std::path::absolute(&p.0).map_err(|e| StepError::terminal(format!("pgdata: {e}")))?,
        None => scratch_dir(cx).join("data"),
    };
    let port = match &options.port {
        Some(port) => port.get() as u16,
        None => free_port()?,
    };
    let wait_timeout = options.wait_timeout.map_or(Duration::from_secs(3600), |d| d.get());
    let spawner = cx.spawner();
    let work = async {
        // A previous attempt finished: bring its server back if needed and report it again.
        if let Ok(text) = std::fs::read_to_string(done_marker(&pgdata))
            && let Ok(report) = serde_json::from_str::<RestoreReport>(&text)
        {
            if let (true, Some(port)) = (report.started, report.dsn.as_deref().and_then(port_of)) {
                let mut instance = LocalInstance::for_pgdata(&pgdata, port, spawner.clone())?;
                instance.superuser = options.user.0.clone();
                instance.start().await?;
            }
            return Ok(report);
        }
        // A previous attempt was cut short: redo it over what it left, reusing matching files.
        // Files in a user-chosen directory on a first attempt are not ours to overwrite.
        let leftovers = has_entries(&pgdata);
        let resumed = leftovers && (cx.attempt > 1 || pgdata.starts_with(scratch_dir(cx)));
        if resumed {
            let instance = LocalInstance::for_pgdata(&pgdata, port, spawner.clone())?;
            instance.stop(lifeboat_backup::instance::StopMode::Immediate).await?;
        }
        let job = Job {
            options: &options,
            target: target.clone(),
            pgdata: &pgdata,
            port,
            delta: options.delta || resumed,
            wait_timeout,
            spawner: spawner.clone(),
        };
        let report = match options.provider {
            Provider::Native => native(job).await?,
            Provider::Pgbackrest => pgbackrest(job).await?,
        };
        let marker = done_marker(&pgdata);
        std::fs::write(&marker, serde_json::to_vec(&report).unwrap_or_default())
            .map_err(|e| StepError::retryable(format!("{}: {e}", marker.display())))?;
        Ok::<_, StepError>(report)
    };
    let report = tokio::select! {
        report = work => report?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = Outputs::new();
    out.insert("pgdata".into(), report.pgdata.display().to_string().into());
    out.insert("backup".into(), report.backup.into());
    out.insert("target".into(), report.target.into());
    out.insert("port".into(), port.into());
    if let Some(dsn) = report.dsn {
        out.insert("dsn".into(), dsn.into());
    }
    if let Some(lsn) = report.reached_lsn {
        out.insert("reached_lsn".into(), lsn.into());
    }
    if let Some(time) = report.reached_time {
        out.insert("reached_time".into(), time.to_rfc3339().into());
    }
    if let Some(timeline) = report.timeline {
        out.insert("timeline".into(), timeline.into());
    }
    Ok(out)
}

fn port_of(dsn: &str) -> Option<u16> {
    dsn.rsplit_once(':')?.1.split('/').next()?.parse().ok()
}

/// What either provider needs to restore.
struct Job<'a> {
    options: &'a Options,
    target: Target,
    pgdata: &'a Path,
    port: u16,
    delta: bool,
    wait_timeout: Duration,
    spawner: lifeboat_backup::process::Spawner,
}

async fn native(job: Job<'_>) -> Result<RestoreReport, StepError> {
    let Job {
        options,
        target,
        pgdata,
        port,
        delta,
        wait_timeout,
        spawner,
    } = job;
    let repo = options
        .repo
        .as_ref()
        .ok_or_else(|| StepError::terminal("provider native needs `repo`"))?;
    let store = open_store(&repo.0).await?;
    let bin_dir = sibling(pgdata, ".bin");
    let restore_options = RestoreOptions {
        repo_url: repo.0.clone(),
        pgdata: pgdata.to_path_buf(),
        target,
        inclusive: !options.target_exclusive,
        backup: options.backup.as_ref().map(|b| b.0.clone()),
        delta,
        parallel: options.parallel.get() as usize,
        lifeboat_exe: executable_for_server(&lifeboat_exe()?, &bin_dir)?,
        port: Some(port),
        start: options.start,
        user: options.user.0.clone(),
        keep_archiving: false,
        wait_timeout,
        server_env: Vec::new(),
        spawner,
    };
    Ok(restore::restore(&store, &restore_options).await?)
}

/// Runs `pgbackrest restore` with the matching `--type`/`--target`, then starts and waits
/// exactly like the native provider.
async fn pgbackrest(job: Job<'_>) -> Result<RestoreReport, StepError> {
    let Job {
        options,
        ref target,
        pgdata,
        port,
        delta,
        wait_timeout,
        ref spawner,
    } = job;
    let stanza = options
        .stanza
        .as_ref()
        .ok_or_else(|| StepError::terminal("provider pgbackrest needs `stanza`"))?;
    let user = ServerUser::current_or_postgres()?;
    std::fs::create_dir_all(pgdata).map_err(|e| StepError::terminal(format!("{}: {e}", pgdata.display())))?;
    ServerUser::chown_tree(user, pgdata)?;
    let mut command = ServerUser::command(user, Path::new("pgbackrest"));
    command.stdin(std::process::Stdio::null());
    command.arg(format!("--stanza={}", stanza.0));
    command.args(options.pgbackrest_options.iter().map(|o| o.0.clone()));
    command.arg(format!("--pg1-path={}", pgdata.display()));
    if delta {
        command.arg("--delta");
    }
    if let Some(set) = &options.backup {
        command.arg(format!("--set={}", set.0));
    }
    match target {
        Target::Latest => {}
        Target::Immediate => {
            command.arg("--type=immediate");
        }
        Target::Time(t) => {
            command
                .arg("--type=time")
                .arg(format!("--target={}", t.format("%Y-%m-%d %H:%M:%S%.6f+00")));
        }
        Target::Lsn(l) => {
            command.arg("--type=lsn").arg(format!("--target={}", format_lsn(*l)));
        }
        Target::Name(n) => {
            command.arg("--type=name").arg(format!("--target={n}"));
        }
        Target::Xid(x) => {
            command.arg("--type=xid").arg(format!("--target={x}"));
        }
    }
    if !matches!(target, Target::Latest) {
        command.arg("--target-action=promote");
        if options.target_exclusive {
            command.arg("--target-exclusive");
        }
    }
    command.arg("restore");
    run_checked(spawner, command, "pgbackrest restore").await?;
    restore::append_settings(
        pgdata,
        "lifeboat: scratch restore by pgBackRest",
        &restore::server_settings(pgdata, Some(port), false)?,
    )?;
    let backup = options.backup.as_ref().map_or("latest", |b| b.0.as_str());
    let mut report = RestoreReport::new(backup, target, pgdata);
    if options.start {
        let mut instance = LocalInstance::for_pgdata(pgdata, port, spawner.clone())?;
        instance.superuser = options.user.0.clone();
        report.start_server(&instance, wait_timeout).await?;
    }
    Ok(report)
}

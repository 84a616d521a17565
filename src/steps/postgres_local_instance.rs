//! `postgres.local_instance`: a throwaway PostgreSQL in a directory on a loopback port, as a
//! scratch restore target or a drill's primary. `start` creates it when needed (so a resumed
//! step reuses it), `stop` stops it. As root, the server runs as the `postgres` user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lifeboat_backup::instance::{InitOptions, LocalInstance, ServerUser, StopMode, executable_for_server};
use schemars::JsonSchema;
use serde::Deserialize;

use super::postgres::{free_port, lifeboat_exe, parse_port, scratch_dir};
use super::{Outputs, StepContext, StepError, Text};

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create the cluster if it does not exist, then start it.
    #[default]
    Start,
    /// Stop the server (the directory stays).
    Stop,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Fast,
    Immediate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub action: Action,
    /// Directory of the instance (`data/`, `run/`, `postgres.log` inside). Default: a scratch
    /// directory named by the run and step.
    pub dir: Option<Text>,
    /// Port on 127.0.0.1. Default: the instance's existing port, else a free one.
    pub port: Option<Text>,
    /// Archive WAL into this repository through `lifeboat pg wal-push`.
    pub archive_repo: Option<Text>,
    /// Database superuser created by initdb.
    #[serde(default = "default_superuser")]
    pub superuser: Text,
    #[serde(default = "default_true")]
    pub data_checksums: bool,
    /// Extra postgresql.conf settings.
    #[serde(default)]
    pub settings: BTreeMap<String, Text>,
    /// How `stop` shuts down: fast (clean) or immediate (like a crash).
    #[serde(default)]
    pub stop_mode: Mode,
}

fn default_superuser() -> Text {
    Text("postgres".into())
}

fn default_true() -> bool {
    true
}

/// The port an existing instance was configured with (the last `port` line wins).
fn configured_port(dir: &Path) -> Option<u16> {
    let conf = std::fs::read_to_string(dir.join("data/postgresql.conf")).ok()?;
    conf.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("port = "))
        .and_then(|v| v.trim_matches('\'').parse().ok())
}

/// The archiver runs as the server user, so a local repository must be writable by it.
fn give_local_repository_to_server(repo: &str) -> Result<(), StepError> {
    if let lifeboat_backup::RepoUrl::Local { root } = lifeboat_backup::RepoUrl::parse(repo)? {
        std::fs::create_dir_all(&root).map_err(|e| StepError::terminal(format!("{}: {e}", root.display())))?;
        ServerUser::chown_tree(ServerUser::current_or_postgres()?, &root)?;
    }
    Ok(())
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let dir = options.dir.map(|d| PathBuf::from(d.0)).unwrap_or_else(|| scratch_dir(cx));
    let dir = std::path::absolute(&dir).map_err(|e| StepError::terminal(format!("dir: {e}")))?;
    let port = match options.port {
        Some(port) => parse_port(&port)?,
        None => match configured_port(&dir) {
            Some(port) => port,
            None => free_port()?,
        },
    };
    let mut instance = LocalInstance::new(&dir, port)?;
    instance.superuser = options.superuser.0.clone();
    match options.action {
        Action::Stop => {
            let mode = match options.stop_mode {
                Mode::Fast => StopMode::Fast,
                Mode::Immediate => StopMode::Immediate,
            };
            instance.stop(mode).await?;
        }
        Action::Start => {
            let archive_command = match &options.archive_repo {
                Some(repo) => {
                    give_local_repository_to_server(&repo.0)?;
                    let exe = executable_for_server(&lifeboat_exe()?, &dir.join("bin"))?;
                    Some(format!(
                        "'{}' pg wal-push --repo '{}' %p",
                        exe.display(),
                        repo.0.replace('\'', "'\\''")
                    ))
                }
                None => None,
            };
            let init = InitOptions {
                superuser: options.superuser.0.clone(),
                data_checksums: options.data_checksums,
                archive_command,
                settings: options.settings.into_iter().map(|(k, v)| (k, v.0)).collect(),
            };
            instance.init(&init).await?;
            tokio::select! {
                started = instance.start() => started?,
                _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
            }
        }
    }
    let mut out = Outputs::new();
    out.insert("dir".into(), dir.display().to_string().into());
    out.insert("pgdata".into(), instance.pgdata().display().to_string().into());
    out.insert("port".into(), port.into());
    out.insert("dsn".into(), instance.dsn("postgres").into());
    out.insert("log".into(), instance.log_file().display().to_string().into());
    Ok(out)
}

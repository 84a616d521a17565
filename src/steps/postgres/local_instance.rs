//! `postgres.local_instance`: a throwaway PostgreSQL in a directory on a loopback port, as a
//! scratch restore target or a drill's primary. `start` creates it when needed (so a resumed
//! step reuses it), `stop` stops it. As root, the server runs as the `postgres` user.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lifeboat_backup::instance::{InitOptions, LocalInstance, ServerUser, StopMode, executable_for_server};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::steps::postgres::{Port, configured_port, free_port, lifeboat_exe, placement, scratch_dir};
use crate::steps::{Outputs, StepContext, StepError, Text};

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
    /// Port. Default: the instance's existing port, else a free one.
    pub port: Option<Port>,
    /// Address the server listens on and is reached at (default `127.0.0.1`), e.g. its
    /// address inside `netns`. Kept with the instance for later starts.
    pub host: Option<Text>,
    /// A network namespace (`ip netns`) to run the server in, as a region of a local
    /// topology; needs root. Kept with the instance for later starts.
    pub netns: Option<Text>,
    /// Networks (CIDR) whose clients and standbys the new cluster trusts, besides loopback.
    #[serde(default)]
    pub trusted_networks: Vec<Text>,
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
        Some(port) => port.get() as u16,
        None => match configured_port(&dir) {
            Some(port) => port,
            None => free_port()?,
        },
    };
    let mut instance = LocalInstance::new(&dir, port, cx.spawner())?;
    instance.superuser = options.superuser.0.clone();
    if let Some(placement) = placement(options.host, options.netns) {
        instance.set_placement(placement)?;
    }
    let mut out = Outputs::new();
    match options.action {
        Action::Stop => {
            let mode = match options.stop_mode {
                Mode::Fast => StopMode::Fast,
                Mode::Immediate => StopMode::Immediate,
            };
            out.insert("stopped".into(), instance.running_pid().is_some().into());
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
                trusted_networks: options.trusted_networks.into_iter().map(|n| n.0).collect(),
            };
            instance.init(&init).await?;
            tokio::select! {
                started = instance.start() => started?,
                _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
            }
        }
    }
    out.insert("dir".into(), dir.display().to_string().into());
    out.insert("pgdata".into(), instance.pgdata().display().to_string().into());
    out.insert("port".into(), port.into());
    out.insert("dsn".into(), instance.dsn("postgres").into());
    out.insert("host".into(), instance.placement().host.clone().into());
    out.insert("netns".into(), instance.placement().netns.clone().into());
    out.insert("log".into(), instance.log_file().display().to_string().into());
    Ok(out)
}

//! The `postgres.*` step kinds and what they share: per-step scratch locations derived from
//! the idempotency key, ports, the repository.

pub mod backup;
pub mod fence;
pub mod local_instance;
pub mod promote;
pub mod replication_status;
pub mod reprotect;
pub mod restore;
pub mod standby;
pub mod switchover;
pub mod verify_backup;

use std::path::PathBuf;

use super::{StepContext, StepError, Text};

/// A directory owned by this step of this run: the same on every attempt and after a crash.
pub fn scratch_dir(cx: &StepContext) -> PathBuf {
    let base = std::env::var_os("LIFEBOAT_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".lifeboat/scratch"));
    std::path::absolute(base.join(&cx.run_id).join(&cx.step_id)).unwrap_or_else(|_| PathBuf::from(".lifeboat/scratch"))
}

/// The idempotency key as an object-name-safe id.
pub fn object_id(cx: &StepContext) -> String {
    cx.idempotency_key.replace('/', "-")
}

pub async fn open_store(repo: &str) -> Result<lifeboat_backup::store::Store, StepError> {
    let url = lifeboat_backup::RepoUrl::parse(repo)?;
    Ok(lifeboat_backup::store::open(&url).await?)
}

/// A TCP port option: a number or digits (what `${{ params.port }}` renders), 1 to 65535.
pub type Port = crate::plan::count::Count<1, 65535>;

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16, StepError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| StepError::retryable(format!("no free port: {e}")))?;
    Ok(listener.local_addr().map_err(|e| StepError::retryable(e.to_string()))?.port())
}

pub fn lifeboat_exe() -> Result<PathBuf, StepError> {
    std::env::current_exe().map_err(|e| StepError::terminal(format!("cannot find the lifeboat executable: {e}")))
}

/// The port an existing instance in `dir` was configured with: the last `port` line of
/// `postgresql.auto.conf` (where a standby's own settings go), else of `postgresql.conf`.
pub fn configured_port(dir: &std::path::Path) -> Option<u16> {
    ["postgresql.auto.conf", "postgresql.conf"].iter().find_map(|file| {
        let conf = std::fs::read_to_string(dir.join("data").join(file)).ok()?;
        conf.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("port = "))
            .and_then(|v| v.trim_matches('\'').parse().ok())
    })
}

/// The placement a step's `host`/`netns` options ask for; `None` when it gives neither (the
/// instance keeps the one it recorded, loopback for a new one).
pub fn placement(host: Option<Text>, netns: Option<Text>) -> Option<lifeboat_backup::instance::Placement> {
    (host.is_some() || netns.is_some()).then(|| lifeboat_backup::instance::Placement {
        host: host.map_or_else(|| lifeboat_backup::instance::Placement::default().host, |h| h.0),
        netns: netns.map(|n| n.0),
    })
}

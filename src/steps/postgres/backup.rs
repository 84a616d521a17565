//! `postgres.backup`: a base backup of a running server into a repository. The backup id is
//! the step's idempotency key, so a resumed step finds the backup it already completed.

use lifeboat_backup::basebackup::{self, BackupOptions};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::steps::postgres::{object_id, open_store};
use crate::steps::{Outputs, StepContext, StepError, Text};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Repository URL: file:///path or s3://bucket/prefix?endpoint=…&region=… (credentials
    /// from lifeboat's environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    pub repo: Text,
    /// Connection to the server; its data directory must be readable by lifeboat.
    pub dsn: Option<crate::steps::dsn::Dsn>,
    /// Data directory of the server (port and socket are read from postmaster.pid).
    pub pgdata: Option<Text>,
    /// Database role used with `pgdata`.
    #[serde(default = "default_user")]
    pub user: Text,
    /// Parallel compression and upload.
    #[serde(default = "default_parallel")]
    pub parallel: crate::plan::count::Count<1, 64>,
    /// Store only the files that changed since the newest backup of this cluster in the
    /// repository (a full backup when there is none).
    #[serde(default)]
    pub incremental: bool,
}

fn default_user() -> Text {
    Text("postgres".into())
}

fn default_parallel() -> crate::plan::count::Count<1, 64> {
    crate::plan::count::Count::clamped(4)
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let store = open_store(&options.repo.0).await?;
    let pgdata = options.pgdata.map(|p| std::path::PathBuf::from(p.0));
    let dsn = match (options.dsn, &pgdata) {
        (Some(dsn), _) => dsn.0,
        (None, Some(pgdata)) => basebackup::dsn_from_pgdata(pgdata, &options.user.0)?,
        (None, None) => return Err(StepError::terminal("postgres.backup needs `dsn` or `pgdata`")),
    };
    let backup_options = BackupOptions {
        dsn,
        pgdata,
        id: Some(object_id(cx)),
        parallel: options.parallel.get() as usize,
        incremental: options.incremental,
    };
    let manifest = tokio::select! {
        result = basebackup::take(&store, &backup_options) => result?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let mut out = Outputs::new();
    out.insert("backup_id".into(), manifest.id.into());
    out.insert("start_lsn".into(), manifest.start_lsn.into());
    out.insert("stop_lsn".into(), manifest.stop_lsn.into());
    out.insert("stop_time".into(), manifest.stop_time.to_rfc3339().into());
    out.insert("size_bytes".into(), manifest.total_size.into());
    out.insert("stored_bytes".into(), manifest.stored_size.into());
    out.insert("reference".into(), manifest.reference.unwrap_or_default().into());
    Ok(out)
}

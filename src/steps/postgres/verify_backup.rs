//! `postgres.verify_backup`: read back every object of a repository's backups and the WAL
//! they need, checking checksums and continuity. Fails when anything is wrong.

use lifeboat_backup::catalog;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::steps::postgres::open_store;
use crate::steps::{Outputs, StepContext, StepError, Text};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Repository URL.
    pub repo: Text,
    /// Only this backup (default: every backup).
    pub backup: Option<Text>,
    #[serde(default = "default_parallel")]
    pub parallel: crate::plan::count::Count<1, 64>,
}

fn default_parallel() -> crate::plan::count::Count<1, 64> {
    crate::plan::count::Count::clamped(4)
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let store = open_store(&options.repo.0).await?;
    let report = tokio::select! {
        report = catalog::verify(&store, options.backup.as_ref().map(|b| b.0.as_str()), options.parallel.get() as usize) => report?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    if !report.ok() {
        return Err(StepError::terminal(format!(
            "repository verification failed: {}",
            report.problems.join("; ")
        )));
    }
    let mut out = Outputs::new();
    out.insert("backups".into(), report.backups_checked.into());
    out.insert("objects_checked".into(), report.objects_checked.into());
    out.insert("bytes_checked".into(), report.bytes_checked.into());
    Ok(out)
}

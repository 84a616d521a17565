//! A backup taken in one cluster appears in another (the DR cluster) only after that
//! cluster's Velero syncs its BackupStorageLocation; until then a restore there fails
//! validation. Waiting for the sync is waiting, by watch, for the Backup to be there and
//! finished.

use super::Finished;
use super::backup::wait_finished;
use crate::BackupError;
use std::time::Duration;

/// Waits until `name` is visible in Velero's `namespace` and at a terminal phase.
pub async fn wait_backup_sync(client: &kube::Client, namespace: &str, name: &str, limit: Duration) -> Result<Finished, BackupError> {
    let finished = wait_finished(client, namespace, "Backup", name, limit).await.map_err(|e| match e {
        BackupError::NotReady(message) => BackupError::NotReady(format!(
            "{message} (is the backup storage location shared with the cluster that took it, and Available? `velero backup-location get`)"
        )),
        other => other,
    })?;
    Ok(Finished::of(&finished, "itemsBackedUp"))
}

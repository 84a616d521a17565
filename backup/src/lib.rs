//! lifeboat-backup: object storage (S3 through aws-sdk-s3, local directories), PostgreSQL
//! base backups, the WAL archive and point-in-time restore, and Velero orchestration.
//!
//! This crate knows nothing about plans, DAGs or the journal: it will expose plain async
//! functions taking option structs and returning typed errors that say whether they are
//! retryable. The engine adapts it in `src/steps/`. Its functionality arrives with the
//! PostgreSQL point-in-time recovery work; until then the crate is intentionally empty.

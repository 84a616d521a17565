//! lifeboat-backup: object storage (S3 through aws-sdk-s3, local directories), PostgreSQL
//! base backups, the WAL archive and point-in-time restore, and throwaway local PostgreSQL
//! instances to restore into.
//!
//! This crate knows nothing about plans, DAGs or the journal: it exposes plain async
//! functions taking option structs and returning [`BackupError`], which says whether a retry
//! can help. The engine adapts it in `src/steps/`; the CLI in `src/cli/pg_cmd.rs`.

pub mod archive;
pub mod basebackup;
pub mod catalog;
pub mod codec;
pub mod error;
pub mod instance;
pub mod kube;
pub mod layout;
pub mod manifest;
pub mod process;
pub mod repo_url;
pub mod restore;
pub mod store;
pub mod velero;
pub mod wal;
pub mod wal_name;

pub use error::{BackupError, Result};
pub use repo_url::RepoUrl;

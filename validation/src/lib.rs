//! lifeboat-validation: probes (HTTP, TCP, SQL, PromQL), data consistency checks, the RPO
//! canary, and the monitoring APIs (Prometheus, Alertmanager) that drills use to measure
//! what recovery achieved.
//!
//! Like every domain crate it knows nothing about plans, DAGs or the journal: it exposes
//! plain async functions with option structs and returns [`ValidationError`], which says
//! whether trying again could help.

pub mod canary;
pub mod compare;
mod error;
pub mod inventory;
pub mod monitoring;
mod pg;
pub mod probe;
pub mod rpo;
pub mod threshold;

pub use error::ValidationError;
pub use pg::connect;

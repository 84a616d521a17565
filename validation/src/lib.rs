//! lifeboat-validation: probes (HTTP, TCP, SQL), data consistency checks and the RPO
//! canary that drills use to measure what recovery achieved.
//!
//! Like every domain crate it knows nothing about plans, DAGs or the journal: it exposes
//! plain async functions with option structs and returns [`ValidationError`], which says
//! whether trying again could help.

pub mod canary;
pub mod compare;
mod error;
mod pg;
pub mod probe;
pub mod rpo;

pub use error::ValidationError;
pub use pg::connect;

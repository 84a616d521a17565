//! lifeboat-failover: promote, fence and reprotect databases; switch traffic (built-in
//! proxy, PgBouncer, Route53, Kubernetes Services); scale workloads.
//!
//! Like every domain crate it knows nothing about plans, DAGs or the journal, and returns
//! typed, retryability-aware errors ([`FailoverError`]).
//!
//! - [`proxy`]: the built-in TCP proxy. Its upstream can be switched atomically (traffic
//!   moves) and its links can carry toxics (latency, bandwidth, blackhole, resets), which
//!   is how drills inject network faults without `tc` or iptables.
//! - [`postgres`]: streaming standbys, replication status, promotion.

mod error;
pub mod kube;
pub mod pgbouncer;
pub mod postgres;
pub mod proxy;
pub mod route53;

pub use error::{FailoverError, Result};

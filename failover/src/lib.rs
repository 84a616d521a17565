//! lifeboat-failover: promote, fence and reprotect databases; switch traffic (built-in
//! proxy, PgBouncer, Route53, Kubernetes Services); scale workloads.
//!
//! Like every domain crate it knows nothing about plans, DAGs or the journal, and returns
//! typed, retryability-aware errors. Its functionality arrives with the multi-region
//! failover work; until then the crate is intentionally empty.

//! lifeboat-validation: probes (HTTP, TCP, SQL), data consistency checks and the RPO
//! canary that drills use to measure what recovery achieved.
//!
//! Like every domain crate it knows nothing about plans, DAGs or the journal, and returns
//! typed, retryability-aware errors. Its functionality arrives with the drills work;
//! until then the crate is intentionally empty.

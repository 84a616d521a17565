//! The traffic state of a run's TCP proxy (channel `proxy/<name>`, one record overwritten at
//! each change), from which a resumed run starts the proxy again where clients expect it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What clients see of a proxy: where it listens, where it sends, whether it is open.
/// Faults (toxics, `down`) are not part of it: they end with the process that held them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyState {
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// The step that last changed it.
    pub step: String,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

super::single_record!(ProxyState, "proxy/");

//! `validation.tcp_probe`: poll until a TCP connection to an address is accepted.

use crate::plan::model::Limit;
use crate::steps::{StepError, Text};
use lifeboat_validation::probe::{Probe, tcp::TcpProbe};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

super::probe_options! {
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `host:port`.
    pub address: Text,
    /// Time limit of one connection attempt (default 2s).
    #[serde(default)]
    pub connect_timeout: Option<Limit>,
}
}

pub fn probe(o: &Options) -> Result<Probe, StepError> {
    Ok(Probe::Tcp(TcpProbe {
        address: o.address.0.clone(),
        connect_timeout: o.connect_timeout.map_or(Duration::from_secs(2), |d| d.get()),
    }))
}

//! `validation.tcp_probe`: poll until a TCP connection to an address is accepted.

use super::validation::{duration_or, run_probe};
use super::{Outputs, StepContext, StepError, Text};
use crate::plan::model::HumanDuration;
use lifeboat_validation::probe::{Probe, tcp::TcpProbe};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `host:port`.
    pub address: Text,
    /// Time limit of one connection attempt (default 2s).
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// `passing` (default: wait for service) or `failing` (wait for an outage).
    #[serde(default)]
    pub until: super::validation::UntilOption,
    /// Checks in a row with that outcome (default 1; a failure threshold with `failing`).
    #[serde(default)]
    pub consecutive: Option<u32>,
    /// Time between checks (default 1s).
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    /// Give up after this long (default 60s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

pub fn probe(o: &Options) -> Result<Probe, StepError> {
    Ok(Probe::Tcp(TcpProbe {
        address: o.address.0.clone(),
        connect_timeout: duration_or(&o.connect_timeout, "connect_timeout", Duration::from_secs(2))?,
    }))
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    run_probe(
        probe(&options)?,
        super::validation::Polling {
            interval: &options.interval,
            timeout: &options.timeout,
            until: &options.until,
            consecutive: options.consecutive,
        },
        cx,
    )
    .await
}

//! `validation.http_probe`: poll a URL until the status, body and JSON match.

use crate::plan::model::Limit;
use crate::steps::{StepError, Text};
use lifeboat_validation::probe::{Probe, http::HttpProbe};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

super::probe_options! {
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub url: Text,
    /// Default GET.
    #[serde(default)]
    pub method: Option<String>,
    /// Accepted statuses (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<crate::plan::count::Count<100, 599>>,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// A JSON pointer (e.g. `/status`) whose value must equal `json_equals`.
    #[serde(default)]
    pub json_pointer: Option<String>,
    #[serde(default)]
    pub json_equals: Option<serde_json::Value>,
    /// Time limit of one request (default 5s).
    #[serde(default)]
    pub request_timeout: Option<Limit>,
}
}

pub fn probe(o: &Options) -> Result<Probe, StepError> {
    let json = match (&o.json_pointer, &o.json_equals) {
        (Some(p), Some(v)) => Some((p.clone(), v.clone())),
        (None, None) => None,
        _ => return Err(StepError::terminal("json_pointer and json_equals go together: set both or neither")),
    };
    Ok(Probe::Http(HttpProbe::new(
        o.url.0.clone(),
        o.method.as_deref().unwrap_or("GET"),
        o.expect_status.iter().map(|s| s.get() as u16).collect(),
        o.body_regex.as_deref(),
        json,
        o.request_timeout.map_or(Duration::from_secs(5), |d| d.get()),
    )?))
}

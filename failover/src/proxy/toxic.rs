//! Toxics: faults on a proxy's links, with Toxiproxy's names, attributes and JSON shape
//! (`{"name","type","stream","toxicity","attributes"}`) so Toxiproxy clients work.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// Which way the data flows: `upstream` is client → server, `downstream` server → client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    #[default]
    Downstream,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter`.
    Latency { latency: Duration, jitter: Duration },
    /// At most `rate` KB/s (1 KB = 1000 bytes).
    Bandwidth { rate_kb: u64 },
    /// Blackhole: data is dropped; the connection is closed after `timeout` (never if 0).
    Timeout { timeout: Duration },
    /// Reset the connection (TCP RST) after `timeout`.
    ResetPeer { timeout: Duration },
    /// Delay closing the connection by `delay` after the other side closed.
    SlowClose { delay: Duration },
    /// Close the connection after `bytes` bytes.
    LimitData { bytes: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub name: String,
    pub kind: ToxicKind,
    pub stream: Stream,
    /// Probability that the toxic applies to a connection (decided per connection).
    pub toxicity: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ToxicError(pub String);

/// The wire form, as Toxiproxy's API sends and receives it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ToxicJson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub stream: Option<Stream>,
    #[serde(default)]
    pub toxicity: Option<f64>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

fn millis(attrs: &Map<String, Value>, key: &str) -> Result<Duration, ToxicError> {
    match attrs.get(key) {
        None => Ok(Duration::ZERO),
        Some(v) => v
            .as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| Duration::from_micros((n * 1000.0) as u64))
            .ok_or_else(|| ToxicError(format!("attribute `{key}` must be a non-negative number of milliseconds"))),
    }
}

fn count(attrs: &Map<String, Value>, key: &str) -> Result<u64, ToxicError> {
    match attrs.get(key) {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ToxicError(format!("attribute `{key}` must be a non-negative integer"))),
    }
}

impl TryFrom<ToxicJson> for Toxic {
    type Error = ToxicError;

    fn try_from(j: ToxicJson) -> Result<Toxic, ToxicError> {
        let a = &j.attributes;
        let kind = match j.kind.as_str() {
            "latency" => ToxicKind::Latency {
                latency: millis(a, "latency")?,
                jitter: millis(a, "jitter")?,
            },
            "bandwidth" => ToxicKind::Bandwidth {
                rate_kb: count(a, "rate")?,
            },
            "timeout" => ToxicKind::Timeout {
                timeout: millis(a, "timeout")?,
            },
            "reset_peer" => ToxicKind::ResetPeer {
                timeout: millis(a, "timeout")?,
            },
            "slow_close" => ToxicKind::SlowClose {
                delay: millis(a, "delay")?,
            },
            "limit_data" => ToxicKind::LimitData { bytes: count(a, "bytes")? },
            other => {
                return Err(ToxicError(format!(
                    "unknown toxic type `{other}`; use latency, bandwidth, timeout, reset_peer, slow_close or limit_data"
                )));
            }
        };
        let stream = j.stream.unwrap_or_default();
        let toxicity = j.toxicity.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(ToxicError(format!("toxicity {toxicity} is not between 0 and 1")));
        }
        let name = j.name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            format!(
                "{}_{}",
                j.kind,
                match stream {
                    Stream::Upstream => "upstream",
                    Stream::Downstream => "downstream",
                }
            )
        });
        Ok(Toxic {
            name,
            kind,
            stream,
            toxicity,
        })
    }
}

impl Toxic {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }

    pub fn to_json(&self) -> Value {
        let ms = |d: &Duration| Value::from(d.as_millis() as u64);
        let attributes = match &self.kind {
            ToxicKind::Latency { latency, jitter } => serde_json::json!({ "latency": ms(latency), "jitter": ms(jitter) }),
            ToxicKind::Bandwidth { rate_kb } => serde_json::json!({ "rate": rate_kb }),
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => serde_json::json!({ "timeout": ms(timeout) }),
            ToxicKind::SlowClose { delay } => serde_json::json!({ "delay": ms(delay) }),
            ToxicKind::LimitData { bytes } => serde_json::json!({ "bytes": bytes }),
        };
        serde_json::json!({
            "name": self.name,
            "type": self.type_name(),
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": attributes,
        })
    }
}

//! Cutting a region off the network with iproute2, in the host's network namespace or a
//! named one (`ip -n`): a link taken down, or a blackhole route to a prefix. The evidence
//! is the kernel's own view read back (`ip -j`): the link without `UP`, the route present.
//! Both reverts also work from another process, so `lifeboat resume` undoes them.

use super::{ChaosError, DurableRevert, Injection, Revert, evidence, ts};
use chrono::Utc;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// `ip link set <link> down`.
    Link(String),
    /// `ip route add blackhole <prefix>`.
    Blackhole(String),
}

#[derive(Debug, Clone)]
pub struct PartitionOptions {
    pub cut: Cut,
    /// A named network namespace (`ip netns`), or the engine's own.
    pub netns: Option<String>,
}

impl PartitionOptions {
    /// How the partition is undone, known before it is applied (the engine journals it
    /// first, as an intent).
    pub fn revert(&self) -> DurableRevert {
        let netns = self.netns.clone();
        match &self.cut {
            Cut::Link(link) => DurableRevert::LinkUp { netns, link: link.clone() },
            Cut::Blackhole(prefix) => DurableRevert::RemoveBlackhole {
                netns,
                prefix: prefix.clone(),
            },
        }
    }
}

/// Runs `ip [-n netns] <args>`; the error carries iproute2's message.
fn ip(netns: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut command = std::process::Command::new("ip");
    if let Some(ns) = netns {
        command.args(["-n", ns]);
    }
    let out = command
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e} (install iproute2)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let hint = if stderr.contains("Operation not permitted") {
            " (changing links and routes needs root or CAP_NET_ADMIN)"
        } else {
            ""
        };
        Err(format!("ip {}: {stderr}{hint}", args.join(" ")))
    }
}

/// Whether the link is administratively up, as the kernel reports it.
fn link_is_up(netns: Option<&str>, link: &str) -> Result<bool, String> {
    let json = ip(netns, &["-j", "link", "show", "dev", link])?;
    let links: Value = serde_json::from_str(&json).map_err(|e| format!("reading `ip -j link show`: {e}"))?;
    Ok(links[0]["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "UP")))
}

fn blackhole_present(netns: Option<&str>, prefix: &str) -> Result<bool, String> {
    let json = ip(netns, &["-j", "route", "show", "type", "blackhole", prefix])?;
    let routes: Value = serde_json::from_str(&json).map_err(|e| format!("reading `ip -j route show`: {e}"))?;
    Ok(routes.as_array().is_some_and(|r| !r.is_empty()))
}

pub async fn inject(options: PartitionOptions) -> Result<Injection, ChaosError> {
    tokio::task::spawn_blocking(move || cut(&options))
        .await
        .map_err(|e| ChaosError::NotApplied(e.to_string()))?
}

fn cut(options: &PartitionOptions) -> Result<Injection, ChaosError> {
    let netns = options.netns.as_deref();
    match &options.cut {
        Cut::Link(link) => {
            if !link_is_up(netns, link).map_err(ChaosError::Invalid)? {
                return Err(ChaosError::Invalid(format!(
                    "link {link} is already down; a partition must start from a working network"
                )));
            }
            ip(netns, &["link", "set", "dev", link, "down"]).map_err(ChaosError::NotApplied)?;
            if link_is_up(netns, link).map_err(ChaosError::NotApplied)? {
                return Err(ChaosError::NotApplied(format!(
                    "link {link} still reports UP after `ip link set down`"
                )));
            }
        }
        Cut::Blackhole(prefix) => {
            if blackhole_present(netns, prefix).map_err(ChaosError::Invalid)? {
                return Err(ChaosError::Invalid(format!(
                    "a blackhole route to {prefix} exists already; remove it or choose another prefix"
                )));
            }
            ip(netns, &["route", "add", "blackhole", prefix]).map_err(ChaosError::Invalid)?;
            if !blackhole_present(netns, prefix).map_err(ChaosError::NotApplied)? {
                return Err(ChaosError::NotApplied(format!(
                    "the blackhole route to {prefix} is not in the table"
                )));
            }
        }
    }
    let durable = options.revert();
    let injected_at = Utc::now();
    let (what, target) = match &options.cut {
        Cut::Link(link) => ("link_down", link),
        Cut::Blackhole(prefix) => ("blackhole_route", prefix),
    };
    let undo_with = durable.clone();
    Ok(Injection {
        injected_at,
        evidence: evidence([
            ("cut", what.into()),
            ("target", target.clone().into()),
            ("netns", options.netns.clone().map_or(Value::Null, Value::from)),
            ("observed_at", ts(injected_at)),
        ]),
        revert: Some(Revert {
            undo: Box::pin(async move {
                let note = tokio::task::spawn_blocking(move || undo_with.apply())
                    .await
                    .map_err(|e| e.to_string())??;
                Ok(evidence([("restored", note.into())]))
            }),
            durable: Some(durable),
        }),
    })
}

/// Brings the link back up and checks that the kernel reports it so.
pub(super) fn link_up(netns: Option<&str>, link: &str) -> Result<String, String> {
    ip(netns, &["link", "set", "dev", link, "up"])?;
    if !link_is_up(netns, link)? {
        return Err(format!("link {link} still reports down after `ip link set up`"));
    }
    Ok(format!("link {link} is up again"))
}

/// Removes the blackhole route; one already gone counts as removed.
pub(super) fn remove_blackhole(netns: Option<&str>, prefix: &str) -> Result<String, String> {
    if !blackhole_present(netns, prefix)? {
        return Ok(format!("the blackhole route to {prefix} was already gone"));
    }
    ip(netns, &["route", "del", "blackhole", prefix])?;
    Ok(format!("removed the blackhole route to {prefix}"))
}

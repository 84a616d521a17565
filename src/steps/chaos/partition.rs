//! `chaos.partition`: cut a region off the network — a link taken down or a blackhole
//! route — in the engine's network namespace or a named one; restored on revert.

use super::activate_with_intent;
use crate::chaos::partition::{self, Cut, PartitionOptions};
use crate::plan::model::Limit;
use crate::steps::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// A network interface to take down (`ip link set <link> down`), e.g. the host end of
    /// the veth pair that leads to a region.
    #[serde(default)]
    pub link: Option<Text>,
    /// A prefix to blackhole (`ip route add blackhole <prefix>`), e.g. `10.77.1.0/24`.
    #[serde(default)]
    pub blackhole: Option<Text>,
    /// A named network namespace (`ip netns`) to act in; the engine's own by default.
    #[serde(default)]
    pub netns: Option<Text>,
    /// How long the partition lasts; without it, until `chaos.revert` or the run's end.
    #[serde(default)]
    pub duration: Option<Limit>,
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let cut = match (options.link, options.blackhole) {
        (Some(link), None) => Cut::Link(link.0),
        (None, Some(prefix)) => Cut::Blackhole(prefix.0),
        _ => return Err(StepError::terminal("give exactly one of `link` or `blackhole`")),
    };
    let partition = PartitionOptions {
        cut,
        netns: options.netns.map(|n| n.0),
    };
    let intent = partition.revert();
    activate_with_intent(
        cx,
        Some(intent),
        partition::inject(partition),
        options.duration.map(|d| d.get()),
        options.wait,
    )
    .await
}

//! The Chaos Toolkit family: experiment files run unchanged with the real `chaos` CLI, and
//! its journal read back as lifeboat evidence.

pub mod experiment;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What lifeboat reads of a Chaos Toolkit journal (`chaos run --journal-path`).
#[derive(Debug, Clone, Deserialize)]
pub struct ToolkitJournal {
    pub status: String,
    #[serde(default)]
    pub deviated: bool,
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub steady_states: SteadyStates,
    #[serde(default)]
    pub run: Vec<ActivityRun>,
    #[serde(default)]
    pub rollbacks: Vec<ActivityRun>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SteadyStates {
    #[serde(default)]
    pub before: Option<SteadyState>,
    #[serde(default)]
    pub after: Option<SteadyState>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SteadyState {
    #[serde(default)]
    pub steady_state_met: Option<bool>,
    #[serde(default)]
    pub probes: Vec<ActivityRun>,
}

/// One activity (probe or action) as the journal recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct ActivityRun {
    pub activity: Activity,
    pub status: String,
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub exception: Option<Value>,
    #[serde(default)]
    pub tolerance_met: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// An activity as lifeboat reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityEvidence {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// For steady-state probes: whether the tolerance held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance_met: Option<bool>,
}

impl From<&ActivityRun> for ActivityEvidence {
    fn from(r: &ActivityRun) -> Self {
        ActivityEvidence {
            name: r.activity.name.clone(),
            kind: r.activity.kind.clone(),
            status: r.status.clone(),
            start: r.start,
            end: r.end,
            tolerance_met: r.tolerance_met,
        }
    }
}

impl ToolkitJournal {
    /// The first action of the method that succeeded: when the experiment's fault was in
    /// effect (its end), the drill's disaster if the step carries `mark: disaster`.
    pub fn fault_applied_at(&self) -> Option<DateTime<Utc>> {
        self.run
            .iter()
            .find(|r| r.activity.kind == "action" && r.status == "succeeded")
            .and_then(|r| r.end.or(r.start))
    }

    /// Why the experiment did not hold, in words (`None`: it held).
    pub fn verdict(&self) -> Option<String> {
        let failed_probes = |s: &Option<SteadyState>| -> Vec<String> {
            s.iter()
                .flat_map(|s| &s.probes)
                .filter(|p| p.tolerance_met == Some(false) || p.status != "succeeded")
                .map(|p| p.activity.name.clone())
                .collect()
        };
        if self.status != "completed" {
            let failed: Vec<&str> = self
                .run
                .iter()
                .chain(&self.rollbacks)
                .filter(|r| r.status != "succeeded")
                .map(|r| r.activity.name.as_str())
                .collect();
            let before = failed_probes(&self.steady_states.before);
            return Some(match (before.is_empty(), failed.is_empty()) {
                (false, _) => format!(
                    "the steady state did not hold before the method ({}): the experiment did not run its method",
                    before.join(", ")
                ),
                (_, false) => format!("the experiment ended `{}`: activities {} failed", self.status, failed.join(", ")),
                _ => format!("the experiment ended `{}`", self.status),
            });
        }
        if self.deviated {
            return Some(format!(
                "the steady state deviated after the method: probes {} did not meet their tolerance",
                failed_probes(&self.steady_states.after).join(", ")
            ));
        }
        None
    }
}

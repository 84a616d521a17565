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
        let before = failed_probes(&self.steady_states.before);
        let before_met = self.steady_states.before.as_ref().and_then(|s| s.steady_state_met);
        if before_met == Some(false) {
            return Some(format!(
                "the steady state did not hold before the method ({}): the experiment did not run its method",
                before.join(", ")
            ));
        }
        if self.status != "completed" {
            let failed: Vec<&str> = self
                .run
                .iter()
                .chain(&self.rollbacks)
                .filter(|r| r.status != "succeeded")
                .map(|r| r.activity.name.as_str())
                .collect();
            return Some(if failed.is_empty() {
                format!("the experiment ended `{}`", self.status)
            } else {
                format!("the experiment ended `{}`: activities {} failed", self.status, failed.join(", "))
            });
        }
        let after_met = self.steady_states.after.as_ref().and_then(|s| s.steady_state_met);
        if self.deviated || after_met == Some(false) {
            return Some(format!(
                "the steady state deviated after the method: probes {} did not meet their tolerance",
                failed_probes(&self.steady_states.after).join(", ")
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(before_met: bool, deviated: bool, after_met: Option<bool>) -> ToolkitJournal {
        let probe =
            serde_json::json!({ "activity": { "type": "probe", "name": "up" }, "status": "succeeded", "tolerance_met": before_met });
        serde_json::from_value(serde_json::json!({
            "status": "completed",
            "deviated": deviated,
            "steady_states": {
                "before": { "steady_state_met": before_met, "probes": [probe] },
                "after": after_met.map(|m| serde_json::json!({ "steady_state_met": m, "probes": [] })),
            },
            "run": [{ "activity": { "type": "action", "name": "kill" }, "status": "succeeded",
                      "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T10:00:01Z" }],
            "rollbacks": [],
        }))
        .unwrap()
    }

    #[test]
    fn a_steady_state_missed_before_or_after_fails_even_when_chaos_says_completed() {
        // `chaos run` reports `completed` for an experiment whose hypothesis failed before an
        // empty method: lifeboat reads the probes, not only the status.
        let missed_before = journal(false, false, None).verdict().unwrap();
        assert!(missed_before.contains("did not hold before the method (up)"), "{missed_before}");
        assert!(journal(true, true, Some(false)).verdict().unwrap().contains("deviated"));
        assert!(journal(true, false, Some(false)).verdict().is_some());
        assert_eq!(journal(true, false, Some(true)).verdict(), None);
        assert_eq!(
            journal(true, false, None).fault_applied_at().map(|t| t.to_rfc3339()),
            Some("2026-12-01T10:00:01+00:00".into())
        );
    }
}

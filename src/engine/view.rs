//! What a run looks like to people and to APIs, derived from its replayed state:
//! `lifeboat runs show` (text and `--output json`) and the service's `GET /api/v1/runs/{id}`.
//! A view, versioned on its own — not the journal's event schema.

use super::state::{RunState, UnitStatus};
use crate::journal::RunRow;
use crate::plan::compiled::Role;
use serde::Serialize;
use serde_json::{Map, Value};

/// The `runs show --output json` document (version 1): an API, not the journal schema.
#[derive(Serialize)]
pub struct RunView {
    version: u32,
    id: String,
    plan: String,
    status: String,
    pub reason: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    owner: String,
    params: Map<String, Value>,
    steps: Vec<StepView>,
}

#[derive(Serialize)]
struct StepView {
    id: String,
    kind: String,
    role: &'static str,
    status: &'static str,
    attempts: u32,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    detail: Option<String>,
    outputs: Option<Map<String, Value>>,
}

impl RunView {
    pub fn new(state: &RunState, row: &RunRow) -> Self {
        let steps = state
            .plan
            .units
            .iter()
            .enumerate()
            .filter(|(i, u)| !matches!(u.role, Role::Compensation { .. }) || state.units[*i].attempts > 0)
            .map(|(i, u)| {
                let s = &state.units[i];
                let (detail, outputs) = match &s.status {
                    UnitStatus::Succeeded { outputs, .. } => (None, Some(outputs.clone())),
                    UnitStatus::Failed { error, .. } => (Some(error.clone()), None),
                    UnitStatus::Backoff { error, until, .. } => {
                        (Some(format!("{error} (next attempt at {})", until.format("%H:%M:%S"))), None)
                    }
                    UnitStatus::Skipped { reason } => (Some(reason.clone()), None),
                    UnitStatus::Running { .. } if u.kind == "approval" => {
                        (Some(format!("waiting: lifeboat approve {} {}", state.run_id, u.id)), None)
                    }
                    UnitStatus::Running { .. } if u.kind == "manual" => {
                        (Some(format!("waiting for a person: lifeboat done {} {}", state.run_id, u.id)), None)
                    }
                    _ => (None, None),
                };
                StepView {
                    id: u.id.clone(),
                    kind: u.kind.clone(),
                    role: match u.role {
                        Role::Main => "step",
                        Role::Finally => "finally",
                        Role::Compensation { .. } => "compensation",
                    },
                    status: s.status.label(),
                    attempts: s.attempts,
                    started_at: s.started_at.map(|t| t.to_rfc3339()),
                    finished_at: s.finished_at.map(|t| t.to_rfc3339()),
                    duration_ms: s.started_at.zip(s.finished_at).map(|(a, b)| (b - a).num_milliseconds()),
                    detail,
                    outputs,
                }
            })
            .collect();
        RunView {
            version: 1,
            id: row.id.clone(),
            plan: row.plan_name.clone(),
            status: row.display_status().to_owned(),
            reason: state.finished.as_ref().and_then(|(_, r)| r.clone()),
            created_at: row.created_at.to_rfc3339(),
            finished_at: row.finished_at.map(|t| t.to_rfc3339()),
            owner: format!("pid {} on {}", row.owner.pid, row.owner.host),
            params: state.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            steps,
        }
    }

    pub fn text(&self) -> String {
        let mut out = format!("run {}  plan {}  status {}\n", self.id, self.plan, self.status);
        if let Some(r) = &self.reason {
            out.push_str(&format!("reason: {r}\n"));
        }
        out.push_str(&format!(
            "started {}  finished {}  owner {}\n\n",
            self.created_at,
            self.finished_at.as_deref().unwrap_or("-"),
            self.owner
        ));
        out.push_str(&format!(
            "{:<24} {:<10} {:<20} {:>8} {:>10}  {}\n",
            "STEP", "KIND", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"
        ));
        for s in &self.steps {
            let id = if s.role == "step" {
                s.id.clone()
            } else {
                format!("{} ({})", s.id, s.role)
            };
            let d = s
                .duration_ms
                .map(|ms| crate::plan::duration::format(std::time::Duration::from_millis(ms.max(0) as u64)))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "{:<24} {:<10} {:<20} {:>8} {:>10}  {}\n",
                id,
                s.kind,
                s.status,
                s.attempts,
                d,
                s.detail.as_deref().unwrap_or("")
            ));
        }
        out
    }
}

//! `approval`: pause until a person runs `lifeboat approve RUN STEP` or `reject`.
//!
//! The decision travels through the journal's inbox, so it can come from any process or
//! machine that reaches the journal, and it survives an engine crash.

use super::context::{Decision, DecisionKind};
use super::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// What the approver is asked, shown by `lifeboat runs show`.
    #[serde(default)]
    pub message: Option<String>,
    /// Who may decide; anyone when empty.
    #[serde(default)]
    pub approvers: Vec<String>,
}

const POLL: Duration = Duration::from_millis(300);

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    tracing::info!(run = %cx.run_id, step = %cx.step_id, message = options.message.as_deref().unwrap_or(""), "waiting for approval");
    let d = wait_for_decision(cx, &options.approvers).await?;
    let mut out = Outputs::new();
    out.insert("decision".into(), d.kind.as_str().into());
    out.insert("by".into(), d.by.clone().into());
    out.insert("at".into(), d.at.to_rfc3339().into());
    out.insert("comment".into(), d.comment.clone().unwrap_or_default().into());
    if d.kind == DecisionKind::Reject {
        let why = d.comment.map(|c| format!(": {c}")).unwrap_or_default();
        return Err(StepError::terminal(format!("rejected by {}{why}", d.by)));
    }
    Ok(out)
}

/// Waits for the first decision on the step by someone in `allowed` (anyone when empty).
/// Decisions by others — the CLI refuses them, other writers might not — are passed over,
/// not waited on.
pub async fn wait_for_decision(cx: &StepContext, allowed: &[String]) -> Result<Decision, StepError> {
    let mut ignored = 0;
    loop {
        let decisions = cx.run.decisions(&cx.step_id).await?;
        let (unauthorised, authorised): (Vec<_>, Vec<_>) =
            decisions.into_iter().partition(|d| !allowed.is_empty() && !allowed.contains(&d.by));
        if unauthorised.len() > ignored {
            for d in &unauthorised[ignored..] {
                tracing::warn!(run = %cx.run_id, step = %cx.step_id, by = %d.by, "ignoring a decision from someone not allowed to decide");
            }
            ignored = unauthorised.len();
        }
        if let Some(d) = authorised.into_iter().next() {
            return Ok(d);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled while waiting for a person")),
        }
    }
}

//! `manual`: a step no automation can take (call the DNS provider, tell the customers). It
//! shows its instructions — text, or a section of a runbook — and waits until a person says
//! it is done (`lifeboat done RUN STEP`) or could not be done (`lifeboat reject RUN STEP`).
//! Who said so, when, and the instructions they were shown are journaled as its outputs.

use super::approval::wait_for_decision;
use super::context::DecisionKind;
use super::{Outputs, StepContext, StepError};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// What the person is to do.
    #[serde(default)]
    pub instructions: Option<String>,
    /// A runbook section to show instead: `runbooks/failover.md#call-the-dns-provider`.
    #[serde(default)]
    pub runbook: Option<String>,
    /// Who may say it is done; anyone when empty.
    #[serde(default)]
    pub by: Vec<String>,
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let instructions = match (options.instructions, options.runbook) {
        (Some(text), None) => text,
        (None, Some(reference)) => runbook_section(&reference)?,
        _ => return Err(StepError::terminal("give exactly one of `instructions` or `runbook`")),
    };
    tracing::warn!(run = %cx.run_id, step = %cx.step_id, instructions = %instructions,
        "waiting for a person: `lifeboat done {} {}` once it is done", cx.run_id, cx.step_id);
    let decision = wait_for_decision(cx, &options.by).await?;
    let why = decision.comment.clone().map(|c| format!(": {c}")).unwrap_or_default();
    if decision.kind == DecisionKind::Reject {
        return Err(StepError::terminal(format!("{} could not do it{why}", decision.by)));
    }
    let mut out = Outputs::new();
    out.insert("done_by".into(), decision.by.into());
    out.insert("done_at".into(), super::timestamp(decision.at));
    out.insert("comment".into(), decision.comment.unwrap_or_default().into());
    out.insert("instructions".into(), instructions.into());
    Ok(out)
}

/// The text of `file.md#anchor`.
fn runbook_section(reference: &str) -> Result<String, StepError> {
    crate::runbook::read_section(reference).map_err(|(why, help)| match help {
        Some(help) => StepError::terminal(format!("runbook {why}: {help}")),
        None => StepError::terminal(format!("runbook {why}")),
    })
}

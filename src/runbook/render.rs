//! A runbook rendered from a plan: purpose, objectives, how to run it, the steps in the order
//! they run with what each does, who approves, what happens when one fails, and how to
//! resume or abort. Deterministic, so that `runbook check` can re-render it and report a
//! runbook that has drifted from its plan.

use crate::plan::catalog::KindCatalog;
use crate::plan::compiled::{CompiledPlan, Role, Unit};
use crate::plan::duration::format as duration;
use crate::plan::graph::waves;
use crate::plan::model::{Mark, OnFailure};
use serde_json::Value;
use std::fmt::Write;

/// The front matter key naming the plan a runbook was rendered from.
pub const RENDERED_FROM: &str = "rendered_from";

/// The runbook of `plan`. `plan_path` is the plan file as commands name it (from where
/// lifeboat runs); `plan_link` is the same file as the runbook's front matter names it (from
/// the runbook's folder).
pub fn render(plan: &CompiledPlan, plan_path: &str, plan_link: &str, catalog: &KindCatalog) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\nplans: [{plan_link}]\n{RENDERED_FROM}: {plan_path}\n---");
    let _ = writeln!(out, "# Runbook: {}\n", plan.name);
    let _ = writeln!(
        out,
        "<!-- Rendered by `lifeboat runbook render {plan_path}`; `lifeboat runbook check` reports it when the plan changes. -->\n"
    );
    if let Some(description) = &plan.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let objectives: Vec<String> = [
        plan.rto.map(|d| format!("RTO {}", duration(d))),
        plan.rpo.map(|d| format!("RPO {}", duration(d))),
        plan.max_rows_lost.map(|n| format!("at most {n} rows lost")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !objectives.is_empty() {
        let _ = writeln!(out, "**Objectives:** {}.\n", objectives.join(", "));
    }
    if let Some(lock) = &plan.lock {
        let _ = writeln!(
            out,
            "**Lock:** `{lock}`: a second run waits or exits with status 3 while one runs.\n"
        );
    }

    out.push_str("## Run it\n\n");
    let required: Vec<String> = plan
        .params
        .iter()
        .filter(|(_, p)| p.required && p.default.is_none())
        .map(|(name, _)| format!(" --param {name}=…"))
        .collect();
    let _ = writeln!(
        out,
        "```sh\nlifeboat plan validate {plan_path}\nlifeboat run {plan_path}{} --dry-run\nlifeboat run {plan_path}{}\n```\n",
        required.concat(),
        required.concat()
    );
    if !plan.params.is_empty() {
        out.push_str("| param | type | default | meaning |\n|---|---|---|---|\n");
        for (name, p) in &plan.params {
            let default = match (&p.default, p.required) {
                (Some(v), _) => format!("`{}`", value_text(v)),
                (None, true) => "required".into(),
                (None, false) => "none".into(),
            };
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{name}` | {kind} | {default} | {} |",
                p.description.as_deref().unwrap_or("")
            );
        }
        out.push('\n');
    }

    for (role, title) in [
        (Role::Main, "Steps, in the order they run"),
        (Role::Finally, "Finally (always runs)"),
    ] {
        let waves = waves(plan, role);
        if waves.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title}\n");
        let mut n = 0;
        for wave in waves {
            for i in wave {
                n += 1;
                step(&mut out, plan, &plan.units[i], n, catalog);
            }
        }
        out.push('\n');
    }
    if !plan.guards.is_empty() {
        out.push_str("## Halt conditions\n\n");
        for g in &plan.guards {
            let _ = writeln!(
                out,
                "- `{}` ({}), every {}: {} failed checks in a row abort the run{}.",
                g.id,
                g.kind,
                duration(g.interval),
                g.failure_threshold,
                if g.rollback { " and roll it back" } else { "" }
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## If the run stops\n\n```sh\nlifeboat runs --plan {name}        # find the run; \"interrupted\" means the engine died\nlifeboat runs show RUN             # which step failed, and why\nlifeboat resume RUN                # continue; finished steps are not run again\nlifeboat abort RUN                 # give up: running steps are cancelled, finally runs\nlifeboat abort RUN --rollback      # give up and undo completed steps that have a compensation\n```",
        name = plan.name
    );
    out
}

fn step(out: &mut String, plan: &CompiledPlan, unit: &Unit, n: usize, catalog: &KindCatalog) {
    let summary = catalog.get(&unit.kind).map_or("", |k| k.summary);
    let mark = match unit.mark {
        Some(Mark::Disaster) => " **The drill's disaster: the RTO/RPO clock starts here.**",
        Some(Mark::Recovered) => " **The drill's recovery: the RTO clock stops when it first passes.**",
        None => "",
    };
    let _ = writeln!(out, "{n}. **`{}`** (`{}`): {summary}.{mark}", unit.id, unit.kind);
    if !unit.needs.is_empty() {
        let needs: Vec<String> = unit.needs.iter().map(|&i| format!("`{}`", plan.units[i].id)).collect();
        let _ = writeln!(out, "   - After {}.", needs.join(", "));
    }
    if let Some((source, _)) = &unit.when {
        let _ = writeln!(out, "   - Only when `{source}`.");
    }
    let people = |field: &str| -> String {
        match unit.with.get(field).and_then(Value::as_array) {
            Some(names) if !names.is_empty() => names.iter().map(value_text).collect::<Vec<_>>().join(", "),
            _ => "anyone".into(),
        }
    };
    match unit.kind.as_str() {
        "approval" => {
            let _ = writeln!(
                out,
                "   - Waits for `lifeboat approve RUN {id}` (or `reject`) by {}.",
                people("approvers"),
                id = unit.id
            );
        }
        "manual" => {
            let what = unit
                .with
                .get("instructions")
                .or_else(|| unit.with.get("runbook"))
                .map(value_text)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "   - By hand: {what}. Then `lifeboat done RUN {}`, by {}.",
                unit.id,
                people("by")
            );
        }
        _ => {}
    }
    if let Some(limit) = unit.timeout {
        let _ = writeln!(out, "   - Each attempt may take {}.", duration(limit));
    }
    if unit.retry.attempts > 1 {
        let _ = writeln!(
            out,
            "   - Tried up to {} times, waiting {} and more between tries.",
            unit.retry.attempts,
            duration(unit.retry.backoff)
        );
    }
    if unit.role == Role::Main {
        let on_failure = match unit.on_failure {
            OnFailure::Abort => "no further step starts; `finally` runs; the run fails".to_owned(),
            OnFailure::Continue => "the failure is recorded and the steps after it run".to_owned(),
            OnFailure::Rollback => "completed steps are undone in reverse order, then `finally` runs".to_owned(),
        };
        let _ = writeln!(out, "   - If it fails: {on_failure}.");
    }
    if let Some(c) = unit.compensation {
        let _ = writeln!(out, "   - Undone on rollback by `{}`.", plan.units[c].kind);
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => other.to_string(),
    }
}

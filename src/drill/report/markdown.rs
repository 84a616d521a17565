//! The Markdown report.

use super::{validation_summary, validations, verdict};
use crate::drill::measure::{Measurement, format_ms};

pub fn render(m: &Measurement) -> String {
    let mut out = format!("# Drill {}: {}\n\n", m.plan, verdict(m));
    out += &format!(
        "Run `{}`, {}, started {}.\n",
        m.run_id,
        m.status,
        m.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
    );
    if let Some(d) = &m.description {
        out += &format!("\n{d}\n");
    }
    out += "\n## Objectives\n\n| objective | target | measured | result |\n|---|---|---|---|\n";
    for o in &m.objectives {
        out += &format!(
            "| {} | {} | {} | {}{} |\n",
            o.name,
            o.target,
            o.measured,
            if o.met { "met" } else { "**not met**" },
            o.note.as_ref().map(|n| format!(" ({})", n.replace('|', "/"))).unwrap_or_default()
        );
    }
    out += "\n## Clock\n\n";
    match &m.disaster {
        Some(d) => out += &format!("- disaster: `{}` at {} — {}\n", d.step, d.at.format("%H:%M:%S%.3f"), d.evidence),
        None => out += "- disaster: not recorded\n",
    }
    match &m.recovered {
        Some(r) => out += &format!("- recovered: `{}` at {} — {}\n", r.step, r.at.format("%H:%M:%S%.3f"), r.evidence),
        None => out += "- recovered: not reached\n",
    }
    if let Some(n) = m.rows_lost {
        out += &format!(
            "- rows lost: {n}{}\n",
            if m.lost_seqs.is_empty() {
                String::new()
            } else {
                format!(" (canary seqs {:?})", m.lost_seqs)
            }
        );
    }
    if !m.guard_breaches.is_empty() {
        out += "\n## Guards that fired\n\n";
        for g in &m.guard_breaches {
            out += &format!(
                "- `{}` at {}: {} ({} failed checks)\n",
                g.guard,
                g.at.format("%H:%M:%S%.3f"),
                g.error,
                g.failures
            );
        }
    }
    out += "\n## Steps\n\n| step | kind | status | start | duration |\n|---|---|---|---|---|\n";
    for s in &m.steps {
        let start = s
            .started_at
            .map(|t| format_ms((t - m.started_at).num_milliseconds()))
            .unwrap_or_default();
        let took = match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => format_ms((b - a).num_milliseconds()),
            _ => String::new(),
        };
        let mark = s.mark.map(|m| format!(" ({m})")).unwrap_or_default();
        out += &format!("| {}{mark} | {} | {} | +{start} | {took} |\n", s.id, s.kind, s.status);
    }
    if !m.faults.is_empty() {
        out += "\n## Faults injected\n\n";
        for f in &m.faults {
            out += &format!(
                "- `{}` injected {} — reverted {}\n  evidence: `{}`\n",
                f.step,
                f.injected_at.map_or_else(|| "?".to_owned(), crate::evidence::time::text),
                f.reverted_at.map_or_else(
                    || {
                        if f.left_active {
                            "NEVER (left active)".to_owned()
                        } else {
                            "n/a (not persistent)".to_owned()
                        }
                    },
                    crate::evidence::time::text
                ),
                f.evidence
            );
        }
    }
    let checks: Vec<_> = validations(m).collect();
    if !checks.is_empty() {
        out += "\n## Validation\n\n";
        for s in checks {
            out += &format!("- `{}` ({}, {}): {}\n", s.id, s.kind, s.status, validation_summary(s));
        }
    }
    out
}

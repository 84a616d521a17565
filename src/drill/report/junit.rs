//! The JUnit XML report: one test case per objective and per validation step.

use super::{validation_summary, validations};
use crate::drill::measure::Measurement;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn render(m: &Measurement) -> String {
    let mut cases = Vec::new();
    for o in &m.objectives {
        let detail = format!(
            "target {}, measured {}{}",
            o.target,
            o.measured,
            o.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
        );
        cases.push(("objectives", o.name.clone(), (!o.met).then_some(detail.clone()), detail, 0.0));
    }
    for s in validations(m) {
        let seconds = match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        let summary = validation_summary(s);
        let failed = s.status != "succeeded";
        cases.push(("validation", s.id.clone(), failed.then_some(summary.clone()), summary, seconds));
    }
    let failures = cases.iter().filter(|c| c.2.is_some()).count();
    let total: f64 = m.finished_at.map_or(0.0, |f| (f - m.started_at).num_milliseconds() as f64 / 1000.0);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out += &format!(
        "<testsuites name=\"lifeboat drill\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n",
        cases.len()
    );
    out += &format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total:.3}\" timestamp=\"{}\">\n",
        escape(&format!("drill {} (run {})", m.plan, m.run_id)),
        cases.len(),
        m.started_at.format("%Y-%m-%dT%H:%M:%S")
    );
    for (class, name, failure, detail, seconds) in cases {
        out += &format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{seconds:.3}\">\n",
            escape(&format!("{}.{class}", m.plan)),
            escape(&name)
        );
        match failure {
            Some(f) => out += &format!("      <failure message=\"{}\">{}</failure>\n", escape(&f), escape(&f)),
            None => out += &format!("      <system-out>{}</system-out>\n", escape(&detail)),
        }
        out += "    </testcase>\n";
    }
    out += "  </testsuite>\n</testsuites>\n";
    out
}

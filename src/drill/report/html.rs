//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing
//! fetched) with the verdict, objectives, a timeline of the steps with the disaster and
//! recovered markers, injection evidence, consistency results and rows lost.

use super::{validation_summary, validations, verdict};
use crate::drill::measure::{Measurement, format_ms};
use chrono::{DateTime, Utc};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{margin-bottom:.2em}.pass{color:#1a7f37}.fail{color:#cf222e}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}\
code,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f8fa;padding:6px;white-space:pre-wrap;word-break:break-all;margin:0}\
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}.badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}\
.muted{color:#57606a}";

pub fn render(m: &Measurement) -> String {
    let v = verdict(m);
    let class = if m.passed { "pass" } else { "fail" };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drill {plan}: {v}</title><style>{STYLE}</style></head><body>\n\
         <h1>Drill <code>{plan}</code> <span class=\"badge {class}\">{v}</span></h1>\n\
         <p class=\"muted\">Run <code>{run}</code> · {status} · started {start}</p>\n",
        plan = esc(&m.plan),
        run = esc(&m.run_id),
        status = esc(&m.status),
        start = m.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
    );
    if let Some(d) = &m.description {
        out += &format!("<p>{}</p>\n", esc(d));
    }
    if let Some(reason) = &m.reason {
        out += &format!("<p class=\"muted\">{}</p>\n", esc(reason));
    }
    out += "<h2>Objectives</h2>\n<table><tr><th>objective</th><th>target</th><th>measured</th><th>result</th></tr>\n";
    for o in &m.objectives {
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td><b>{}</b></td><td class=\"{}\">{}{}</td></tr>\n",
            esc(&o.name),
            esc(&o.target),
            esc(&o.measured),
            if o.met { "pass" } else { "fail" },
            if o.met { "met" } else { "not met" },
            o.note
                .as_ref()
                .map(|n| format!(" <span class=\"muted\">({})</span>", esc(n)))
                .unwrap_or_default()
        );
    }
    out += "</table>\n";
    out += "<h2>Timeline</h2>\n";
    out += &timeline(m);
    out += "<ul>\n";
    if let Some(d) = &m.disaster {
        out += &format!(
            "<li><b>disaster</b> <code>{}</code> at {} — {}</li>\n",
            esc(&d.step),
            d.at.format("%H:%M:%S%.3f"),
            esc(&d.evidence)
        );
    }
    if let Some(r) = &m.recovered {
        out += &format!(
            "<li><b>recovered</b> <code>{}</code> at {} — {}</li>\n",
            esc(&r.step),
            r.at.format("%H:%M:%S%.3f"),
            esc(&r.evidence)
        );
    }
    if let Some(n) = m.rows_lost {
        out += &format!(
            "<li><b>rows lost</b>: {n}{}</li>\n",
            if m.lost_seqs.is_empty() {
                String::new()
            } else {
                format!(" (canary seqs {})", esc(&format!("{:?}", m.lost_seqs)))
            }
        );
    }
    out += "</ul>\n";
    if !m.guard_breaches.is_empty() {
        out += "<h2 class=\"fail\">Guards that fired</h2>\n<table><tr><th>guard</th><th>at</th><th>failed checks</th><th>error</th></tr>\n";
        for g in &m.guard_breaches {
            out += &format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&g.guard),
                g.at.format("%H:%M:%S%.3f"),
                g.failures,
                esc(&g.error)
            );
        }
        out += "</table>\n";
    }
    if !m.faults.is_empty() {
        out += "<h2>Faults injected</h2>\n<table><tr><th>step</th><th>injected</th><th>reverted</th><th>evidence</th></tr>\n";
        for f in &m.faults {
            let reverted = match (&f.reverted_at, f.left_active) {
                (Some(t), _) => format!(
                    "{}<br><span class=\"muted\">{}</span>",
                    esc(&crate::evidence::time::text(*t)),
                    esc(f.revert.as_ref().map_or("", |r| r.reason.as_str()))
                ),
                (None, true) => "<b class=\"fail\">never — left active</b>".into(),
                (None, false) => "<span class=\"muted\">not persistent</span>".into(),
            };
            out += &format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>\n",
                esc(&f.step),
                esc(&f.injected_at.map_or_else(|| "?".to_owned(), crate::evidence::time::text)),
                reverted,
                esc(&serde_json::to_string_pretty(&f.evidence).unwrap_or_default())
            );
        }
        out += "</table>\n";
    }
    let checks: Vec<_> = validations(m).collect();
    if !checks.is_empty() {
        out += "<h2>Consistency and validation</h2>\n<table><tr><th>step</th><th>kind</th><th>status</th><th>result</th></tr>\n";
        for s in checks {
            out += &format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>\n",
                esc(&s.id),
                esc(&s.kind),
                if s.status == "succeeded" { "pass" } else { "fail" },
                esc(&s.status),
                esc(&validation_summary(s))
            );
        }
        out += "</table>\n";
    }
    out += "<h2>Steps</h2>\n<table><tr><th>step</th><th>kind</th><th>status</th><th>attempts</th><th>outputs / error</th></tr>\n";
    for s in &m.steps {
        let detail = match &s.error {
            Some(e) => format!("<span class=\"fail\">{}</span>", esc(e)),
            None => format!("<pre>{}</pre>", esc(&serde_json::to_string(&s.outputs).unwrap_or_default())),
        };
        out += &format!(
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s.id),
            s.mark.map(|m| format!(" <b>({m})</b>")).unwrap_or_default(),
            esc(&s.kind),
            esc(&s.status),
            s.attempts,
            detail
        );
    }
    out += "</table>\n<p class=\"muted\">Generated by lifeboat. Times are UTC; RTO and RPO come from recorded evidence (injector observations, probe results, canary acknowledgements).</p>\n</body></html>\n";
    out
}

/// Bars per step on a shared time axis, with the disaster and recovered markers.
fn timeline(m: &Measurement) -> String {
    let rows: Vec<_> = m.steps.iter().filter(|s| s.started_at.is_some()).collect();
    if rows.is_empty() {
        return "<p class=\"muted\">No step started.</p>\n".into();
    }
    let t0 = m.started_at;
    let end = rows
        .iter()
        .filter_map(|s| s.finished_at.or(s.started_at))
        .chain(m.finished_at)
        .max()
        .unwrap_or(t0);
    let span = ((end - t0).num_milliseconds().max(1)) as f64;
    let (label_w, chart_w, row_h) = (190.0, 820.0, 22.0);
    let axis_y = rows.len() as f64 * row_h + 14.0;
    let height = axis_y + 34.0;
    let x = |t: DateTime<Utc>| label_w + ((t - t0).num_milliseconds() as f64 / span) * chart_w;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-size=\"11\" font-family=\"ui-monospace,monospace\">\n",
        w = label_w + chart_w + 20.0
    );
    for (i, s) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let start = s.started_at.unwrap_or(t0);
        let stop = s.finished_at.unwrap_or(end);
        let color = match s.status.as_str() {
            "succeeded" => "#2da44e",
            "skipped" => "#8c959f",
            "failed (tolerated)" => "#bf8700",
            _ => "#cf222e",
        };
        let width = (x(stop) - x(start)).max(2.0);
        svg += &format!(
            "<text x=\"0\" y=\"{ty}\">{}</text><rect x=\"{:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{h}\" fill=\"{color}\" rx=\"2\"><title>{} {} · {}</title></rect>\n",
            esc(&s.id.chars().take(26).collect::<String>()),
            x(start),
            esc(&s.id),
            esc(&s.status),
            format_ms((stop - start).num_milliseconds()),
            ty = y + 13.0,
            h = row_h - 6.0,
        );
    }
    svg += &format!(
        "<line x1=\"{label_w}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#57606a\"/><text x=\"{label_w}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        label_w + chart_w,
        axis_y + 14.0,
        label_w + chart_w,
        axis_y + 14.0,
        format_ms(span as i64)
    );
    for (marker, color, name) in [(&m.disaster, "#cf222e", "disaster"), (&m.recovered, "#0969da", "recovered")] {
        if let Some(mk) = marker {
            let mx = x(mk.at);
            svg += &format!(
                "<line x1=\"{mx:.1}\" y1=\"2\" x2=\"{mx:.1}\" y2=\"{axis_y}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"{color}\" font-weight=\"bold\">{name}</text>\n",
                mx + 3.0,
                axis_y + 26.0
            );
        }
    }
    if let Some(rto) = m.rto_ms {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">RTO {}</text>\n",
            label_w + chart_w / 2.0,
            axis_y + 26.0,
            format_ms(rto)
        );
    }
    svg + "</svg>\n"
}

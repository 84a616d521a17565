//! Drill reports, chosen by the file name: `.html` (one self-contained file with an SVG
//! timeline), `.md`, `.json`, `.junit.xml` (one test case per objective and per
//! validation step, for CI gates). Files are written to a temporary name and renamed,
//! so a reader never sees half a report.

pub mod html;
mod junit;
mod markdown;

use super::measure::{Measurement, StepRecord};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Json,
    Junit,
}

impl Format {
    pub fn for_path(path: &Path) -> Result<Format, String> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        if name.ends_with(".junit.xml") || name.ends_with(".xml") {
            Ok(Format::Junit)
        } else if name.ends_with(".html") || name.ends_with(".htm") {
            Ok(Format::Html)
        } else if name.ends_with(".md") {
            Ok(Format::Markdown)
        } else if name.ends_with(".json") {
            Ok(Format::Json)
        } else {
            Err(format!(
                "--report {}: unknown report format; name the file *.html, *.md, *.json or *.junit.xml",
                path.display()
            ))
        }
    }
}

pub fn render(m: &Measurement, format: Format) -> String {
    match format {
        Format::Html => html::render(m),
        Format::Markdown => markdown::render(m),
        Format::Json => serde_json::to_string_pretty(m).unwrap_or_default() + "\n",
        Format::Junit => junit::render(m),
    }
}

pub fn write(m: &Measurement, path: &Path) -> Result<(), String> {
    let format = Format::for_path(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("lifeboat-tmp");
    std::fs::write(&tmp, render(m, format)).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}

/// Validation steps: what the consistency section and the JUnit cases list.
fn validations(m: &Measurement) -> impl Iterator<Item = &StepRecord> {
    m.steps
        .iter()
        .filter(|s| s.kind.starts_with("validation.") && s.kind != "validation.canary_stop")
}

/// One line saying what a validation step found.
fn validation_summary(s: &StepRecord) -> String {
    let o = &s.outputs;
    if let Some(e) = &s.error {
        return e.clone();
    }
    match s.kind.as_str() {
        "validation.rpo" => format!(
            "RPO {}, {} of {} acknowledged rows before the disaster lost",
            o.get("rpo_ms")
                .and_then(|v| v.as_i64())
                .map_or("unbounded".into(), super::measure::format_ms),
            o.get("rows_lost").cloned().unwrap_or_default(),
            o.get("acknowledged_before_disaster").cloned().unwrap_or_default()
        ),
        "validation.sql_compare" => {
            let tables = o.get("tables").and_then(|t| t.as_array()).map_or(0, Vec::len);
            format!(
                "{tables} table(s) compared, all match: {}",
                o.get("all_match").cloned().unwrap_or_default()
            )
        }
        "validation.canary" => format!(
            "writing to {} every {} ms",
            o.get("table").and_then(|v| v.as_str()).unwrap_or("?"),
            o.get("interval_ms").cloned().unwrap_or_default()
        ),
        _ => match (o.get("observed"), o.get("checks")) {
            (Some(obs), Some(checks)) => format!("{} after {checks} check(s)", obs.as_str().unwrap_or_default()),
            _ => s.status.clone(),
        },
    }
}

fn verdict(m: &Measurement) -> &'static str {
    if m.passed { "PASS" } else { "FAIL" }
}

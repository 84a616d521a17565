//! Compiler diagnostics: what is wrong, where (`file:line:column`, step id), how to fix it.

use super::yaml::Pos;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    /// The step the problem belongs to, when it belongs to one.
    pub step: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    /// Renders the diagnostic with the offending source line and a caret under it.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let step = self.step.as_ref().map(|s| format!(" [step `{s}`]")).unwrap_or_default();
        let _ = writeln!(
            out,
            "error: {}:{}:{}{}: {}",
            self.file, self.pos.line, self.pos.col, step, self.message
        );
        if let Some(line) = self.pos.line.checked_sub(1).and_then(|i| source.lines().nth(i)) {
            let number = self.pos.line.to_string();
            let pad = " ".repeat(number.len());
            let caret_pad: String = line
                .chars()
                .take(self.pos.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{pad} |\n{number} | {line}\n{pad} | {caret_pad}^");
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// `did you mean …?` for a misspelt name, using Jaro-Winkler similarity.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Renders all diagnostics of one file, followed by a count.
pub fn render_all(diagnostics: &[Diagnostic], source: &str) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(source));
        out.push('\n');
    }
    let n = diagnostics.len();
    let _ = writeln!(out, "{n} error{} found", if n == 1 { "" } else { "s" });
    out
}

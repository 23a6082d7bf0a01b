//! Diagnostics: every problem specgen finds, with a place in the spec and a stable code.
//!
//! Checks collect diagnostics instead of stopping at the first one, so a user fixes a spec in one
//! pass. The printer renders them for a terminal (with the offending source line and a caret) or
//! as JSON for machines; both forms carry the same fields.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A 1-based line and column in a spec file. Line 0 means the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub const FILE: Pos = Pos { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding. `code` is stable across releases: CI scripts and docs refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub help: String,
}

impl Diagnostic {
    pub fn error(code: &'static str, file: &Path, at: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file: file.to_path_buf(),
            line: at.line,
            column: at.column,
            help: String::new(),
        }
    }

    pub fn warning(code: &'static str, file: &Path, at: Pos, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, file, at, message) }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one run, kept in the order a reader expects: by file, then line.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        tracing::debug!(code = diagnostic.code, line = diagnostic.line, "diagnostic recorded");
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorted by file, position and code, with exact repeats removed, so output is stable.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut items = self.items.clone();
        items.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.severity, a.code, &a.message)
                .cmp(&(&b.file, b.line, b.column, b.severity, b.code, &b.message))
        });
        items.dedup();
        items
    }
}

/// Renders diagnostics as a user reads them on a terminal:
/// `specs/x.yaml:12:5: error[route-shadowed]: message`, the source line with a caret, then help.
pub fn render_human(
    diagnostics: &[Diagnostic],
    source_of: &dyn Fn(&Path) -> Option<String>,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&format!(
            "{}:{}:{}: {}[{}]: {}\n",
            d.file.display(),
            d.line,
            d.column,
            d.severity,
            d.code,
            d.message
        ));
        if d.line > 0
            && let Some(text) = source_of(&d.file).and_then(|s| source_line(&s, d.line))
        {
            let gutter = d.line.to_string();
            let caret_pad: String = text
                .chars()
                .take(d.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{} |\n", " ".repeat(gutter.len())));
            out.push_str(&format!("{gutter} | {text}\n"));
            out.push_str(&format!("{} | {caret_pad}^\n", " ".repeat(gutter.len())));
        }
        if !d.help.is_empty() {
            out.push_str(&format!("  = help: {}\n", d.help));
        }
    }
    out
}

fn source_line(source: &str, line: u32) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)? as usize)?;
    // Control characters would let a hostile spec rewrite the terminal; show them escaped.
    Some(
        text.chars()
            .flat_map(|c| {
                if c.is_control() && c != '\t' { c.escape_default().collect() } else { vec![c] }
            })
            .collect(),
    )
}

/// Renders diagnostics as `{"diagnostics": [...]}` for machines.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    let value = serde_json::json!({ "diagnostics": diagnostics });
    let mut text = serde_json::to_string_pretty(&value).expect("diagnostics serialize");
    text.push('\n');
    text
}

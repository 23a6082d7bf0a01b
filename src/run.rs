//! The `build` and `check` commands as library calls: which specs, what to compare, what to
//! write, and the exit code. The binary only parses arguments and prints the report.

use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::model::{self, Model};
use crate::output::{self, Status};
use crate::render::{self, File};
use crate::{assertions, check, lint, routeset, spec};

/// Exit codes, part of the CLI contract.
pub mod exit {
    pub const CLEAN: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const STALE: u8 = 2;
    pub const USAGE: u8 = 64;
    pub const IO: u8 = 74;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Build,
    Check,
}

/// What the user asked for, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Request {
    pub mode: Mode,
    /// Spec files; empty means every `specs/*.yaml`.
    pub specs: Vec<PathBuf>,
    pub out: PathBuf,
}

/// One spec after parsing, resolving, checking and rendering.
#[derive(Debug)]
pub struct Compiled {
    pub file: PathBuf,
    pub source: Option<String>,
    pub diagnostics: Diagnostics,
    pub model: Option<Model>,
    pub files: Vec<File>,
}

/// Reads, checks and renders one spec. Renders only when the spec has no errors, so nothing is
/// produced from a spec that breaks a guarantee.
pub fn compile(file: &Path) -> Compiled {
    let mut compiled = empty(file);
    let Some(text) = read_source(file, &mut compiled) else { return compiled };
    compile_text(file, &text, compiled)
}

/// Reads, parses and resolves one spec, without the guarantees, lints, assertions or rendering:
/// for `specgen explain`, which must describe a spec that `check` refuses. The model is set only
/// when parsing and resolving found no error; the diagnostics then hold no error either.
pub fn resolve_spec(file: &Path) -> Compiled {
    let mut compiled = empty(file);
    let Some(text) = read_source(file, &mut compiled) else { return compiled };
    let parsed = match spec::parse(file, &text) {
        Ok(parsed) => parsed,
        Err(diagnostic) => {
            compiled.diagnostics.push(diagnostic);
            return compiled;
        }
    };
    let (model, diagnostics) = model::resolve(file, &text, &parsed);
    compiled.diagnostics.extend(diagnostics);
    if !compiled.diagnostics.has_errors() {
        compiled.model = model;
    }
    compiled
}

fn empty(file: &Path) -> Compiled {
    Compiled {
        file: file.to_path_buf(),
        source: None,
        diagnostics: Diagnostics::default(),
        model: None,
        files: Vec::new(),
    }
}

/// The spec's text, also kept in `compiled.source`; `None` with a diagnostic when it cannot be
/// read or is not UTF-8.
fn read_source(file: &Path, compiled: &mut Compiled) -> Option<String> {
    let text = match read_capped(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                compiled.diagnostics.push(
                    Diagnostic::error("spec-encoding", file, Pos::FILE, "the spec is not UTF-8")
                        .help("save the file as UTF-8"),
                );
                return None;
            }
        },
        Err(e) => {
            compiled.diagnostics.push(
                Diagnostic::error("spec-unreadable", file, Pos::FILE, format!("cannot read: {e}"))
                    .help("check the path"),
            );
            return None;
        }
    };
    tracing::debug!(spec = %file.display(), bytes = text.len(), "spec loaded");
    compiled.source = Some(text.clone());
    Some(text)
}

fn compile_text(file: &Path, text: &str, mut compiled: Compiled) -> Compiled {
    let parsed = match spec::parse(file, text) {
        Ok(parsed) => parsed,
        Err(diagnostic) => {
            compiled.diagnostics.push(diagnostic);
            return compiled;
        }
    };
    let (model, diagnostics) = model::resolve(file, text, &parsed);
    compiled.diagnostics.extend(diagnostics);
    let Some(mut model) = model else { return compiled };

    // The guarantees run only on a model that resolved cleanly: on a broken one they would
    // report consequences of the first mistake instead of the mistake.
    if !compiled.diagnostics.has_errors() {
        compiled.diagnostics.extend(check::check(&model));
        compiled.diagnostics.extend(lint::lint(&model));
        model.acknowledged = lint::acknowledged(&model)
            .into_iter()
            .map(|a| model::AcknowledgedModel {
                lint: a.diagnostic.code.to_string(),
                route: a.route,
                finding: a.diagnostic.message,
                reason: a.reason.trim().to_string(),
            })
            .collect();
        compiled.diagnostics.extend(assertions::check_assertions(&model));
    }
    if !compiled.diagnostics.has_errors() {
        match render::render_spec(&model) {
            Ok(files) => {
                let mismatches = routeset::check_route_sets(&model, &files);
                if mismatches.has_errors() {
                    compiled.diagnostics.extend(mismatches);
                } else {
                    compiled.files = files;
                }
            }
            Err(e) => compiled.diagnostics.push(
                Diagnostic::error("render-failed", file, Pos::FILE, e.to_string())
                    .help("this is a bug in specgen; please report it with the spec"),
            ),
        }
    }
    compiled.model = Some(model);
    compiled
}

/// Reads a spec that is a regular file, at most one byte past the size limit, so a device, a
/// pipe or a huge file cannot exhaust memory or hang the run.
fn read_capped(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    fs::File::open(file)?.take(spec::MAX_SPEC_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > spec::MAX_SPEC_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the limit of {} bytes", spec::MAX_SPEC_BYTES),
        ));
    }
    Ok(bytes)
}

/// The exit code of a command that stopped at its spec's diagnostics: a spec that cannot be
/// read is an I/O failure, any other error an invalid spec.
pub fn spec_failure_exit(diagnostics: &[Diagnostic]) -> u8 {
    if diagnostics.iter().any(|d| d.code == "spec-unreadable") { exit::IO } else { exit::INVALID }
}

/// Everything a command found and did, for the binary to print.
#[derive(Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<(PathBuf, String)>,
    /// Files that differ from what `build` would write, with why.
    pub stale: Vec<(PathBuf, &'static str)>,
    pub orphans: Vec<PathBuf>,
    pub written: Vec<PathBuf>,
    /// Environment variables that owners of referenced backends must set themselves.
    pub referenced_env: Vec<String>,
    pub error: Option<String>,
    pub exit: u8,
    /// The command that brings `generated/` up to date, for stale reports.
    pub fix_command: String,
}

fn check_spec_path(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.chars().any(|c| c.is_control()) || path.to_str().is_none() {
        return Err("the path has control characters or is not UTF-8; rename the file".into());
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let plain = stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if stem.is_empty() || stem.starts_with('.') || !plain {
        return Err(format!(
            "the file name `{stem}` cannot name an output folder; use letters, digits, `-`, `_` \
             and `.`, not starting with `.`"
        ));
    }
    Ok(())
}

/// Lists every `specs/*.yaml`, sorted so that runs are reproducible.
pub fn default_specs() -> std::io::Result<Vec<PathBuf>> {
    let mut specs: Vec<PathBuf> = fs::read_dir("specs")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    specs.sort();
    Ok(specs)
}

pub fn run(request: &Request) -> Report {
    let mut report = Report::default();
    let all = request.specs.is_empty();
    let specs = if all {
        match default_specs() {
            Ok(specs) if !specs.is_empty() => specs,
            Ok(_) | Err(_) => {
                report.error = Some("no spec given and no specs/*.yaml found".into());
                report.exit = exit::USAGE;
                return report;
            }
        }
    } else {
        request.specs.clone()
    };

    // The stem names the output folder and the path appears in every header: both must be
    // plain text, or a file name could escape generated/ or inject lines into a header.
    for s in &specs {
        if let Err(why) = check_spec_path(s) {
            report.error = Some(format!("{}: {why}", s.display()));
            report.exit = exit::USAGE;
            return report;
        }
    }

    // Two specs with one stem would write into one folder.
    let mut stems = std::collections::BTreeMap::new();
    for s in &specs {
        let stem = s.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(other) = stems.insert(stem.clone(), s.clone()) {
            report.error = Some(format!(
                "{} and {} would both write generated/{stem}/; rename one",
                other.display(),
                s.display()
            ));
            report.exit = exit::USAGE;
            return report;
        }
    }

    let compiled: Vec<Compiled> = specs.iter().map(|s| compile(s)).collect();
    let mut files = vec![render::schema_file()];
    let mut scan = Vec::new();
    for c in &compiled {
        report.diagnostics.extend(c.diagnostics.sorted());
        if let Some(source) = &c.source {
            report.sources.push((c.file.clone(), source.clone()));
        }
        if let Some(m) = &c.model {
            scan.push(PathBuf::from(&m.source.stem));
            report.referenced_env.extend(referenced_env(m));
        }
        files.extend(c.files.iter().cloned());
    }
    let invalid = report.diagnostics.iter().any(Diagnostic::is_error);
    report.fix_command = if all {
        "specgen build".into()
    } else {
        let names: Vec<String> = specs.iter().map(|s| model::display_path(s)).collect();
        format!("specgen build {}", names.join(" "))
    };

    // A spec that cannot be read is an I/O failure, not an invalid spec.
    if report.diagnostics.iter().any(|d| d.code == "spec-unreadable") {
        report.exit = exit::IO;
        return report;
    }
    // A failed build writes nothing at all, so generated/ stays as it was.
    if invalid && request.mode == Mode::Build {
        report.exit = exit::INVALID;
        return report;
    }
    // Specs that did not compile contribute no files: comparing them would report every file
    // of theirs as an orphan.
    let compared: Vec<File> = files;
    let scan_dirs: Vec<PathBuf> = if invalid { Vec::new() } else { scan };
    let plan = match output::plan(&request.out, compared, &scan_dirs, all && !invalid) {
        Ok(plan) => plan,
        Err(e) => {
            report.error = Some(format!("cannot read {}: {e}", request.out.display()));
            report.exit = exit::IO;
            return report;
        }
    };

    match request.mode {
        Mode::Check => {
            for (file, status) in &plan.files {
                let why = match status {
                    Status::Unchanged => continue,
                    Status::Missing => "missing",
                    Status::Stale => "stale",
                    Status::Foreign => "in the way: a file specgen did not write",
                };
                // An invalid spec renders nothing, so only the schema can be compared for it.
                report.stale.push((request.out.join(&file.path), why));
            }
            if all && !invalid {
                report.orphans = plan.orphans.iter().map(|p| request.out.join(p)).collect();
            }
            let foreign = plan.foreign().count() > 0;
            report.exit = if invalid {
                exit::INVALID
            } else if foreign {
                report.error = Some(
                    "files specgen did not write are in the way; move them, then run build".into(),
                );
                exit::IO
            } else if report.stale.is_empty() && report.orphans.is_empty() {
                exit::CLEAN
            } else {
                exit::STALE
            };
        }
        Mode::Build => match output::apply(&request.out, &plan) {
            Ok(written) => {
                report.written = written.iter().map(|p| request.out.join(p)).collect();
                report.orphans = plan.orphans.iter().map(|p| request.out.join(p)).collect();
                report.exit = exit::CLEAN;
            }
            Err(e) => {
                report.error = Some(e.to_string());
                report.exit = exit::IO;
            }
        },
    }
    report
}

/// The environment values a referenced backend's owner must set, since Pulumi does not own it.
fn referenced_env(model: &Model) -> Vec<String> {
    let mut lines = Vec::new();
    for b in model.backends.iter().filter(|b| b.deploy == "referenced") {
        for var in &b.environment {
            for (env, value) in &var.values {
                lines.push(format!(
                    "{}: backend `{}` is referenced, so set {}={} on its function in \
                     environment `{env}`",
                    model.source.file, b.name, var.name, value
                ));
            }
        }
    }
    lines
}

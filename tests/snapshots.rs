//! Snapshot tests: every output of every bundled spec, and the exact diagnostics a user sees for
//! every invalid fixture. A change to any of them shows up as a reviewable `.snap` diff.

use std::path::{Path, PathBuf};

use specgen::diag;
use specgen::run::compile;

/// Paths relative to the crate root, as a user in the repository would type them, so that
/// headers and diagnostics in snapshots do not depend on the machine.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).to_path_buf()
}

#[test]
fn invalid_fixture_diagnostics() {
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        let file = relative(path);
        let compiled = compile(&file);
        let diagnostics = compiled.diagnostics.sorted();
        assert!(
            diagnostics.iter().any(|d| d.is_error()),
            "{} is an invalid fixture but compiled without errors",
            file.display()
        );
        assert!(compiled.files.is_empty(), "an invalid spec must render nothing");
        let source = compiled.source.clone();
        let human = diag::render_human(&diagnostics, &|_| source.clone());
        insta::with_settings!({
            description => format!("specgen check {}", file.display()),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(human);
        });
    });
}

#[test]
fn invalid_fixture_json_diagnostics_have_every_field() {
    let compiled = compile(Path::new("tests/fixtures/invalid/doubled-base-url.yaml"));
    let json: serde_json::Value =
        serde_json::from_str(&diag::render_json(&compiled.diagnostics.sorted())).unwrap();
    let first = &json["diagnostics"][0];
    for field in ["code", "severity", "message", "file", "line", "column", "help"] {
        assert!(!first[field].is_null(), "diagnostic lacks `{field}`: {first}");
    }
    assert_eq!(first["code"], "framework-url-mismatch");
    assert_eq!(first["line"], 20);
}

#[test]
fn bundled_spec_outputs() {
    insta::glob!(env!("CARGO_MANIFEST_DIR"), "specs/*.yaml", |path| {
        let file = relative(path);
        let compiled = compile(&file);
        let errors: Vec<_> =
            compiled.diagnostics.sorted().into_iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "bundled spec {} has errors: {errors:#?}", file.display());
        assert!(!compiled.files.is_empty());
        for out in &compiled.files {
            let name = out.path.display().to_string().replace(['/', '\\'], "__");
            let text = String::from_utf8(out.bytes.clone()).expect("outputs are UTF-8");
            insta::with_settings!({
                description => format!(
                    "specgen build {} -> generated/{}",
                    file.display(),
                    out.path.display()
                ),
                omit_expression => true,
                snapshot_suffix => name,
            }, {
                insta::assert_snapshot!(text);
            });
        }
    });
}

#[test]
fn bundled_spec_warnings() {
    insta::glob!(env!("CARGO_MANIFEST_DIR"), "specs/*.yaml", |path| {
        let file = relative(path);
        let compiled = compile(&file);
        let source = compiled.source.clone();
        let human = diag::render_human(&compiled.diagnostics.sorted(), &|_| source.clone());
        insta::with_settings!({
            description => format!("diagnostics of specgen check {}", file.display()),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(human);
        });
    });
}

#[test]
fn rendering_is_deterministic() {
    for spec in ["specs/wikibot.yaml", "specs/wikibot-fastmcp.yaml"] {
        let a = compile(Path::new(spec)).files;
        let b = compile(Path::new(spec)).files;
        assert_eq!(a, b, "{spec} renders differently on a second run");
    }
}

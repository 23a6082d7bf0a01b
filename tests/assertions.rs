//! Route assertions in specs: what they check, on which environments, and which statuses
//! specgen can know. The exact messages are snapshots of `tests/fixtures/invalid/assert-*.yaml`.

use std::fs;
use std::path::Path;

use specgen::diag::Diagnostic;
use specgen::run::compile;

const WIKIBOT: &str = include_str!("../specs/wikibot.yaml");
const FASTMCP: &str = include_str!("../specs/wikibot-fastmcp.yaml");

/// The assertion diagnostics of a spec: `base` with `extra` appended, compiled from a file.
fn assertion_diagnostics(base: &str, extra: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.yaml");
    fs::write(&file, format!("{base}{extra}")).unwrap();
    compile(&file)
        .diagnostics
        .sorted()
        .into_iter()
        .filter(|d| d.code.starts_with("assertion-"))
        .collect()
}

/// `wikibot.yaml` already ends with an `assertions:` list, so more items can follow it.
fn wikibot_with(assertions: &str) -> Vec<Diagnostic> {
    assertion_diagnostics(WIKIBOT, assertions)
}

fn fastmcp_with(assertions: &str) -> Vec<Diagnostic> {
    assertion_diagnostics(FASTMCP, &format!("\nassertions:\n{assertions}"))
}

#[test]
fn the_bundled_specs_hold_their_assertions() {
    let compiled = compile(Path::new("specs/wikibot.yaml"));
    assert!(compiled.model.as_ref().unwrap().assertions.len() >= 5);
    let failed: Vec<_> = compiled
        .diagnostics
        .sorted()
        .into_iter()
        .filter(|d| d.code.starts_with("assertion-"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(wikibot_with("").is_empty());
}

#[test]
fn a_route_that_takes_an_asserted_request_fails_the_assertion() {
    let spec = WIKIBOT.replace(
        "routes:\n  - key: $default\n",
        "routes:\n  - key: GET /Home\n    backend: mcp\n  - key: $default\n",
    );
    assert_ne!(spec, WIKIBOT);
    let diags = assertion_diagnostics(&spec, "");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code, "assertion-failed");
    assert!(
        d.message.contains("gets route `GET /Home`, not `$default`; backend `mcp`, not `wiki`"),
        "{}",
        d.message
    );
    // At the assertion's request.
    let line = spec.lines().nth(d.line as usize - 1).unwrap();
    assert!(line.contains("request: GET /Home"), "{line}");
    assert!(d.help.contains("specgen explain"), "{}", d.help);
}

#[test]
fn the_router_answers_are_statuses_specgen_knows() {
    let holds = wikibot_with(
        "  - request: DELETE /.well-known/oauth-protected-resource/mcp
    status: 405
  - request: HEAD /.well-known/oauth-protected-resource
    status: 200
  - request: GET /authorize?client_id=x
    status: 302
  - request: POST /register
    status: 307
  - request: OPTIONS /.well-known/openid-configuration/mcp
    status: 204
  - request: GET /mcp/.well-known/anything
    route: ANY /mcp/{rest+}
    status: 404
",
    );
    assert!(holds.is_empty(), "{holds:#?}");

    let fails = wikibot_with("  - request: GET /mcp\n    status: 200\n");
    assert_eq!(fails.len(), 1, "{fails:#?}");
    assert!(fails[0].message.contains("status 401 from the router, not 200"), "{fails:#?}");
}

#[test]
fn a_bare_path_is_checked_on_every_environment_and_a_url_on_its_own() {
    let bare = fastmcp_with("  - request: GET /x\n    backend: mcp\n");
    let envs: Vec<bool> = ["`dev`", "`prod`"]
        .iter()
        .map(|env| bare.iter().any(|d| d.message.contains(&format!("(environment {env})"))))
        .collect();
    assert_eq!(envs, [true, true], "{bare:#?}");

    let url = fastmcp_with("  - request: GET https://wikibot.io/x\n    backend: mcp\n");
    assert_eq!(url.len(), 1, "{url:#?}");
    assert!(url[0].message.contains("(environment `prod`)"), "{url:#?}");

    let named = fastmcp_with("  - request: GET /x\n    environment: dev\n    backend: mcp\n");
    assert_eq!(named.len(), 1, "{named:#?}");
    assert!(named[0].message.contains("(environment `dev`)"), "{named:#?}");
}

#[test]
fn the_gateway_404_is_asserted_with_route_none() {
    let compiled = compile(Path::new("tests/fixtures/explain/no-default.yaml"));
    let errors: Vec<_> =
        compiled.diagnostics.sorted().into_iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn no_status_is_known_behind_a_jwt_authorizer_or_from_a_framework() {
    let diags = fastmcp_with(
        "  - request: POST /api/pages\n    status: 401\n  - request: POST /mcp\n    status: 401\n",
    );
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags.iter().all(|d| d.code == "assertion-unknowable"), "{diags:#?}");
    assert!(diags[0].message.contains("JWT authorizer `workos`"), "{diags:#?}");
    assert!(diags[1].message.contains("fastmcp"), "{diags:#?}");
}

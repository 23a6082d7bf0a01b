//! The test-only entry point puts each of the outage's mistakes into a valid model. These tests
//! hold that the mistake is really there in what is rendered and served, that the guarantees
//! name it when the model is checked, and that the model without it is clean: the end-to-end
//! runs with real clients rely on all three.

use std::path::Path;

use specgen::engine::{self, RouteKey};
use specgen::model::Model;
use specgen::unchecked::{self, SeedMistake};
use specgen::{check, run};

const SPEC: &str = "tests/fixtures/valid/local-serve.yaml";

fn model() -> Model {
    unchecked::resolve(Path::new(SPEC)).expect("the fixture passes every check")
}

fn with(mistake: SeedMistake) -> Model {
    let mut model = model();
    unchecked::apply(&mut model, mistake).expect("the mistake applies");
    model
}

fn codes(model: &Model) -> Vec<&'static str> {
    check::check(model).sorted().iter().filter(|d| d.is_error()).map(|d| d.code).collect()
}

fn rendered(model: &Model, ends_with: &str) -> String {
    let files = unchecked::render(model).expect("renders");
    let file = files.iter().find(|f| f.path.ends_with(ends_with)).expect(ends_with);
    String::from_utf8(file.bytes.clone()).unwrap()
}

/// The backend that API Gateway's selection picks for `GET path` in the model's first
/// environment.
fn backend_for(model: &Model, path: &str) -> Option<String> {
    let keys: Vec<RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
    let selection = engine::select(&keys, "GET", path);
    selection.winner.map(|i| model.routes[i].backend.clone())
}

#[test]
fn the_fixture_without_a_mistake_is_clean() {
    let model = model();
    assert!(codes(&model).is_empty(), "{:?}", codes(&model));
    let prm = "/.well-known/oauth-protected-resource/mcp";
    assert_eq!(backend_for(&model, prm).as_deref(), Some("mcp"));
    assert!(!rendered(&model, "src/spec.rs").contains("18787/mcp/mcp"));
}

#[test]
fn shadowed_discovery_sends_every_discovery_url_to_the_wiki() {
    let model = with(SeedMistake::ShadowedDiscovery);
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
    ] {
        assert_eq!(backend_for(&model, path).as_deref(), Some("wiki"), "{path}");
    }
    // The MCP endpoint itself still reaches the router, as in the outage.
    assert_eq!(backend_for(&model, "/mcp").as_deref(), Some("mcp"));
    // The root discovery routes are gone from the Pulumi program; the probes appended under
    // the mount stay, as the mount's own routes would have taken them. The router is untouched:
    // in the outage the function was right and the gateway sent discovery elsewhere.
    let program = rendered(&model, "__main__.py");
    assert!(!program.contains("\"ANY /.well-known/"), "the program still routes discovery");
    assert_eq!(model.crates[0].routes.len(), self::model().crates[0].routes.len());
    assert!(codes(&model).contains(&"discovery-shadowed"), "{:?}", codes(&model));
}

#[test]
fn doubled_resource_advertises_the_mount_twice() {
    let model = with(SeedMistake::DoubledResource);
    let spec_rs = rendered(&model, "src/spec.rs");
    assert!(spec_rs.contains("\"http://127.0.0.1:18787/mcp/mcp\""), "{spec_rs}");
    // The metadata stays where the routes are, so clients find it and read the wrong resource.
    let prm = "/.well-known/oauth-protected-resource/mcp";
    assert_eq!(backend_for(&model, prm).as_deref(), Some("mcp"));
    assert!(codes(&model).contains(&"url-doubled"), "{:?}", codes(&model));
}

#[test]
fn a_mistaken_router_crate_never_shares_the_correct_crates_name_or_identity() {
    // Built into one target directory under one name, cargo could reuse either binary for the
    // other; and serve tells the two binaries apart by their identity.
    let correct = model();
    let doubled = with(SeedMistake::DoubledResource);
    assert_ne!(doubled.crates[0].name, correct.crates[0].name);
    let cargo_toml = rendered(&doubled, "Cargo.toml");
    assert!(cargo_toml.contains(&format!("name = \"{}\"", doubled.crates[0].name)));
    let identity = |m: &Model| specgen::render::router_identity(m, &m.crates[0]);
    assert_ne!(identity(&doubled), identity(&correct));
    // The shadowed deployment runs the correct router, so its identity is the correct one.
    assert_eq!(identity(&with(SeedMistake::ShadowedDiscovery)), identity(&correct));
}

#[test]
fn only_the_unchecked_render_takes_out_the_routers_own_table_check() {
    let call = "config::check_tables()?;";
    let checked = run::compile(Path::new(SPEC));
    let dispatch = checked.files.iter().find(|f| f.path.ends_with("src/dispatch.rs")).unwrap();
    assert!(String::from_utf8_lossy(&dispatch.bytes).contains(call));
    let unchecked = rendered(&with(SeedMistake::DoubledResource), "src/dispatch.rs");
    assert!(!unchecked.contains(call), "{unchecked}");
}

#[test]
fn a_copy_doubled_only_in_the_router_crate_is_caught_too() {
    let mut model = model();
    for env in model.crates.iter_mut().flat_map(|c| c.environments.iter_mut()) {
        for resource in &mut env.resources {
            resource.resource_url.push_str("/mcp");
        }
    }
    assert!(codes(&model).contains(&"url-doubled"), "{:?}", codes(&model));
}

#[test]
fn a_mistake_that_would_change_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("no-default.yaml");
    let text = std::fs::read_to_string(SPEC).unwrap().replace(
        "routes:\n  - key: $default\n    backend: wiki\n",
        "routes:\n  - key: GET /Home\n    backend: wiki\n",
    );
    std::fs::write(&spec, text).unwrap();
    let mut model = unchecked::resolve(&spec).expect("still valid without $default");
    let refused = unchecked::apply(&mut model, SeedMistake::ShadowedDiscovery).unwrap_err();
    assert!(refused.contains("no $default"), "{refused}");
}

#[test]
fn a_resource_served_by_a_framework_is_not_doubled_in_name_only() {
    let mut model = unchecked::resolve(Path::new("specs/wikibot-fastmcp.yaml")).unwrap();
    let refused = unchecked::apply(&mut model, SeedMistake::DoubledResource).unwrap_err();
    assert!(refused.contains("not a generated router"), "{refused}");
}

#[test]
fn only_a_spec_that_passes_every_check_is_taken() {
    let diagnostics = unchecked::resolve(Path::new("tests/fixtures/invalid/discovery-off.yaml"))
        .expect_err("an invalid spec is refused");
    assert!(diagnostics.iter().any(|d| d.code == "discovery-disabled"));
}

#[test]
fn the_command_line_still_refuses_both_mistakes() {
    // The checked pipeline has no way around the guarantees: the same fixture compiles, and the
    // mistakes exist only through the unchecked entry point.
    let compiled = run::compile(Path::new(SPEC));
    assert!(!compiled.diagnostics.has_errors());
    assert!(!compiled.files.is_empty());
}

//! The resolved model of valid edge-case specs: URLs derived once, routes derived per resource.

use std::path::Path;

use specgen::run::compile;

fn compiled(name: &str) -> specgen::run::Compiled {
    let c = compile(Path::new(&format!("tests/fixtures/valid/{name}")));
    let errors: Vec<_> = c.diagnostics.sorted().into_iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}");
    c
}

#[test]
fn a_named_stage_behind_a_custom_domain_keeps_urls_at_the_root() {
    let c = compiled("two-resources-named-stage.yaml");
    let model = c.model.unwrap();
    let prod = &model.environments[0];
    assert_eq!(prod.stage, "live");
    assert_eq!(prod.base_url, "https://tools.example.com");
    let search = &prod.resources[0];
    assert_eq!(search.resource_url, "https://tools.example.com/search/mcp");
    assert_eq!(
        search.prm_url,
        "https://tools.example.com/.well-known/oauth-protected-resource/search/mcp"
    );
    // Two resources on one origin: no root metadata document.
    assert!(prod.resources.iter().all(|r| r.root_prm_url.is_none()));
    // The root URL still goes to an MCP backend, whose router answers a JSON 404 there.
    let root = model.routes.iter().find(|r| r.key == "ANY /.well-known/oauth-protected-resource");
    let root = root.expect("the root metadata URL has a route");
    assert_eq!(root.backend, "search");
    assert!(root.purpose.contains("JSON 404"), "{}", root.purpose);
    let crate_env = &model.crates[0].environments[0];
    assert!(crate_env.resources.iter().all(|r| !r.root_prm));
    assert_eq!(
        prod.as_metadata_url,
        "https://auth.example.com/.well-known/oauth-authorization-server/realms/tools"
    );
}

#[test]
fn old_fastmcp_gets_the_resource_url_as_its_base_url() {
    let model = compiled("two-resources-named-stage.yaml").model.unwrap();
    let notes = model.backends.iter().find(|b| b.name == "notes").unwrap();
    let var = notes.environment.iter().find(|v| v.name == "MCP_BASE_URL").unwrap();
    assert_eq!(var.values["prod"], "https://tools.example.com/notes");
    assert_eq!(var.values["local"], "http://127.0.0.1:8787/notes");
}

#[test]
fn only_router_backends_get_a_crate_and_the_environment_variable() {
    let model = compiled("two-resources-named-stage.yaml").model.unwrap();
    assert_eq!(model.crates.len(), 1);
    assert_eq!(model.crates[0].name, "tools-search-router");
    let search = model.backends.iter().find(|b| b.name == "search").unwrap();
    assert!(search.environment.iter().any(|v| v.name == "SPECGEN_ENVIRONMENT"));
    let notes = model.backends.iter().find(|b| b.name == "notes").unwrap();
    assert!(!notes.environment.iter().any(|v| v.name == "SPECGEN_ENVIRONMENT"));
    // The router's arms are exactly its backend's derived routes.
    let arms: Vec<&str> = model.crates[0].routes.iter().map(|r| r.key.as_str()).collect();
    let expected: Vec<&str> =
        model.routes.iter().filter(|r| r.backend == "search").map(|r| r.key.as_str()).collect();
    assert_eq!(arms, expected);
}

#[test]
fn a_local_environment_is_no_stack_and_has_no_openapi_document() {
    let c = compiled("two-resources-named-stage.yaml");
    let names: Vec<String> = c.files.iter().map(|f| f.path.display().to_string()).collect();
    assert!(names.iter().any(|n| n.ends_with("openapi.prod.json")));
    assert!(!names.iter().any(|n| n.ends_with("openapi.local.json")));
}

#[test]
fn the_issuer_on_the_mcp_origin_routes_its_metadata_to_its_backend() {
    let model = compiled("issuer-on-origin.yaml").model.unwrap();
    let route =
        |key: &str| model.routes.iter().find(|r| r.key == key).unwrap_or_else(|| panic!("{key}"));
    assert_eq!(route("ANY /.well-known/oauth-authorization-server/auth").backend, "auth");
    assert_eq!(route("ANY /.well-known/openid-configuration/auth").backend, "auth");
    assert_eq!(route("ANY /auth/.well-known/openid-configuration").backend, "auth");
    // The legacy location on the MCP origin is still the MCP backend's.
    assert_eq!(route("ANY /.well-known/oauth-authorization-server").backend, "mcp");
    for endpoint in ["authorize", "token", "register"] {
        assert_eq!(route(&format!("ANY /{endpoint}")).backend, "mcp");
    }
}

#[test]
fn a_backend_that_cannot_be_seen_to_verify_tokens_gets_a_warning() {
    let spec = "api: {name: x}\n\
        environments: [{name: dev, origin: https://x.example.com}]\n\
        backends: [{name: app, deploy: referenced}]\n\
        oauth: {issuer: https://a.example.com, default_endpoints: false, \
        resources: [{backend: app, mount: /mcp}]}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.yaml");
    std::fs::write(&path, spec).unwrap();
    let c = compile(&path);
    let diagnostics = c.diagnostics.sorted();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["bearer-unverified"], "{diagnostics:#?}");
    assert!(!c.files.is_empty(), "a warning does not stop the build");
}

#[test]
fn every_valid_fixture_renders_without_errors() {
    for entry in std::fs::read_dir("tests/fixtures/valid").unwrap() {
        let path = entry.unwrap().path();
        let c = compile(&path);
        let errors: Vec<_> = c.diagnostics.sorted().into_iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        assert!(!c.files.is_empty(), "{} rendered nothing", path.display());
    }
}

#[test]
fn the_pulumi_program_holds_only_deployed_environments() {
    let c = compiled("authorizer-with-local.yaml");
    let program = c.files.iter().find(|f| f.path.ends_with("__main__.py")).unwrap();
    let text = String::from_utf8(program.bytes.clone()).unwrap();
    assert!(text.contains("\"dev\": {"), "{text}");
    assert!(!text.contains("\"local\": {"), "a local environment is no Pulumi stack");
}

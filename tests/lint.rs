//! The route-table lints: witness generation at its edges, each lint's boundary cases, and how
//! acknowledgements silence, fail or go stale.

use std::fs;
use std::path::Path;

use specgen::diag::Diagnostic;
use specgen::engine::RouteKey;
use specgen::lint::{self, witness};
use specgen::run::compile;

fn keys(list: &[&str]) -> Vec<RouteKey> {
    list.iter().map(|k| RouteKey::parse(k).unwrap()).collect()
}

fn key(k: &str) -> RouteKey {
    RouteKey::parse(k).unwrap()
}

/// Compiles a spec written in the test and returns its diagnostics.
fn diagnostics_of(spec: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.yaml");
    fs::write(&file, spec).unwrap();
    let diagnostics = compile(&file).diagnostics.sorted();
    assert!(!diagnostics.iter().any(|d| d.code == "spec-syntax"), "{diagnostics:#?}");
    diagnostics
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code).collect()
}

/// A spec with one referenced backend `site`, one authorizer `staff`, and the given routes.
fn spec_with_routes(routes: &str) -> String {
    format!(
        "api: {{name: intranet}}\n\
         environments: [{{name: prod, origin: 'https://intranet.example.com'}}]\n\
         backends: [{{name: site, deploy: referenced}}, {{name: other, deploy: referenced}}]\n\
         authorizers: [{{name: staff, issuer: 'https://login.example.com', audience: [x]}}]\n\
         routes:\n{routes}"
    )
}

// Witness generation.

#[test]
fn the_fresh_literal_is_one_no_route_uses() {
    assert_eq!(witness::fresh_literal(&keys(&["GET /a", "$default"])), "zz");
    assert_eq!(witness::fresh_literal(&keys(&["GET /zz", "ANY /x/zz1"])), "zz2");
}

#[test]
fn variables_take_the_donors_literal_at_the_same_position() {
    let route = key("GET /{a}/{b}");
    let donor = key("ANY /x/{c}");
    assert_eq!(witness::instances(&route, Some(&donor), "zz"), ["/x/zz"]);
    assert_eq!(witness::instances(&route, None, "zz"), ["/zz/zz"]);
}

#[test]
fn a_greedy_variable_gets_one_and_two_segments_and_the_donors_remainder() {
    let route = key("ANY /{proxy+}");
    let donor = key("GET /api/{id}/raw");
    assert_eq!(witness::instances(&route, Some(&donor), "zz"), ["/zz", "/zz/zz", "/api/zz/raw"]);
    // A donor that ends before the greedy position adds nothing.
    assert_eq!(witness::instances(&key("ANY /a/b/{p+}"), Some(&key("GET /q")), "zz").len(), 2);
}

#[test]
fn the_root_and_default_have_the_instances_they_should() {
    assert_eq!(witness::instances(&key("GET /"), None, "zz"), ["/"]);
    assert!(witness::instances(&RouteKey::Default, None, "zz").is_empty());
    assert_eq!(witness::twins("/", "zz"), ["/zz"]);
    assert_eq!(witness::twins("/admin", "zz"), ["/admin/", "/admin/zz"]);
}

#[test]
fn greedy_routes_get_their_bare_prefix_and_empty_remainder() {
    assert_eq!(witness::greedy_edges(&key("ANY /api/{p+}"), "zz"), ["/api/", "/api"]);
    assert_eq!(witness::greedy_edges(&key("ANY /{p+}"), "zz"), ["/"]);
    assert!(witness::greedy_edges(&key("ANY /api"), "zz").is_empty());
}

#[test]
fn donors_are_only_routes_that_could_meet() {
    assert!(witness::could_meet(&key("GET /{a}"), &key("ANY /mcp")));
    assert!(!witness::could_meet(&key("GET /a/{x}"), &key("ANY /b/{y}")));
    assert!(!witness::could_meet(&key("GET /a"), &key("GET /a/b")));
    assert!(witness::could_meet(&key("ANY /{p+}"), &key("GET /a/b")));
    assert!(!witness::could_meet(&key("ANY /a/b/{p+}"), &key("GET /a/b")));
}

#[test]
fn the_witness_paths_cover_root_fresh_paths_twins_and_edges() {
    let paths = witness::paths(&keys(&["$default", "GET /users/{id}", "ANY /api/{proxy+}"]));
    for expected in
        ["/", "/zz", "/zz/zz", "/users/zz", "/users/zz/", "/users/zz/zz", "/api", "/api/"]
    {
        assert!(paths.contains(&expected.to_owned()), "{expected} missing from {paths:?}");
    }
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(paths, sorted, "witness paths are sorted and without repeats");
}

// The lints on specs.

#[test]
fn an_ambiguous_pair_is_reported_once_at_the_route_written_later() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /admin', backend: other}\n  - {key: 'GET /{page}', backend: site}\n  \
         - {key: 'POST /{page}', backend: site}\n",
    ));
    let ambiguous: Vec<_> = diags.iter().filter(|d| d.code == "route-ambiguous").collect();
    // GET /{page} and POST /{page} each compete with ANY /admin; each pair once, for all methods.
    assert_eq!(ambiguous.len(), 2, "{ambiguous:#?}");
    assert_eq!((ambiguous[0].line, ambiguous[1].line), (7, 8), "at the routes written later");
    assert!(ambiguous[0].message.contains("GET https://intranet.example.com/admin"));
}

#[test]
fn a_pair_that_discovery_ambiguous_reports_is_not_reported_again() {
    let c = compile(Path::new("tests/fixtures/invalid/ambiguous-route.yaml"));
    let codes = codes(&c.diagnostics.sorted());
    assert!(codes.contains(&"discovery-ambiguous"));
    assert!(!codes.contains(&"route-ambiguous"), "{codes:?}");
}

#[test]
fn a_route_whose_rival_has_the_same_method_is_not_ambiguous() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'GET /admin', backend: other}\n  - {key: 'GET /{page}', backend: site}\n  \
         - {key: 'ANY /api/{proxy+}', backend: other}\n  - {key: 'ANY /{proxy+}', backend: site}\n",
    ));
    assert!(!codes(&diags).contains(&"route-ambiguous"), "{diags:#?}");
}

#[test]
fn a_twin_that_lands_on_a_route_with_auth_is_fine() {
    let protected = "  - {key: 'GET /admin', backend: site, auth: {jwt: staff}}\n";
    let open = diagnostics_of(&spec_with_routes(&format!(
        "{protected}  - {{key: 'ANY /{{proxy+}}', backend: site}}\n"
    )));
    assert!(codes(&open).contains(&"auth-weaker-twin"));
    let closed = diagnostics_of(&spec_with_routes(&format!(
        "{protected}  - {{key: 'ANY /{{proxy+}}', backend: site, auth: {{jwt: staff}}}}\n"
    )));
    assert!(!codes(&closed).contains(&"auth-weaker-twin"), "{closed:#?}");
    // No catch-all at all: the twins get API Gateway's 404, which exposes nothing.
    assert!(!codes(&diagnostics_of(&spec_with_routes(protected))).contains(&"auth-weaker-twin"));
}

#[test]
fn a_preflight_twin_is_no_weaker_twin() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /admin', backend: site, auth: {jwt: staff}}\n  \
         - {key: 'ANY /admin/{proxy+}', backend: site, auth: {jwt: staff}}\n  \
         - {key: 'OPTIONS /{proxy+}', backend: site}\n",
    ));
    assert!(!codes(&diags).contains(&"auth-weaker-twin"), "{diags:#?}");
}

#[test]
fn a_trailing_slash_twin_that_rests_on_row_10_says_so() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: '$default', backend: site}\n  - {key: 'GET /admin', backend: site, \
         auth: {jwt: staff}}\n  \
         - {key: 'ANY /admin/{proxy+}', backend: site, auth: {jwt: staff}}\n",
    ));
    let twin = diags.iter().find(|d| d.code == "auth-weaker-twin").expect("a twin finding");
    assert!(twin.message.contains("/admin/ lands on route `$default`"), "{}", twin.message);
    assert!(twin.message.contains("(assumed: row 10 [?]"), "{}", twin.message);
    assert!(!twin.message.contains("/admin/zz"), "the child reaches the greedy route");
}

#[test]
fn the_bundled_mcp_endpoint_twin_on_another_backend_is_exempt_but_not_on_its_own() {
    let wikibot = fs::read_to_string("specs/wikibot.yaml").unwrap();
    assert!(!codes(&diagnostics_of(&wikibot)).contains(&"auth-weaker-twin"));
    // The same spec with $default on the MCP backend: /mcp/ reaches it without a token.
    // The MCP backend is then an app of its own: the generated router takes no `$default`.
    let same_backend = wikibot
        .replace("  - key: $default\n    backend: wiki", "  - key: $default\n    backend: mcp")
        .replace("    router: true\n", "");
    assert_ne!(same_backend, wikibot);
    let diags = diagnostics_of(&same_backend);
    let twin = diags
        .iter()
        .find(|d| d.code == "auth-weaker-twin" && d.message.starts_with("route `ANY /mcp` "))
        .expect("a twin finding");
    assert!(twin.message.contains("requires a bearer token"), "{twin:#?}");
}

#[test]
fn a_greedy_routes_bare_prefix_and_its_slash_twin_are_twins() {
    // The reviewer's table: GET /api and GET /api/ land on ANY /{proxy+}, without auth, under
    // the assumed readings of rows 11 and 10.
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /{proxy+}', backend: site}\n  \
         - {key: 'ANY /api/{proxy+}', backend: site, auth: {jwt: staff}}\n  \
         - {key: 'ANY /', backend: site}\n",
    ));
    let twin = diags.iter().find(|d| d.code == "auth-weaker-twin").expect("a twin finding");
    assert!(twin.message.starts_with("route `ANY /api/{proxy+}` requires a JWT"), "{twin:#?}");
    let bare = "GET https://intranet.example.com/api lands on route `ANY /{proxy+}` (backend \
                `site`) without auth (assumed: row 11 [?]";
    let slash = "GET https://intranet.example.com/api/ lands on route `ANY /{proxy+}` (backend \
                 `site`) without auth (assumed: row 10 [?]";
    assert!(twin.message.contains(bare), "{}", twin.message);
    assert!(twin.message.contains(slash), "{}", twin.message);
}

#[test]
fn a_route_written_for_the_bare_prefix_is_deliberate_and_no_twin() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /{proxy+}', backend: site}\n  \
         - {key: 'ANY /api/{proxy+}', backend: site, auth: {jwt: staff}}\n  \
         - {key: 'GET /api', backend: site}\n",
    ));
    let twin = diags.iter().find(|d| d.code == "auth-weaker-twin").expect("a twin finding");
    // GET /api is the route's own; the slash twin and the other methods on /api are not.
    assert!(!twin.message.contains("GET https://intranet.example.com/api lands"), "{twin:#?}");
    assert!(twin.message.contains("GET https://intranet.example.com/api/ lands"), "{twin:#?}");
}

#[test]
fn a_head_request_that_falls_to_an_open_route_of_the_same_backend_is_flagged() {
    let get = "  - {key: 'GET /admin', backend: site, auth: {jwt: staff}}\n";
    let diags = diagnostics_of(&spec_with_routes(&format!(
        "{get}  - {{key: 'ANY /{{proxy+}}', backend: site}}\n"
    )));
    let twin = diags.iter().find(|d| d.code == "auth-weaker-twin").expect("a twin finding");
    assert!(
        twin.message.contains(
            "HEAD https://intranet.example.com/admin lands on route `ANY /{proxy+}` (backend \
             `site`) without auth, and most frameworks answer HEAD with the GET handler"
        ),
        "{}",
        twin.message
    );
    assert!(twin.help.contains("`HEAD /admin`"), "{twin:#?}");

    // On another backend, HEAD /admin reaches a handler that was never protected.
    let other = diagnostics_of(&spec_with_routes(&format!(
        "{get}  - {{key: 'ANY /{{proxy+}}', backend: other}}\n"
    )));
    let twin = other.iter().find(|d| d.code == "auth-weaker-twin").expect("the GET twins");
    assert!(!twin.message.contains("HEAD"), "{}", twin.message);

    // A HEAD route with the GET route's auth keeps HEAD /admin; its twins still fall through.
    let kept = diagnostics_of(&spec_with_routes(&format!(
        "{get}  - {{key: 'HEAD /admin', backend: site, auth: {{jwt: staff}}}}\n  \
         - {{key: 'ANY /{{proxy+}}', backend: site}}\n"
    )));
    let twin = kept
        .iter()
        .find(|d| d.code == "auth-weaker-twin" && d.message.starts_with("route `GET /admin`"))
        .expect("the GET twins");
    assert!(!twin.message.contains("HEAD https://intranet.example.com/admin lands"), "{twin:#?}");
}

#[test]
fn a_jwt_any_route_that_takes_preflights_is_flagged() {
    let jwt = "  - {key: 'ANY /settings', backend: site, auth: {jwt: staff}}\n  \
               - {key: 'ANY /{proxy+}', backend: site, auth: {jwt: staff}}\n";
    let diags = diagnostics_of(&spec_with_routes(jwt));
    let found: Vec<_> =
        diags.iter().filter(|d| d.code == "authorizer-on-preflight-or-discovery").collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("takes the preflight OPTIONS https://intranet.example.com/settings"),
        "{}",
        found[0].message
    );
    assert_eq!(
        found[0].help,
        "add the route `OPTIONS /settings` with `auth: none`, so preflights reach a route \
         without an authorizer"
    );

    // An open OPTIONS /{proxy+} takes the catch-all's preflights, not those of /settings: an
    // exact route beats a greedy one (row 2).
    let catch_all = diagnostics_of(&spec_with_routes(&format!(
        "{jwt}  - {{key: 'OPTIONS /{{proxy+}}', backend: site, auth: none}}\n"
    )));
    let found: Vec<_> =
        catch_all.iter().filter(|d| d.code == "authorizer-on-preflight-or-discovery").collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].message.starts_with("route `ANY /settings`"), "{found:#?}");

    let both = diagnostics_of(&spec_with_routes(&format!(
        "{jwt}  - {{key: 'OPTIONS /{{proxy+}}', backend: site, auth: none}}\n  \
         - {{key: 'OPTIONS /settings', backend: site, auth: none}}\n"
    )));
    assert!(!codes(&both).contains(&"authorizer-on-preflight-or-discovery"), "{both:#?}");
}

#[test]
fn an_options_catch_all_against_a_longer_any_prefix_is_told_which_route_settles_it() {
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /x/{proxy+}', backend: other, auth: {jwt: staff}}\n  \
         - {key: 'OPTIONS /{proxy+}', backend: site}\n",
    ));
    let ambiguous = diags.iter().find(|d| d.code == "route-ambiguous").expect("an ambiguity");
    let help = &ambiguous.help;
    assert!(help.starts_with("add the route `OPTIONS /x/{proxy+}`"), "{help}");
    // The open OPTIONS route may take those preflights (row 14), so the JWT route is not also
    // said to take them: the ambiguity is the one finding to fix.
    assert!(!codes(&diags).contains(&"authorizer-on-preflight-or-discovery"), "{diags:#?}");
}

#[test]
fn an_unauthenticated_preflight_catch_all_silences_the_default_authorizer_lint() {
    let default = "  - {key: '$default', backend: site, auth: {jwt: staff}}\n";
    assert!(
        codes(&diagnostics_of(&spec_with_routes(default)))
            .contains(&"default-authorizer-preflight")
    );
    for catch_all in ["OPTIONS /{proxy+}", "ANY /{proxy+}"] {
        let diags = diagnostics_of(&spec_with_routes(&format!(
            "{default}  - {{key: '{catch_all}', backend: site, auth: none}}\n"
        )));
        assert!(!codes(&diags).contains(&"default-authorizer-preflight"), "{diags:#?}");
    }
}

#[test]
fn a_stage_behind_a_custom_domain_shadows_nothing() {
    let spec = "api: {name: intranet}\n\
                environments:\n  - name: prod\n    origin: https://intranet.example.com\n    \
                stage: v1\n    custom_domain: {mapping_key: ''}\n\
                backends: [{name: site, deploy: referenced}]\n\
                routes: [{key: 'GET /v1/users', backend: site}]\n";
    let diags = diagnostics_of(spec);
    assert!(!codes(&diags).contains(&"stage-shadows-route"), "{diags:#?}");
    let own_endpoint = spec.replace(
        "https://intranet.example.com\n    stage: v1\n    custom_domain: {mapping_key: ''}",
        "https://abc123.execute-api.eu-west-1.amazonaws.com\n    stage: v1",
    );
    assert!(codes(&diagnostics_of(&own_endpoint)).contains(&"stage-shadows-route"));
}

#[test]
fn default_is_reachable_while_some_path_has_no_route() {
    // Under row 10's assumption ANY /{proxy+} does not take `/`, so $default still does.
    let greedy =
        "  - {key: '$default', backend: site}\n  - {key: 'ANY /{proxy+}', backend: site}\n";
    assert!(!codes(&diagnostics_of(&spec_with_routes(greedy))).contains(&"route-unreachable"));
    let with_root = format!("{greedy}  - {{key: 'ANY /', backend: site}}\n");
    assert!(codes(&diagnostics_of(&spec_with_routes(&with_root))).contains(&"route-unreachable"));
}

#[test]
fn a_route_with_the_fresh_literal_of_another_table_is_still_reachable() {
    // `zz` is a route's literal here. Were it the fresh literal anyway, every instance of
    // `ANY /{a}/{b}` would be `/zz/zz`, which `ANY /{a}/zz` takes, and the lint would be wrong.
    let diags = diagnostics_of(&spec_with_routes(
        "  - {key: 'ANY /{a}/zz', backend: site}\n  - {key: 'ANY /{a}/{b}', backend: site}\n",
    ));
    assert!(!codes(&diags).contains(&"route-unreachable"), "{diags:#?}");
}

// Acknowledgements.

#[test]
fn the_acknowledged_fixture_is_clean_and_is_not_without_its_acknowledgement() {
    let path = Path::new("tests/fixtures/valid/acknowledged.yaml");
    let compiled = compile(path);
    assert!(compiled.diagnostics.sorted().is_empty(), "{:#?}", compiled.diagnostics.sorted());

    let text = fs::read_to_string(path).unwrap();
    let cut = text.find("acknowledge:").unwrap();
    let diags = diagnostics_of(&text[..cut]);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, "auth-weaker-twin");
}

#[test]
fn an_acknowledgement_for_another_route_covers_nothing_and_is_unused() {
    let text = fs::read_to_string("tests/fixtures/valid/acknowledged.yaml").unwrap();
    let other = text.replace("    route: GET /admin\n", "    route: $default\n");
    assert_ne!(other, text);
    let diags = diagnostics_of(&other);
    assert_eq!(codes(&diags), ["auth-weaker-twin", "acknowledgement-unused"]);
    assert!(!diags[1].is_error());
}

#[test]
fn an_acknowledgement_without_a_route_is_an_error_and_hides_nothing() {
    let text = fs::read_to_string("tests/fixtures/valid/acknowledged.yaml").unwrap();
    let any_route = text.replace("    route: GET /admin\n", "");
    assert_ne!(any_route, text);
    let diags = diagnostics_of(&any_route);
    assert_eq!(codes(&diags), ["auth-weaker-twin", "acknowledgement-without-route"]);
    assert!(diags[1].is_error());
    assert_eq!(diags[1].help, "name the route the finding is about, e.g. `route: GET /admin`");
}

#[test]
fn acknowledged_findings_are_listed_with_their_reason() {
    let path = Path::new("tests/fixtures/valid/acknowledged.yaml");
    let model = compile(path).model.expect("a model");
    let acknowledged = lint::acknowledged(&model);
    assert_eq!(acknowledged.len(), 1, "{acknowledged:#?}");
    assert_eq!(acknowledged[0].route, "GET /admin");
    assert_eq!(acknowledged[0].diagnostic.code, "auth-weaker-twin");
    assert!(acknowledged[0].reason.starts_with("the brochure site serves only public"));
}

#[test]
fn an_acknowledgement_naming_a_route_the_spec_lacks_says_so() {
    let text = fs::read_to_string("tests/fixtures/valid/acknowledged.yaml").unwrap();
    let spec = format!(
        "{text}  - lint: route-unreachable\n    route: GET /gone\n    reason: removed last week\n"
    );
    let diags = diagnostics_of(&spec);
    assert_eq!(codes(&diags), ["acknowledgement-unused"]);
    assert!(diags[0].message.contains("names route `GET /gone`, which the spec does not have"));
}

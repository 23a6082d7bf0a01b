//! One route set: the Pulumi program, the OpenAPI documents and each router crate agree, and a
//! route dropped or re-targeted in any one of them is caught.

use std::path::Path;

use specgen::render::File;
use specgen::routeset::{check_route_sets, openapi_routes, pulumi_routes, router_routes};
use specgen::run::compile;

fn wikibot() -> (specgen::model::Model, Vec<File>) {
    let c = compile(Path::new("specs/wikibot.yaml"));
    (c.model.unwrap(), c.files)
}

fn text(files: &[File], path: &str) -> String {
    let file = files.iter().find(|f| f.path == Path::new(path)).unwrap_or_else(|| panic!("{path}"));
    String::from_utf8(file.bytes.clone()).unwrap()
}

fn replace(files: &mut [File], path: &str, from: &str, to: &str) {
    let file = files.iter_mut().find(|f| f.path == Path::new(path)).unwrap();
    let old = String::from_utf8(file.bytes.clone()).unwrap();
    assert!(old.contains(from), "{path} does not contain {from:?}");
    file.bytes = old.replacen(from, to, 1).into_bytes();
}

fn messages(model: &specgen::model::Model, files: &[File]) -> Vec<String> {
    check_route_sets(model, files).sorted().into_iter().map(|d| d.message).collect()
}

#[test]
fn every_output_holds_the_same_routes() {
    let (model, files) = wikibot();
    let pulumi = pulumi_routes(&text(&files, "wikibot/__main__.py"), &model);
    let openapi = openapi_routes(&text(&files, "wikibot/openapi.dev.json"));
    assert!(pulumi.len() > 10, "{pulumi:?}");
    assert_eq!(pulumi, openapi);
    assert!(pulumi.contains(&("$default".into(), "wiki".into())));
    let router = router_routes(&text(&files, "wikibot/wikibot-mcp-router/src/spec.rs"), "mcp");
    let mcp: std::collections::BTreeSet<_> =
        pulumi.into_iter().filter(|(_, b)| b == "mcp").collect();
    assert_eq!(router, mcp);
    assert!(messages(&model, &files).is_empty());
}

#[test]
fn a_route_missing_from_the_pulumi_program_is_caught() {
    let (model, mut files) = wikibot();
    replace(
        &mut files,
        "wikibot/__main__.py",
        "route_key=\"ANY /.well-known/oauth-authorization-server\",",
        "",
    );
    let found = messages(&model, &files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("lacks route `ANY /.well-known/oauth-authorization-server`"));
}

#[test]
fn a_route_sent_to_another_backend_in_openapi_is_caught() {
    let (model, mut files) = wikibot();
    replace(
        &mut files,
        "wikibot/openapi.dev.json",
        "\"$ref\": \"#/components/x-amazon-apigateway-integrations/mcp\"",
        "\"$ref\": \"#/components/x-amazon-apigateway-integrations/wiki\"",
    );
    let found = messages(&model, &files);
    assert!(
        found.iter().any(|m| m.contains("to backend `wiki`, which the spec does not")),
        "{found:?}"
    );
}

#[test]
fn a_router_arm_missing_is_caught() {
    let (model, mut files) = wikibot();
    replace(
        &mut files,
        "wikibot/wikibot-mcp-router/src/spec.rs",
        "key: \"ANY /mcp\",",
        "key: \"ANY /elsewhere\",",
    );
    let found = messages(&model, &files);
    assert!(found.iter().any(|m| m.contains("lacks route `ANY /mcp`")), "{found:?}");
    assert!(found.iter().any(|m| m.contains("has route `ANY /elsewhere`")), "{found:?}");
}

//! `specgen explain`: snapshots of what it prints for requests on the bundled specs, in both
//! formats, and the command-line contract (exit codes, a spec that fails `check`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use specgen::explain::{self, Report, Request};

fn explain(spec: &str, method: &str, url: &str, env: Option<&str>) -> Report {
    let request = Request {
        spec: PathBuf::from(spec),
        method: method.into(),
        url: url.into(),
        env: env.map(Into::into),
    };
    explain::run(&request)
}

/// Snapshots the human and the JSON form of one explanation, named after the request.
fn snapshot(spec: &str, method: &str, url: &str, env: Option<&str>) {
    let report = explain(spec, method, url, env);
    assert_eq!(report.exit, 0, "{method} {url}: {:?} {:?}", report.error, report.diagnostics);
    let explanation = report.explanation.expect("an explanation");
    let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().into_owned();
    let slug: String = format!("{method} {url}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
        .collect();
    let env_arg = env.map(|e| format!(" --env {e}")).unwrap_or_default();
    insta::with_settings!({
        description => format!("specgen explain {spec} {method} {url}{env_arg}"),
        omit_expression => true,
        snapshot_suffix => format!("{stem}@{slug}"),
    }, {
        insta::assert_snapshot!("human", explain::render_human(&explanation));
        insta::assert_snapshot!("json", explain::render_json(&explanation));
    });
}

#[test]
fn wikibot_requests() {
    let spec = "specs/wikibot.yaml";
    snapshot(spec, "GET", "/.well-known/oauth-authorization-server", None);
    snapshot(spec, "POST", "https://dev.wikibot.io/mcp", None);
    snapshot(spec, "OPTIONS", "/mcp/sse", None);
    snapshot(spec, "HEAD", "/.well-known/oauth-protected-resource/mcp", Some("dev"));
    snapshot(spec, "GET", "/mcp/.well-known/openid-configuration/x", None);
    snapshot(spec, "GET", "/mcp/", None);
    snapshot(spec, "POST", "/token?grant_type=x", None);
    snapshot(spec, "GET", "/Home", None);
}

#[test]
fn wikibot_fastmcp_requests() {
    let spec = "specs/wikibot-fastmcp.yaml";
    snapshot(spec, "GET", "https://wikibot.io/.well-known/oauth-protected-resource/mcp", None);
    snapshot(spec, "POST", "/api/pages/Home", None);
    snapshot(spec, "GET", "/authorize", Some("prod"));
}

#[test]
fn the_gateway_404_is_an_answer() {
    snapshot(
        "tests/fixtures/invalid/named-stage.yaml",
        "GET",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/.well-known/oauth-protected-resource",
        None,
    );
    let report = explain("tests/fixtures/explain/no-default.yaml", "GET", "/Home", None);
    let explanation = report.explanation.expect("an explanation");
    assert!(explanation.route.is_none());
    assert_eq!(explanation.answer.status, Some(404));
    assert!(explain::render_human(&explanation).contains(r#"{"message":"Not Found"}"#));
}

#[test]
fn a_hand_written_bearer_route_at_the_mount_is_the_routers_mcp_endpoint() {
    let report = explain("tests/fixtures/invalid/discovery-off.yaml", "POST", "/mcp", None);
    let explanation = report.explanation.expect("an explanation");
    assert_eq!(explanation.route.as_ref().unwrap().key, "ANY /mcp");
    assert_eq!(explanation.answer.status, Some(401));
    assert!(explanation.disagreements.is_empty(), "{:?}", explanation.disagreements);
}

#[test]
fn bare_paths_take_the_first_deployed_environment_and_urls_their_origin() {
    let spec = "specs/wikibot-fastmcp.yaml";
    let bare = explain(spec, "GET", "/x", None).explanation.unwrap();
    assert_eq!(bare.environment.name, "dev");
    let prod = explain(spec, "GET", "https://wikibot.io/x", None).explanation.unwrap();
    assert_eq!(prod.environment.name, "prod");
    // A default port and an uppercase host still name the origin.
    let prod = explain(spec, "GET", "https://WIKIBOT.io:443/x", None).explanation.unwrap();
    assert_eq!(prod.environment.name, "prod");
    // Percent escapes are decoded, as API Gateway hands the path on.
    let decoded = explain(spec, "GET", "/a%20b", None).explanation.unwrap();
    assert_eq!(decoded.request.path, "/a b");
}

fn specgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_specgen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn done_when_the_legacy_url_reaches_mcp_and_without_discovery_routes_default() {
    let url = "/.well-known/oauth-authorization-server";
    let out = specgen(&["explain", "specs/wikibot.yaml", "GET", url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("route        `ANY /.well-known/oauth-authorization-server`"), "{text}");
    assert!(text.contains("backend      mcp,"), "{text}");

    // Explain describes a spec that `check` refuses: it explains, it does not judge.
    let off = "tests/fixtures/invalid/discovery-off.yaml";
    let out = specgen(&["explain", off, "GET", url, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["route"]["key"], "$default");
    assert_eq!(json["backend"], "wiki");
    assert_eq!(specgen(&["check", off]).status.code(), Some(1));
}

#[test]
fn exit_codes() {
    let wikibot = "specs/wikibot.yaml";
    for (args, code, says) in [
        (vec!["get", "/x"], 64, "methods are uppercase"),
        (vec!["ANY", "/x"], 64, "route-key word"),
        (vec!["GET", "x"], 64, "neither an absolute URL nor a path"),
        (vec!["GET", "https://wikibot.io/x"], 64, "the spec's origins: https://dev.wikibot.io"),
        (vec!["GET", "/x", "--env", "prod"], 64, "environment `prod` is not defined"),
        (vec!["GET", "/a%2"], 64, "two hex digits"),
    ] {
        let mut all = vec!["explain", wikibot];
        all.extend(args.iter());
        let out = specgen(&all);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }

    let invalid = specgen(&["explain", "tests/fixtures/invalid/unknown-field.yaml", "GET", "/"]);
    assert_eq!(invalid.status.code(), Some(1));
    assert!(stderr(&invalid).contains("error[spec-syntax]"), "{}", stderr(&invalid));
    assert!(stdout(&invalid).is_empty());

    let missing = specgen(&["explain", "specs/nope.yaml", "GET", "/"]);
    assert_eq!(missing.status.code(), Some(74));
}

#[test]
fn a_token_in_the_query_string_is_the_routers_400() {
    let answer =
        |url: &str| explain("specs/wikibot.yaml", "POST", url, None).explanation.unwrap().answer;
    assert_eq!(answer("/mcp?access_token=x").status, Some(400));
    assert_eq!(answer("/mcp?a=1&%61ccess_token=x").status, Some(400));
    // Only the parameter's name counts, and route selection ignores the query either way.
    assert_eq!(answer("/mcp?x=access_token").status, Some(401));
}

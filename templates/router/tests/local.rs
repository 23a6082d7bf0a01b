//! Local mode, over real HTTP on 127.0.0.1: the whole discovery sequence a client walks
//! (section 4 of the OAuth discovery contract), then an authorised call, and the refusal of
//! non-loopback addresses.

mod support;

use support::router;

use std::net::SocketAddr;

use router::model::{Arm, Endpoint};
use router::{serve_local, serve_local_listener, spec};
use serde_json::Value;
use support::{AuthorizationServer, Recorder, environment, route, routes, rs256, valid_claims};
use tokio::net::TcpListener;

/// More connections than any test here makes; the server stops after that many.
const MAX_CONNECTIONS: usize = 64;

/// A router for the first environment served on 127.0.0.1 on a free port; its base URL.
async fn start(recorder: &Recorder, server: &AuthorizationServer) -> String {
    let router = support::new_router(recorder, server);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve_local_listener(listener, router, Some(MAX_CONNECTIONS)));
    format!("http://{address}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The origin of an URL: scheme and authority.
fn origin(url: &str) -> &str {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    &url[..scheme.len() + 3 + authority.len()]
}

/// A public URL on the MCP origin, as the local server serves it.
fn local(base: &str, public_url: &str) -> String {
    let resource_url = environment().resources[0].resource_url;
    let public_origin = origin(resource_url);
    let path = public_url.strip_prefix(public_origin).expect("a URL on the MCP origin");
    format!("{base}{path}")
}

/// RFC 9728 / RFC 8414 path insertion: `/.well-known/<name>` between the host and the path.
fn inserted(url: &str, name: &str) -> String {
    let origin = origin(url);
    let path = url[origin.len()..].trim_end_matches('/');
    format!("{origin}/.well-known/{name}{path}")
}

fn text_header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

/// The client side of section 4, items 1 to 9, in order, for the MCP URL of the first
/// resource. The public URLs of the spec are mapped onto the local server's origin.
#[tokio::test]
async fn a_client_walks_the_whole_discovery_sequence() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let base = start(&recorder, &server).await;
    let client = client();
    let mcp = route(Arm::McpEndpoint);
    let index = mcp.resource.unwrap();
    let published = &environment().resources[index];
    let resource_url = published.resource_url;

    // 1. POST to the MCP URL without a token: 401 with the challenge.
    let response = client.post(local(&base, resource_url)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = text_header(&response, "www-authenticate");
    assert_eq!(challenge, support::challenge(index, None));
    assert!(!challenge.contains("error="), "{challenge}");
    assert!(text_header(&response, "access-control-expose-headers").contains("WWW-Authenticate"));

    // 2. The resource_metadata URL from the challenge: on the MCP origin, and the document's
    //    `resource` is the URL called in step 1, byte for byte.
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(origin(&metadata_url), origin(resource_url));
    let response = client.get(local(&base, &metadata_url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(text_header(&response, "access-control-allow-origin"), "*");
    let prm_bytes = response.bytes().await.unwrap();
    let prm: Value = serde_json::from_slice(&prm_bytes).unwrap();
    assert_eq!(prm["resource"].as_str(), Some(resource_url));
    assert_eq!(prm["authorization_servers"][0].as_str(), Some(environment().issuer));
    assert_eq!(prm["bearer_methods_supported"], serde_json::json!(["header"]));

    // 3. The path-inserted PRM URL is the one the challenge named, with the same document.
    let prm_url = inserted(resource_url, "oauth-protected-resource");
    assert_eq!(prm_url, metadata_url);

    // 4. The appended probe serves the same document.
    let appended = format!("{resource_url}/.well-known/oauth-protected-resource");
    let response = client.get(local(&base, &appended)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), prm_bytes);

    // 5. The root fallback: the same document when the origin has one resource, else a 404.
    let root = format!(
        "{}{}/.well-known/oauth-protected-resource",
        origin(resource_url),
        environment().base_path
    );
    let response = client.get(local(&base, &root)).send().await.unwrap();
    if published.root_prm {
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.unwrap(), prm_bytes);
    } else {
        assert_eq!(response.status(), 404);
    }

    // 6. The AS metadata from authorization_servers[0], at its RFC 8414 inserted URL. It lives
    //    on the issuer, for which the test's authorization server stands in. When the issuer
    //    shares the MCP origin, the URL is this backend's only if the spec routes it here, and
    //    then it reaches the handler unguarded; otherwise another backend serves it.
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let as_metadata_url = inserted(issuer, "oauth-authorization-server");
    assert_eq!(as_metadata_url, environment().as_metadata_url);
    if origin(issuer) == origin(resource_url) {
        let path = &as_metadata_url[origin(issuer).len()..];
        let routed_here = routes(Arm::Unprotected).any(|r| r.key.ends_with(&format!(" {path}")));
        let calls = recorder.calls();
        let response = client.get(local(&base, &as_metadata_url)).send().await.unwrap();
        if routed_here {
            assert_eq!(response.status(), 200);
            assert_eq!(recorder.calls(), calls + 1);
        } else {
            assert_eq!(response.status(), 404);
            assert_eq!(recorder.calls(), calls);
        }
    } else {
        let response = client.get(server.metadata_url()).send().await.unwrap();
        let document: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(document["issuer"].as_str(), Some(issuer));
    }

    // 7. The legacy location on the MCP origin: the document byte for byte, never rewritten.
    let legacy = format!("{}/.well-known/oauth-authorization-server", origin(resource_url));
    let legacy = legacy.replacen(
        origin(resource_url),
        &format!("{}{}", origin(resource_url), environment().base_path),
        1,
    );
    let response = client.get(local(&base, &legacy)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(text_header(&response, "content-type"), "application/json");
    assert_eq!(text_header(&response, "access-control-allow-origin"), "*");
    assert_eq!(response.bytes().await.unwrap(), server.expected_document().as_bytes());

    // 8. The default endpoints: redirects to the authorization server when the spec routes
    //    them here; otherwise no route of this backend has them.
    for route in routes(Arm::DefaultEndpoint) {
        let (_, path) = route.key.split_once(' ').unwrap();
        let url = format!("{base}{}{path}?state=1", environment().base_path);
        let (response, status, target) = match route.endpoint.unwrap() {
            Endpoint::Authorize => (client.get(url), 302, "/oauth2/authorize"),
            Endpoint::Token => (client.post(url), 307, "/oauth2/token"),
            Endpoint::Register => (client.post(url), 307, "/oauth2/register"),
        };
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), status, "{}", route.key);
        assert_eq!(
            text_header(&response, "location"),
            format!("{}{target}?state=1", server.base())
        );
    }
    for path in ["/authorize", "/token", "/register"] {
        let routed = routes(Arm::DefaultEndpoint).any(|r| r.key.ends_with(&format!(" {path}")));
        if !routed {
            let url = format!("{base}{}{path}", environment().base_path);
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 404, "{path}");
        }
    }

    // 9. The probes seen in server logs: the AS metadata again, or a JSON 404 with CORS.
    let mount = spec::RESOURCES[index].mount;
    let here = format!("{}{}", origin(resource_url), environment().base_path);
    for (probe, found) in [
        (format!("/.well-known/oauth-authorization-server{mount}"), true),
        (format!("{mount}/.well-known/oauth-authorization-server"), true),
        (format!("/.well-known/openid-configuration{mount}"), false),
        (format!("{mount}/.well-known/openid-configuration"), false),
    ] {
        let response = client.get(local(&base, &format!("{here}{probe}"))).send().await.unwrap();
        assert_eq!(text_header(&response, "access-control-allow-origin"), "*", "{probe}");
        assert_eq!(text_header(&response, "content-type"), "application/json", "{probe}");
        if found {
            assert_eq!(response.status(), 200, "{probe}");
            let document = response.bytes().await.unwrap();
            assert_eq!(document, server.expected_document().as_bytes(), "{probe}");
        } else {
            assert_eq!(response.status(), 404, "{probe}");
            assert_eq!(response.bytes().await.unwrap(), br#"{"error":"not_found"}"#.as_slice());
        }
    }

    // With a token for the resource, the MCP URL reaches the handler.
    let calls = recorder.calls();
    let token = rs256(&valid_claims(index));
    let response = client
        .post(local(&base, resource_url))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "handled");
    assert_eq!(recorder.calls(), calls + 1);
    let seen = recorder.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, mount);
    assert_eq!(seen.claims.unwrap().subject(), Some("user-1"));
}

/// What API Gateway would not pass on, local mode does not either: paths no route matches get
/// API Gateway's own 404, and `rawPath` arrives decoded, so an escaped slash is a slash.
#[tokio::test]
async fn local_mode_routes_like_the_gateway() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let base = start(&recorder, &server).await;
    let client = client();
    let mount = spec::RESOURCES[route(Arm::McpEndpoint).resource.unwrap()].mount;
    let here = format!("{base}{}", environment().base_path);

    for path in ["/nothing-here".to_owned(), mount.to_uppercase(), format!("{mount}/")] {
        let response = client.get(format!("{here}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text().await.unwrap(), r#"{"message":"Not Found"}"#, "{path}");
    }

    let escaped =
        format!("{here}/.well-known/oauth-protected-resource{}", mount.replace('/', "%2F"));
    let response = client.get(escaped).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // Preflights need no token; the MCP endpoint without one is challenged.
    let response =
        client.request(reqwest::Method::OPTIONS, format!("{here}{mount}")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = client.get(format!("{here}{mount}/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn local_mode_refuses_addresses_that_are_not_loopback() {
    for address in ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0"] {
        let address: SocketAddr = address.parse().unwrap();
        let error = serve_local(address, Recorder::default()).await.unwrap_err();
        assert!(error.to_string().contains("loopback"), "{address}: {error}");
    }
}

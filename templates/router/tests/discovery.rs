//! The discovery answers: PRM at every URL the spec routes here, the issuer's metadata forwarded
//! byte for byte, JSON 404s, preflights, and the default endpoints' redirects.

mod support;

use support::router;

use router::model::{Arm, Endpoint};
use router::spec;
use serde_json::{Value, json};
use support::{AuthorizationServer, Event, Recorder, body, environment, header, route, routes};

/// The PRM that resource `index` must have in `environment`, built from the spec alone.
fn expected_prm(environment: &router::model::Environment, index: usize) -> Value {
    let mut document = json!({
        "resource": environment.resources[index].resource_url,
        "authorization_servers": [environment.issuer],
        "bearer_methods_supported": ["header"],
    });
    if !spec::SCOPES.is_empty() {
        document["scopes_supported"] = json!(spec::SCOPES);
    }
    if let Some(name) = spec::RESOURCES[index].name {
        document["resource_name"] = json!(name);
    }
    document
}

fn assert_discovery_headers(response: &lambda_http::Response<lambda_http::Body>) {
    assert_eq!(header(response, "content-type"), "application/json");
    assert_eq!(header(response, "access-control-allow-origin"), "*");
    assert!(header(response, "cache-control").starts_with("public, max-age="));
}

#[tokio::test]
async fn the_prm_is_served_at_every_path_inserted_and_appended_url() {
    let server = AuthorizationServer::start().await;
    for environment in spec::ENVIRONMENTS {
        let router = router::Router::builder(Recorder::default())
            .environment(environment.name)
            .loopback_authorization_server(server.metadata_url())
            .build()
            .unwrap();
        for route in routes(Arm::ProtectedResourceMetadata) {
            let index = route.resource.unwrap();
            let request = Event::fixture("custom-domain").route(route, "").request();
            let response = router.handle(request).await;

            assert_eq!(response.status(), 200, "{}", route.key);
            assert_discovery_headers(&response);
            let document: Value = serde_json::from_slice(body(&response)).unwrap();
            assert_eq!(document, expected_prm(environment, index), "{}", route.key);
            // Clients compare code points: the resource is the compiled-in URL, byte for byte.
            assert_eq!(
                document["resource"].as_str(),
                Some(environment.resources[index].resource_url)
            );
        }
    }
}

#[tokio::test]
async fn the_root_prm_describes_the_only_resource_or_is_not_found() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    for route in routes(Arm::RootProtectedResourceMetadata) {
        let index = route.resource.unwrap();
        let request = Event::fixture("custom-domain").route(route, "").request();
        let response = router.handle(request).await;
        if environment().resources[index].root_prm {
            assert_eq!(response.status(), 200);
            assert_discovery_headers(&response);
            let document: Value = serde_json::from_slice(body(&response)).unwrap();
            assert_eq!(document, expected_prm(environment(), index));
        } else {
            assert_eq!(response.status(), 404);
            assert_eq!(header(&response, "access-control-allow-origin"), "*");
        }
    }
}

#[tokio::test]
async fn the_prm_answers_head_and_preflight_and_refuses_other_methods() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    let event = Event::fixture("custom-domain").route(route(Arm::ProtectedResourceMetadata), "");

    let head = router.handle(event.clone().method("HEAD").request()).await;
    assert_eq!(head.status(), 200);
    assert_discovery_headers(&head);
    assert!(body(&head).is_empty());

    let preflight = router.handle(event.clone().method("OPTIONS").request()).await;
    assert_eq!(preflight.status(), 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert!(header(&preflight, "access-control-allow-methods").contains("GET"));
    assert!(header(&preflight, "access-control-allow-headers").contains("mcp-protocol-version"));

    let post = router.handle(event.method("POST").request()).await;
    assert_eq!(post.status(), 405);
    assert_eq!(header(&post, "allow"), "GET, HEAD, OPTIONS");
    assert_eq!(header(&post, "access-control-allow-origin"), "*");
}

/// Forwarded, the issuer's document comes through byte for byte and is fetched once; fixed by
/// the spec, the spec's document is served as written and nothing is fetched.
#[tokio::test]
async fn the_authorization_server_metadata_is_served_byte_for_byte_and_cached() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    for route in routes(Arm::AuthorizationServerMetadata) {
        for _ in 0..3 {
            let request = Event::fixture("custom-domain").route(route, "").request();
            let response = router.handle(request).await;
            assert_eq!(response.status(), 200);
            assert_discovery_headers(&response);
            assert_eq!(body(&response), server.expected_document().as_bytes());
        }
    }
    let routed = routes(Arm::AuthorizationServerMetadata).next().is_some();
    let expected_fetches = usize::from(routed && spec::AS_METADATA_DOCUMENT.is_none());
    assert_eq!(server.hits(support::METADATA_PATH), expected_fetches);
}

/// A fixed document is served even when the issuer is down: it is never fetched.
#[tokio::test]
async fn an_unreachable_authorization_server_is_a_json_502_unless_the_document_is_fixed() {
    let failing = AuthorizationServer::start_with(500).await;
    let router = support::new_router(&Recorder::default(), &failing);
    for route in routes(Arm::AuthorizationServerMetadata) {
        if let Some(document) = spec::AS_METADATA_DOCUMENT {
            let request = Event::fixture("custom-domain").route(route, "").request();
            let response = router.handle(request).await;
            assert_eq!(response.status(), 200);
            assert_eq!(body(&response), document.as_bytes());
            continue;
        }
        let request = Event::fixture("custom-domain").route(route, "").request();
        let response = router.handle(request).await;
        assert_eq!(response.status(), 502);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        let document: Value = serde_json::from_slice(body(&response)).unwrap();
        assert_eq!(document["error"], "authorization_server_unavailable");
    }
}

#[tokio::test]
async fn other_well_known_paths_are_json_404s_with_cors() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    let mut events: Vec<Event> = routes(Arm::WellKnownNotFound)
        .map(|route| Event::fixture("custom-domain").route(route, ""))
        .collect();
    // Well-known paths below the MCP endpoint are not found either, token or not.
    let subtree = route(Arm::McpSubtree);
    for remainder in [".well-known/oauth-protected-resource", "a/.well-known/openid-configuration"]
    {
        events.push(Event::fixture("default-stage").route(subtree, remainder));
        events.push(Event::fixture("default-stage").route(subtree, remainder).bearer("x"));
    }

    for event in events {
        let response = router.handle(event.clone().method("GET").request()).await;
        assert_eq!(response.status(), 404);
        assert_eq!(body(&response), br#"{"error":"not_found"}"#);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert_eq!(header(&response, "www-authenticate"), "");

        let preflight = router.handle(event.method("OPTIONS").request()).await;
        assert_eq!(preflight.status(), 204);
        assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    }
    assert_eq!(recorder.calls(), 0);
}

/// Only specs that ask for default endpoints have these routes.
#[tokio::test]
async fn default_endpoints_redirect_to_the_authorization_server() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    for route in routes(Arm::DefaultEndpoint) {
        let (method, status, path) = match route.endpoint.unwrap() {
            Endpoint::Authorize => ("GET", 302, "/oauth2/authorize"),
            Endpoint::Token => ("POST", 307, "/oauth2/token"),
            Endpoint::Register => ("POST", 307, "/oauth2/register"),
        };
        let request =
            Event::fixture("custom-domain").route(route, "").method(method).query("a=1&b=%20");
        let response = router.handle(request.request()).await;
        assert_eq!(response.status(), status, "{}", route.key);
        assert_eq!(header(&response, "location"), format!("{}{path}?a=1&b=%20", server.base()));
    }
}

//! The bearer guard on the MCP endpoint and its subtree: the challenge, token verification, the
//! preflight, and what reaches the handler.

mod support;

use support::router;

use jsonwebtoken::Algorithm;
use router::model::{Arm, Route};
use router::spec;
use serde_json::json;
use support::{
    AuthorizationServer, Event, Recorder, body, challenge, environment, header, now, route, rs256,
    valid_claims,
};

fn mcp() -> &'static Route {
    route(Arm::McpEndpoint)
}

fn resource() -> usize {
    mcp().resource.unwrap()
}

fn post(token: Option<&str>) -> Event {
    let event = Event::fixture("default-stage").route(mcp(), "").method("POST");
    match token {
        Some(token) => event.bearer(token),
        None => event,
    }
}

#[tokio::test]
async fn a_request_without_token_gets_the_exact_challenge() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    for route in [mcp(), route(Arm::McpSubtree)] {
        let event = Event::fixture("default-stage").route(route, "tools").method("POST");
        let response = router.handle(event.request()).await;
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "www-authenticate"), challenge(resource(), None));
        assert!(!header(&response, "www-authenticate").contains("error="));
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert!(header(&response, "access-control-expose-headers").contains("WWW-Authenticate"));
    }

    let expected = format!(
        "Bearer resource_metadata=\"{}\"{}",
        environment().resources[resource()].prm_url,
        if spec::SCOPES.is_empty() && spec::REQUIRED_SCOPES.is_empty() {
            String::new()
        } else {
            format!(", scope=\"{}\"", support::challenge_scope())
        }
    );
    assert_eq!(challenge(resource(), None), expected);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_claims() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    for token in [
        rs256(&valid_claims(resource())),
        support::sign(Algorithm::ES256, "test-ec", &valid_claims(resource())),
    ] {
        let response = router.handle(post(Some(&token)).query("x=1").request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body(&response), b"handled");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");

        let seen = recorder.last();
        assert_eq!(seen.method, "POST");
        let (_, mcp_path) = mcp().key.split_once(' ').unwrap();
        assert_eq!(seen.uri, format!("{mcp_path}?x=1"));
        let claims = seen.claims.expect("the claims are an extension");
        assert_eq!(claims.subject(), Some("user-1"));
        assert_eq!(claims.claims()["iss"], environment().issuer);
        for scope in spec::SCOPES {
            assert!(claims.has_scope(scope), "{scope}");
        }
    }
    assert_eq!(recorder.calls(), 2);
}

#[tokio::test]
async fn the_keys_are_fetched_once_and_cached() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    for _ in 0..3 {
        let token = rs256(&valid_claims(resource()));
        assert_eq!(router.handle(post(Some(&token)).request()).await.status(), 200);
    }
    assert_eq!(server.hits("/jwks"), 1);
    assert_eq!(server.hits(support::METADATA_PATH), 1);
}

/// Tokens with made-up `kid`s refetch the JWKS at most once per interval, so they cannot make
/// the router hammer the issuer. (`tests/attacks.rs` has the full table of bad tokens.)
#[tokio::test]
async fn unknown_kids_refetch_the_keys_at_most_once_per_interval() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    for kid in ["a", "b", "c", "d"] {
        let token = support::sign(Algorithm::RS256, kid, &valid_claims(resource()));
        let response = router.handle(post(Some(&token)).request()).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            header(&response, "www-authenticate"),
            challenge(resource(), Some("invalid_token"))
        );
    }
    assert_eq!(server.hits("/jwks"), 1);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn the_leeway_is_sixty_seconds_and_no_more() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    let mut claims = valid_claims(resource());
    claims["exp"] = json!(now() - 30);
    claims["nbf"] = json!(now() + 30);
    let response = router.handle(post(Some(&rs256(&claims))).request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.calls(), 1);
}

#[tokio::test]
async fn an_audience_list_containing_the_resource_is_accepted() {
    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    let mut claims = valid_claims(resource());
    let resource_url = environment().resources[resource()].resource_url;
    claims["aud"] = json!(["https://other.example", resource_url]);
    let response = router.handle(post(Some(&rs256(&claims))).request()).await;
    assert_eq!(response.status(), 200);
}

/// A spec without required scopes accepts a token with none; one with required scopes refuses
/// a token that lacks one with 403 `insufficient_scope`.
#[tokio::test]
async fn a_token_without_a_required_scope_is_forbidden() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    let mut claims = valid_claims(resource());
    claims["scope"] = json!("unrelated");
    let response = router.handle(post(Some(&rs256(&claims))).request()).await;
    if spec::REQUIRED_SCOPES.is_empty() {
        assert_eq!(response.status(), 200);
        assert_eq!(recorder.calls(), 1);
    } else {
        assert_eq!(response.status(), 403);
        assert_eq!(
            header(&response, "www-authenticate"),
            challenge(resource(), Some("insufficient_scope"))
        );
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn the_preflight_needs_no_token() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);

    for route in [mcp(), route(Arm::McpSubtree)] {
        let event = Event::fixture("default-stage").route(route, "x").method("OPTIONS");
        let response = router.handle(event.request()).await;
        assert_eq!(response.status(), 204);
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert!(header(&response, "access-control-allow-methods").contains("GET"));
        assert!(header(&response, "access-control-allow-methods").contains("POST"));
        assert_eq!(
            header(&response, "access-control-allow-headers"),
            "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id"
        );
        assert_eq!(
            header(&response, "access-control-expose-headers"),
            "WWW-Authenticate, mcp-session-id"
        );
        assert_eq!(header(&response, "www-authenticate"), "");
    }
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn the_mount_with_a_trailing_slash_is_served_like_the_mount() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    let subtree = route(Arm::McpSubtree);
    let (_, mcp_path) = mcp().key.split_once(' ').unwrap();

    let event = Event::fixture("default-stage").route(subtree, "").method("POST");
    assert_eq!(event.request().uri().path(), format!("{mcp_path}/"));

    let response = router.handle(event.request()).await;
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "www-authenticate"), challenge(resource(), None));

    let token = rs256(&valid_claims(resource()));
    let response = router.handle(event.bearer(&token).request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.last().uri, mcp_path);
}

#[tokio::test]
async fn subtree_paths_reach_the_handler_without_stage() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    let token = rs256(&valid_claims(resource()));
    let (_, mcp_path) = mcp().key.split_once(' ').unwrap();

    let event = Event::fixture("named-stage").route(route(Arm::McpSubtree), "a/b").bearer(&token);
    let response = router.handle(event.request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.last().uri, format!("{mcp_path}/a/b?trace=1"));
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_are_a_503_not_a_bad_token() {
    let failing = AuthorizationServer::start_with(500).await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &failing);
    let token = rs256(&valid_claims(resource()));
    let response = router.handle(post(Some(&token)).request()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    assert_eq!(recorder.calls(), 0);
}

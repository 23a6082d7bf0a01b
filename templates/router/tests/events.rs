//! The event fixtures, how the router reads the route API Gateway chose, and start-up checks.

mod support;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use router::model::Arm;
use router::{ConfigError, Router, select_environment, spec};
use support::{AuthorizationServer, Event, Recorder, body, header, route, router};

const FIXTURES: [&str; 4] = ["default-stage", "named-stage", "custom-domain", "jwt-authorizer"];

/// One fixture for each reading of `rawPath` that the reference leaves open, all for `ANY /mcp`:
/// a named stage behind a custom domain, kept in `rawPath` or not; a mapping key (`v1`), kept or
/// not; and the bare mapping key, which one report shows as an empty `rawPath`.
const READINGS: [&str; 5] = [
    "named-stage-custom-domain",
    "named-stage-custom-domain-stage-kept",
    "mapping-key-kept",
    "mapping-key-stripped",
    "mapping-key-bare",
];

#[test]
fn every_fixture_is_an_api_gateway_v2_event() {
    for name in FIXTURES.into_iter().chain(READINGS) {
        let text = support::fixture(&format!("events/{name}.json"));
        let event: ApiGatewayV2httpRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.version.as_deref(), Some("2.0"), "{name}");
        assert_eq!(event.route_key, event.request_context.route_key, "{name}");
    }
}

#[test]
fn the_fixtures_cover_stages_custom_domains_and_jwt_authorizers() {
    let read = |name: &str| {
        let text = support::fixture(&format!("events/{name}.json"));
        serde_json::from_str::<ApiGatewayV2httpRequest>(&text).unwrap()
    };

    let default_stage = read("default-stage");
    assert_eq!(default_stage.request_context.stage.as_deref(), Some("$default"));

    let named = read("named-stage");
    let stage = named.request_context.stage.clone().unwrap();
    assert_ne!(stage, "$default");
    assert!(named.raw_path.unwrap().starts_with(&format!("/{stage}/")));

    let custom = read("custom-domain");
    assert!(!custom.request_context.domain_name.unwrap().contains("execute-api"));

    let jwt = read("jwt-authorizer");
    assert!(jwt.request_context.authorizer.unwrap().jwt.is_some());
}

/// Each fixture, pointed at the MCP endpoint without a token, gets the challenge: the named
/// stage is stripped, and a gateway authorizer's claims are not taken as credentials.
#[tokio::test]
async fn every_fixture_reaches_the_guard() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    let mcp = route(Arm::McpEndpoint);

    for name in FIXTURES {
        let request = Event::fixture(name).route(mcp, "").method("POST").request();
        let response = router.handle(request).await;
        assert_eq!(response.status(), 401, "{name}");
        let index = mcp.resource.unwrap();
        assert_eq!(header(&response, "www-authenticate"), support::challenge(index, None));
    }
    assert_eq!(recorder.calls(), 0);
}

/// Under every reading, in every environment, the MCP endpoint reaches the guard, and a path
/// that is not the MCP endpoint's does not. The fixtures' `/mcp` stands for the mount, and
/// their `/v1` for the environment's base path. specgen refuses a non-empty mapping key for an
/// OAuth-protected API (the root discovery URLs could not reach it), so the base path is empty
/// in every spec it accepts; the unit tests of `dispatch` cover a non-empty one.
#[tokio::test]
async fn every_reading_of_raw_path_reaches_the_guard_in_every_environment() {
    let server = AuthorizationServer::start().await;
    let mcp = route(Arm::McpEndpoint);
    let index = mcp.resource.unwrap();
    let mount = spec::RESOURCES[index].mount;

    for environment in spec::ENVIRONMENTS {
        let recorder = Recorder::default();
        let router = Router::builder(recorder.clone())
            .environment(environment.name)
            .loopback_authorization_server(server.metadata_url())
            .build()
            .unwrap();
        for name in READINGS {
            let fixture = Event::fixture(name);
            let raw_path = fixture.raw_path_value();
            let raw_path = raw_path.replacen("/v1", environment.base_path, 1);
            let bare = raw_path.is_empty();
            let raw_path = raw_path.replacen("/mcp", mount, 1);
            let event = fixture.route_key(mcp.key).proxy(None).raw_path(&raw_path);
            let response = router.handle(event.request()).await;

            if bare {
                // `""` is read as `/`, which is not the MCP endpoint.
                assert_eq!(response.status(), 404, "{name} in {}", environment.name);
            } else {
                assert_eq!(response.status(), 401, "{name} in {}", environment.name);
                let expected = format!(
                    "Bearer resource_metadata=\"{}\"",
                    environment.resources[index].prm_url
                );
                let challenge = header(&response, "www-authenticate");
                assert!(challenge.starts_with(&expected), "{name}: {challenge}");
            }
        }
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn a_path_that_does_not_fit_the_route_key_is_not_found() {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    let mcp = route(Arm::McpEndpoint);
    let prm = route(Arm::ProtectedResourceMetadata);
    let (_, prm_path) = prm.key.split_once(' ').unwrap();
    let (_, mcp_path) = mcp.key.split_once(' ').unwrap();

    let misfits = [
        // The PRM path under the MCP route key: a router matching "ends with /mcp" would guard it.
        Event::fixture("default-stage").route(mcp, "").raw_path(prm_path),
        Event::fixture("default-stage").route(mcp, "").raw_path(&format!("/other{mcp_path}")),
        Event::fixture("default-stage").route(mcp, "").raw_path(&format!("{mcp_path}x")),
        Event::fixture("default-stage").route(mcp, "").raw_path(""),
        // The MCP path under a PRM route key.
        Event::fixture("default-stage").route(prm, "").raw_path(mcp_path),
        // A named stage that is not the one in the path.
        Event::fixture("named-stage").route(mcp, "").raw_path(&format!("/other{mcp_path}")),
        // A route key that is not this backend's.
        Event::fixture("default-stage").route(mcp, "").route_key("ANY /elsewhere"),
        Event::fixture("default-stage").route(mcp, "").route_key("$default"),
    ];
    for event in misfits {
        let response = router.handle(event.bearer("x").request()).await;
        assert_eq!(response.status(), 404);
        assert_eq!(body(&response), br#"{"error":"not_found"}"#);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
    }
    assert_eq!(recorder.calls(), 0);
}

#[test]
fn a_missing_environment_is_refused_with_the_known_names() {
    let error = select_environment(None).unwrap_err();
    assert!(matches!(error, ConfigError::MissingEnvironment));
    let message = error.to_string();
    assert!(message.starts_with(&format!("{} is not set", spec::ENV_VAR)), "{message}");
    for environment in spec::ENVIRONMENTS {
        assert!(message.contains(environment.name), "{message}");
    }
}

#[test]
fn an_unknown_environment_is_refused_with_the_known_names() {
    let result = Router::builder(Recorder::default()).environment("no-such-environment").build();
    let Err(error) = result else { panic!("an unknown environment was accepted") };
    assert!(matches!(error, ConfigError::UnknownEnvironment(_)));
    let message = error.to_string();
    assert!(message.contains(spec::ENV_VAR), "{message}");
    assert!(message.contains("\"no-such-environment\""), "{message}");
    for environment in spec::ENVIRONMENTS {
        assert!(message.contains(environment.name), "{message}");
    }
}

#[test]
fn every_environment_can_be_served() {
    for environment in spec::ENVIRONMENTS {
        let router = Router::builder(Recorder::default()).environment(environment.name).build();
        assert_eq!(router.unwrap().environment().name, environment.name);
    }
}

#[test]
fn only_loopback_authorization_servers_are_accepted_for_tests() {
    let environment = support::environment().name;
    for url in [
        "https://example.com/.well-known/oauth-authorization-server",
        "http://example.com:8080/",
        "http://10.0.0.1:8080/",
        "http://127.0.0.1/",
        "http://127.0.0.1:8080@example.com/",
    ] {
        let result = Router::builder(Recorder::default())
            .environment(environment)
            .loopback_authorization_server(url)
            .build();
        assert!(matches!(result, Err(ConfigError::NotLoopback(_))), "{url}");
    }
    for url in ["http://127.0.0.1:1/", "http://localhost:1/", "http://[::1]:1/"] {
        let result = Router::builder(Recorder::default())
            .environment(environment)
            .loopback_authorization_server(url)
            .build();
        assert!(result.is_ok(), "{url}");
    }
}

/// lambda_http drives the router as a `tower::Service`; the same answer comes out that way.
#[tokio::test]
async fn the_router_is_a_tower_service() {
    use tower::ServiceExt;

    let server = AuthorizationServer::start().await;
    let router = support::new_router(&Recorder::default(), &server);
    let request = Event::fixture("default-stage").route(route(Arm::McpEndpoint), "").request();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);
}

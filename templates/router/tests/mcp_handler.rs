//! A real MCP server (rmcp's streamable HTTP service) behind the router: a verified request
//! reaches it and its JSON answer comes back through API Gateway's buffered response.

mod support;

use std::sync::Arc;

use rmcp::ServerHandler;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use support::router::Router;
use support::router::model::Arm;
use support::{AuthorizationServer, Event, body, environment, header, route, rs256, valid_claims};

#[derive(Clone)]
struct Minimal;

impl ServerHandler for Minimal {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::test]
async fn an_rmcp_server_answers_initialize_through_the_router() {
    let server = AuthorizationServer::start().await;
    let mcp = route(Arm::McpEndpoint);
    let resource_url = environment().resources[mcp.resource.unwrap()].resource_url;
    let host = resource_url.split('/').nth(2).unwrap();

    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts([host]);
    let service = StreamableHttpService::new(
        || Ok(Minimal),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let router = Router::builder(service)
        .environment(environment().name)
        .loopback_authorization_server(server.metadata_url())
        .build()
        .unwrap();

    let initialize = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}
        }
    });
    let mut event = Event::fixture("default-stage")
        .route(mcp, "")
        .method("POST")
        .header("host", host)
        .bearer(&rs256(&valid_claims(mcp.resource.unwrap())));
    event = event.body(&initialize.to_string());
    let response = router.handle(event.request()).await;

    assert_eq!(response.status(), 200, "{}", String::from_utf8_lossy(body(&response)));
    assert!(header(&response, "content-type").starts_with("application/json"));
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    let answer: Value = serde_json::from_slice(body(&response)).unwrap();
    assert_eq!(answer["id"], 1);
    assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
}

//! A small MCP server behind the generated router, built with rmcp's streamable HTTP service.
//! It has one tool, `whoami`, which answers with the subject and scopes of the caller's token.
//! The router serves the OAuth discovery documents and checks the bearer token before any
//! request reaches it.
//!
//! On Lambda, set the environment variable named by `spec::ENV_VAR` to one of the spec's
//! environments; the README says how to build the binary. With `--local 127.0.0.1:PORT` it
//! serves the same router over HTTP on that loopback address instead, for development.

mod this_crate;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use this_crate::router::{self, VerifiedClaims, spec};

#[derive(Clone)]
struct WhoAmI;

impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().build();
        let implementation = Implementation::new(spec::CRATE_NAME, env!("CARGO_PKG_VERSION"));
        ServerConfig::new(capabilities).with_server_info(implementation)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut schema = serde_json::Map::new();
        schema.insert("type".to_owned(), "object".into());
        let tool = Tool::new("whoami", "The subject and scopes of the caller's token", schema);
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "whoami" {
            return Err(ErrorData::invalid_params(format!("no tool {:?}", request.name), None));
        }

        // rmcp hands the HTTP request's parts to the tool; the router put the claims there.
        let claims = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<VerifiedClaims>());
        let text = match claims {
            Some(claims) => format!(
                "subject {}, scopes {}",
                claims.subject().unwrap_or("(none)"),
                claims.scopes().join(" ")
            ),
            None => "no verified claims".to_owned(),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// The hosts of the compiled-in resource URLs: the only `Host` values rmcp should accept.
fn public_hosts() -> Vec<String> {
    let hosts = spec::ENVIRONMENTS.iter().flat_map(|environment| environment.resources);
    let hosts = hosts.filter_map(|resource| resource.resource_url.split_once("://"));
    hosts.map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_owned()).collect()
}

/// The address after `--local`, when the example runs locally; `Err` for arguments it does not
/// know.
fn local_address() -> Result<Option<std::net::SocketAddr>, router::Error> {
    let mut arguments = std::env::args().skip(1);
    match (arguments.next().as_deref(), arguments.next(), arguments.next()) {
        (None, _, _) => Ok(None),
        (Some("--local"), Some(address), None) => Ok(Some(address.parse()?)),
        _ => Err("usage: mcp_server [--local 127.0.0.1:PORT]".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), router::Error> {
    let local = local_address()?;
    let mut hosts = public_hosts();
    // Locally, clients call the loopback address itself.
    hosts.extend(local.map(|address| address.to_string()));

    // Lambda answers one request per invocation and buffers the answer, so the server is
    // stateless and answers plain JSON rather than an event stream.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts);
    let sessions = Arc::new(NeverSessionManager::default());
    let service = StreamableHttpService::new(|| Ok(WhoAmI), sessions, config);
    match local {
        Some(address) => router::serve_local(address, service).await,
        None => router::run(service).await,
    }
}

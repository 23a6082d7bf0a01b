//! The router: from the route API Gateway chose to the arm that answers it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tower::{Service, ServiceExt};

use crate::auth::{self, Credentials, TokenError};
use crate::config::{self, ConfigError};
use crate::discovery;
use crate::model::{Arm, Environment, Route};
use crate::respond::{self, Refusal};
use crate::spec;
use crate::upstream::{AuthorizationServer, UrlPolicy};
use crate::{Error, VerifiedClaims};

/// The Lambda router for this backend, in front of the consumer's `handler`.
///
/// It is a `tower::Service<lambda_http::Request>` that never fails: every problem is answered
/// with a status code. Build one with [`Router::builder`].
#[derive(Clone)]
pub struct Router<S> {
    shared: Arc<Shared>,
    handler: S,
}

struct Shared {
    environment: &'static Environment,
    authorization_server: AuthorizationServer,
    /// The `scope` parameter of every challenge: the published scopes, then any required scope
    /// that is not published.
    challenge_scope: String,
}

/// Configures a [`Router`].
pub struct RouterBuilder<S> {
    handler: S,
    environment: Option<String>,
    loopback_metadata_url: Option<String>,
}

impl<S> Router<S> {
    /// A builder for a router in front of `handler`, serving the environment named by the
    /// variable `spec::ENV_VAR` unless [`RouterBuilder::environment`] names another.
    pub fn builder(handler: S) -> RouterBuilder<S> {
        let environment =
            std::env::var_os(spec::ENV_VAR).map(|value| value.to_string_lossy().into_owned());
        RouterBuilder { handler, environment, loopback_metadata_url: None }
    }

    /// The environment this router serves.
    pub fn environment(&self) -> &'static Environment {
        self.shared.environment
    }
}

impl<S> RouterBuilder<S> {
    /// Serves the environment called `name` instead of the one the variable names.
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// For tests: fetches the authorization server metadata from `url`, and the JWKS and
    /// endpoints it names, instead of the compiled-in issuer. Only `http://` URLs on
    /// 127.0.0.1, localhost or [::1] with a port are accepted, and then only such URLs are
    /// fetched or redirected to; tokens must still carry the compiled-in issuer.
    pub fn loopback_authorization_server(mut self, metadata_url: impl Into<String>) -> Self {
        self.loopback_metadata_url = Some(metadata_url.into());
        self
    }

    pub fn build(self) -> Result<Router<S>, ConfigError> {
        let environment = config::select_environment(self.environment.as_deref())?;
        config::check_tables()?;
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(ConfigError::NoCryptoProvider);
        }

        // A fixed metadata document is what the router serves in every case; without a test
        // server it also names the keys and endpoints, so the issuer's own is never fetched.
        let fixed = spec::AS_METADATA_DOCUMENT;
        let authorization_server = match &self.loopback_metadata_url {
            Some(url) => {
                config::check_loopback(url)?;
                AuthorizationServer::new(url, UrlPolicy::Loopback, fixed, false)?
            }
            // A local environment's issuer is itself on loopback, over plain http.
            None if config::is_loopback_http(environment.as_metadata_url) => {
                let url = environment.as_metadata_url;
                AuthorizationServer::new(url, UrlPolicy::Loopback, fixed, true)?
            }
            None => {
                let url = environment.as_metadata_url;
                AuthorizationServer::new(url, UrlPolicy::Https, fixed, true)?
            }
        };

        let mut scopes: Vec<&str> = spec::SCOPES.to_vec();
        scopes.extend(spec::REQUIRED_SCOPES.iter().filter(|s| !spec::SCOPES.contains(s)));

        tracing::info!(
            spec = spec::SOURCE,
            spec_sha256 = spec::SPEC_SHA256,
            identity_sha256 = spec::IDENTITY_SHA256,
            environment = environment.name,
            "router configured"
        );
        let shared =
            Shared { environment, authorization_server, challenge_scope: scopes.join(" ") };
        Ok(Router { shared: Arc::new(shared), handler: self.handler })
    }
}

/// A request matched to one of the backend's routes.
struct Target {
    route: &'static Route,
    /// The path of the request without stage or base path, as the route key spells it.
    path: String,
}

impl<S, B> Router<S>
where
    S: Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    /// Answers one request. API Gateway events become requests with
    /// `lambda_http::request::from_str`.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        self.clone().respond(request).await
    }

    pub(crate) async fn respond(self, request: Request) -> Response<Body> {
        // The handler is moved, never borrowed, across awaits: it need not be `Sync`.
        let Router { shared, handler } = self;
        let Some(target) = resolve(&request, shared.environment) else {
            return respond::not_found();
        };
        let environment = shared.environment;
        let server = &shared.authorization_server;
        let method = request.method().clone();

        match target.route.arm {
            Arm::McpEndpoint | Arm::McpSubtree => guard(&shared, handler, request, target).await,
            Arm::ProtectedResourceMetadata => match target.route.resource {
                Some(index) => discovery::protected_resource_metadata(&method, environment, index),
                None => respond::not_found(),
            },
            Arm::RootProtectedResourceMetadata => {
                let published = target.route.resource.and_then(|i| environment.resources.get(i));
                match (target.route.resource, published) {
                    (Some(index), Some(resource)) if resource.root_prm => {
                        discovery::protected_resource_metadata(&method, environment, index)
                    }
                    _ => discovery::well_known_not_found(&method),
                }
            }
            Arm::AuthorizationServerMetadata => {
                discovery::authorization_server_metadata(&method, server).await
            }
            Arm::WellKnownNotFound => discovery::well_known_not_found(&method),
            Arm::DefaultEndpoint => match target.route.endpoint {
                Some(endpoint) => {
                    let query = request.uri().query();
                    discovery::default_endpoint(&method, endpoint, query, server).await
                }
                None => respond::not_found(),
            },
            Arm::Unprotected => call_handler(handler, request, &target.path, None).await,
        }
    }
}

/// The MCP endpoint and its subtree: preflights pass, well-known paths below the mount get a
/// JSON 404, everything else needs a valid bearer token.
async fn guard<S, B>(
    shared: &Shared,
    handler: S,
    request: Request,
    target: Target,
) -> Response<Body>
where
    S: Service<Request, Response = http::Response<B>>,
    S::Error: Into<Error>,
    B: http_body::Body,
    B::Error: Into<Error>,
{
    let environment = shared.environment;
    let Some(index) = target.route.resource else {
        return respond::not_found();
    };
    let (Some(published), Some(resource)) =
        (environment.resources.get(index), spec::RESOURCES.get(index))
    else {
        return respond::not_found();
    };

    let below_mount = target.path.strip_prefix(resource.mount).unwrap_or("");
    if below_mount.split('/').any(|segment| segment == ".well-known") {
        return discovery::well_known_not_found(request.method());
    }
    if request.method() == Method::OPTIONS {
        return respond::mcp_preflight();
    }

    let scope = shared.challenge_scope.as_str();
    let refuse = |refusal| respond::refusal(refusal, published.prm_url, scope);
    // Tokens travel in the Authorization header only (`bearer_methods_supported`). A token in
    // the query string ends up in logs; RFC 6750 lets a server refuse it as malformed.
    if auth::has_query_token(request.uri().query()) {
        return refuse(Refusal::InvalidRequest);
    }
    let verified = match auth::credentials(request.headers()) {
        Credentials::Missing => return refuse(Refusal::NoToken),
        Credentials::Malformed => return refuse(Refusal::InvalidRequest),
        Credentials::Bearer(token) => {
            let server = &shared.authorization_server;
            auth::verify(token, environment.issuer, published.resource_url, server).await
        }
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(TokenError::Invalid(reason)) => {
            tracing::info!(%reason, "refused a bearer token");
            return refuse(Refusal::InvalidToken);
        }
        Err(TokenError::Unavailable(error)) => {
            tracing::error!(%error, "cannot fetch the issuer's keys");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return respond::with_mcp_cors(respond::error(status, "temporarily_unavailable"));
        }
    };
    if !spec::REQUIRED_SCOPES.iter().all(|scope| claims.has_scope(scope)) {
        return refuse(Refusal::InsufficientScope);
    }

    // `/mcp/` is served as `/mcp`: the slash is no part of the resource URL.
    let trailing = format!("{}/", resource.mount);
    let path = if target.path == trailing { resource.mount } else { target.path.as_str() };
    let response = call_handler(handler, request, path, Some(claims)).await;
    respond::with_mcp_cors(response)
}

/// Hands `request` to the handler with its URI reduced to `path` and the query, and the claims
/// as an extension; buffers the handler's answer for API Gateway.
async fn call_handler<S, B>(
    handler: S,
    mut request: Request,
    path: &str,
    claims: Option<VerifiedClaims>,
) -> Response<Body>
where
    S: Service<Request, Response = http::Response<B>>,
    S::Error: Into<Error>,
    B: http_body::Body,
    B::Error: Into<Error>,
{
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    if let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) {
        *request.uri_mut() = Uri::from(path_and_query);
    }
    if let Some(claims) = claims {
        request.extensions_mut().insert(claims);
    }

    let response = match handler.oneshot(request).await {
        Ok(response) => response,
        Err(error) => {
            let error: Error = error.into();
            tracing::error!(%error, "the handler failed");
            return respond::error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let error: Error = error.into();
            tracing::error!(%error, "the handler's response body failed");
            return respond::error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(binary) => Body::Binary(binary.into_bytes()),
        }
    };
    Response::from_parts(parts, body)
}

impl<S, B> Service<Request> for Router<S>
where
    S: Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The handler's readiness is awaited per request, on a clone.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let router = self.clone();
        Box::pin(async move { Ok(router.respond(request).await) })
    }
}

/// Finds the route API Gateway chose and checks that the request's path fits it. `None` when
/// the route is not one of this backend's or the path does not fit (a misrouted or forged
/// event): such a request is answered 404, whatever its path ends with.
///
/// The reference leaves open what `rawPath` keeps (the named stage, the API mapping key) and
/// how API Gateway treats case, slashes and dots. The check takes every reading into account:
/// it strips what may be there, and then asks for the exact path the route key stands for, in
/// a clean form (no empty or dot segments, no encoded separators).
fn resolve(request: &Request, environment: &Environment) -> Option<Target> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return None;
    };
    let key = context.route_key.as_deref()?;
    let route = spec::ROUTES.iter().find(|route| route.key == key)?;

    // No arm of the router is on `$default`, so every route key has a method and a path.
    let (method, template) = key.split_once(' ')?;
    if method != "ANY" && method != request.method().as_str() {
        return None;
    }

    let expected = expand(template, request)?;
    let stage = context.stage.as_deref();
    let received = received_path(request.raw_http_path(), stage, environment.base_path);
    if !is_clean_path(&received) {
        return None;
    }
    // `/mcp/` is the MCP endpoint whichever route API Gateway chose for it: the subtree with an
    // empty remainder (checked by `expand`), or the endpoint itself if the gateway folds the
    // slash.
    let fits = received == expected
        || (route.arm == Arm::McpEndpoint && received.strip_suffix('/') == Some(&expected));
    fits.then_some(Target { route, path: expected })
}

/// The path of the request as the route key spells it: `rawPath` without the named stage
/// (API Gateway keeps it in `rawPath` on its own endpoint) and without the base path of the
/// public URLs (a mapping key that `rawPath` may keep), `/` when empty (an empty mapping key
/// can leave `rawPath` empty). Each prefix is stripped at most once, at a segment boundary.
pub(crate) fn received_path(raw_path: &str, stage: Option<&str>, base_path: &str) -> String {
    let mut path = raw_path;
    let stage = stage.filter(|stage| !stage.is_empty() && *stage != "$default");
    let stage_prefix = stage.map(|stage| format!("/{stage}"));
    if let Some(prefix) = &stage_prefix {
        path = strip_path_prefix(path, prefix);
    }
    if !base_path.is_empty() && stage_prefix.as_deref() != Some(base_path) {
        path = strip_path_prefix(path, base_path);
    }
    if path.is_empty() { "/".to_owned() } else { path.to_owned() }
}

/// The path a route template stands for, with `{name}` and `{name+}` replaced by the path
/// parameters API Gateway reported. A greedy parameter may be missing or empty (`/mcp/`); a
/// plain one must be there and be one segment.
fn expand(template: &str, request: &Request) -> Option<String> {
    let parameters = request.path_parameters_ref();
    let parameter = |name: &str| parameters.and_then(|p| p.first(name));

    let mut path = String::new();
    for (i, segment) in template.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) => path.push_str(parameter(greedy).unwrap_or("")),
                None => {
                    let value = parameter(name).filter(|v| !v.is_empty() && !v.contains('/'))?;
                    path.push_str(value);
                }
            },
            None => path.push_str(segment),
        }
    }
    Some(path)
}

/// `path` without `prefix` when the prefix ends at a segment boundary.
fn strip_path_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Whether a path is in the one form the router serves: absolute, no empty segment except a
/// final slash, no segment of dots or ending in a dot (which some servers fold away), no
/// backslash, control character or percent-encoded `/`, `\`, `.`, `%` or control character (API
/// Gateway decodes `rawPath`, so an escape left in it was escaped twice).
pub(crate) fn is_clean_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    segments.iter().enumerate().all(|(i, segment)| {
        if segment.is_empty() {
            return i == last && i > 0;
        }
        !segment.ends_with('.')
            && !segment.bytes().any(|b| b == b'\\' || b.is_ascii_control())
            && !has_suspicious_escape(segment)
    })
}

/// A `%XY` escape that decodes to a separator, a dot, a percent sign or a control character.
fn has_suspicious_escape(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.windows(3).any(|w| {
        let hex = |b: u8| (b as char).to_digit(16);
        match (w[0], hex(w[1]), hex(w[2])) {
            (b'%', Some(high), Some(low)) => {
                let decoded = (high * 16 + low) as u8;
                matches!(decoded, b'/' | b'\\' | b'.' | b'%') || decoded.is_ascii_control()
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_paths_are_served() {
        for clean in ["/", "/mcp", "/mcp/", "/mcp/a/b", "/mcp/a%20b", "/.well-known/x", "/a.b/c"] {
            assert!(is_clean_path(clean), "{clean}");
        }
        for unclean in [
            "",
            "mcp",
            "//mcp",
            "/mcp//x",
            "/mcp/.",
            "/mcp/..",
            "/mcp/...",
            "/mcp.",
            "/mcp/x.",
            "/mcp/a/../b",
            "/mcp%2F",
            "/mcp%2f",
            "/mcp/%2e%2e",
            "/mcp/%2E",
            "/mcp/%5c",
            "/mcp/%00",
            "/mcp/%25",
            "/mcp\\x",
            "/mcp/\u{7f}",
        ] {
            assert!(!is_clean_path(unclean), "{unclean:?}");
        }
    }

    #[test]
    fn stage_and_base_path_are_stripped_at_segment_boundaries() {
        assert_eq!(received_path("/mcp", Some("$default"), ""), "/mcp");
        assert_eq!(received_path("", Some("$default"), ""), "/");
        assert_eq!(received_path("/prod/mcp", Some("prod"), ""), "/mcp");
        assert_eq!(received_path("/prod", Some("prod"), ""), "/");
        assert_eq!(received_path("/production/mcp", Some("prod"), ""), "/production/mcp");
        assert_eq!(received_path("/v1/mcp", Some("$default"), "/v1"), "/mcp");
        assert_eq!(received_path("/mcp", Some("$default"), "/v1"), "/mcp");
        assert_eq!(received_path("/prod/mcp", Some("prod"), "/prod"), "/mcp");
        assert_eq!(received_path("/prod/prod/mcp", Some("prod"), "/prod"), "/prod/mcp");
        // A custom domain's mapping key, kept in `rawPath` or not, with a named stage or not.
        assert_eq!(received_path("/v1/mcp", Some("live"), "/v1"), "/mcp");
        assert_eq!(received_path("/live/v1/mcp", Some("live"), "/v1"), "/mcp");
        assert_eq!(received_path("/live/mcp", Some("live"), "/v1"), "/mcp");
        assert_eq!(received_path("/v1", Some("$default"), "/v1"), "/");
        assert_eq!(received_path("", Some("live"), "/v1"), "/");
        assert_eq!(received_path("/v1/v1/mcp", Some("$default"), "/v1"), "/v1/mcp");
        assert_eq!(received_path("/v10/mcp", Some("$default"), "/v1"), "/v10/mcp");
    }
}

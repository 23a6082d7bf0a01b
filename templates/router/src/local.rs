//! Local mode: the same router over plain HTTP on a loopback address, for development and tests.
//!
//! Each HTTP request becomes the API Gateway v2 event that API Gateway would send for it, and
//! goes through the same `lambda_http` conversion as on Lambda, so the router cannot tell the
//! two apart. The route key comes from matching the request against this crate's own route
//! table ([`spec::ROUTES`]) with API Gateway's precedence; a request that no route matches gets
//! API Gateway's `404 {"message":"Not Found"}`. `rawPath` is percent-decoded, as API Gateway
//! sends it.
//!
//! Local mode binds loopback addresses only. It answers one request per connection (no
//! keep-alive), so a bound on connections is a bound on requests.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request as HttpRequest, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::dispatch::Router;
use crate::model::{Environment, Route};
use crate::{Error, spec};

/// The largest request body local mode accepts: Lambda's limit on a synchronous invocation.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why local mode did not start.
#[derive(Debug)]
pub enum LocalError {
    /// The address is not a loopback address: local mode never listens on a network.
    NotLoopback(SocketAddr),
    /// The address could not be bound or read.
    Io(std::io::Error),
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalError::NotLoopback(address) => write!(
                f,
                "local mode listens on loopback addresses only (127.0.0.1, [::1]), not {address}"
            ),
            LocalError::Io(error) => write!(f, "local mode cannot listen: {error}"),
        }
    }
}

impl std::error::Error for LocalError {}

/// Serves a router in front of `handler` on `address`, which must be a loopback address, until
/// the process stops. The environment comes from the variable named by [`spec::ENV_VAR`], as
/// with [`crate::run`].
pub async fn serve_local<S, B>(address: SocketAddr, handler: S) -> Result<(), Error>
where
    S: tower::Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    if !address.ip().is_loopback() {
        return Err(LocalError::NotLoopback(address).into());
    }
    let router = Router::builder(handler).build()?;
    let listener = TcpListener::bind(address).await.map_err(LocalError::Io)?;
    let bound = listener.local_addr().map_err(LocalError::Io)?;
    tracing::info!(address = %bound, environment = router.environment().name, "serving locally");
    serve_local_listener(listener, router, None).await?;
    Ok(())
}

/// Serves `router` on a listener bound to a loopback address: at most `max_connections`
/// connections when given (each carries one request), then returns. Tests bind port 0 and
/// pass a bound.
pub async fn serve_local_listener<S, B>(
    listener: TcpListener,
    router: Router<S>,
    max_connections: Option<usize>,
) -> Result<(), LocalError>
where
    S: tower::Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    let address = listener.local_addr().map_err(LocalError::Io)?;
    if !address.ip().is_loopback() {
        return Err(LocalError::NotLoopback(address));
    }

    let mut accepted = 0usize;
    while max_connections.is_none_or(|max| accepted < max) {
        let (stream, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "local mode: accept failed");
                continue;
            }
        };
        accepted += 1;
        let router = router.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: HttpRequest<Incoming>| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(answer(router, request, peer).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "local mode: connection ended with an error");
            }
        });
    }
    Ok(())
}

/// One HTTP request through the router, as API Gateway would have delivered it.
async fn answer<S, B>(
    router: Router<S>,
    request: HttpRequest<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>>
where
    S: tower::Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let event = match event(&parts, &body, peer, router.environment()) {
        Ok(event) => event,
        Err(status) => return gateway_error(status, gateway_message(status)),
    };
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "local mode: the event does not convert");
            return gateway_error(StatusCode::BAD_REQUEST, "Bad Request");
        }
    };
    into_http(router.respond(request).await)
}

fn gateway_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Not Found",
        _ => "Bad Request",
    }
}

/// An answer in API Gateway's own shape, for requests that never reach the Lambda.
fn gateway_error(status: StatusCode, message: &str) -> http::Response<Full<Bytes>> {
    let body = json!({ "message": message }).to_string();
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn into_http(response: Response<Body>) -> http::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

/// The API Gateway v2 event for a request: a route from the crate's table, the path decoded,
/// the headers joined as API Gateway joins them. `Err` carries API Gateway's status for a
/// request it would not pass on: 404 when no route matches, 400 when the path is unreadable.
fn event(
    parts: &http::request::Parts,
    body: &Bytes,
    peer: SocketAddr,
    environment: &Environment,
) -> Result<Value, StatusCode> {
    let raw_path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| StatusCode::BAD_REQUEST)?
        .into_owned();

    // Requests through a custom domain skip stage selection and lose the mapping key; on the
    // API's own endpoint a named stage is the first segment. Either way the route table sees
    // the path without them, and `rawPath` keeps them, as API Gateway's own endpoint does.
    let (route_path, stage) = match (environment.mapping_key, environment.stage) {
        (None, stage) if stage != "$default" => (
            strip_segment_prefix(&raw_path, &format!("/{stage}")).ok_or(StatusCode::NOT_FOUND)?,
            stage,
        ),
        _ => (
            strip_segment_prefix(&raw_path, environment.base_path).unwrap_or(&raw_path),
            environment.stage,
        ),
    };
    let route_path = if route_path.is_empty() { "/" } else { route_path };
    let method = parts.method.as_str();
    let (route, parameters) = match_route(method, route_path).ok_or(StatusCode::NOT_FOUND)?;

    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values = joined(&parts.headers, name);
        if name == http::header::COOKIE {
            cookies.extend(values.split("; ").map(|c| Value::from(c.to_owned())));
        } else {
            headers.insert(name.as_str().to_owned(), Value::from(values));
        }
    }
    // lambda_http builds the request URI from `Host`; an unusable one is left out.
    if let Some(host) = headers.get("host").and_then(Value::as_str)
        && reqwest::Url::parse(&format!("http://{host}/")).is_err()
    {
        headers.remove("host");
    }

    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = Map::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), Value::from(value.into_owned()));
            }
        }
    }

    let (body, base64_encoded) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::from(text), false),
        Err(_) => (Value::from(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let user_agent = headers.get("user-agent").cloned().unwrap_or(Value::from(""));
    let parameters: Map<String, Value> =
        parameters.into_iter().map(|(name, value)| (name, Value::from(value))).collect();

    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": format!("local-{}", now.as_nanos()),
            "routeKey": route.key,
            "stage": stage,
            "time": "",
            "timeEpoch": now.as_millis() as u64,
        },
        "isBase64Encoded": base64_encoded,
    });
    if !parameters.is_empty() {
        event["pathParameters"] = Value::Object(parameters);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    Ok(event)
}

/// Every value of a header, joined with commas as API Gateway's payload 2.0 joins them.
fn joined(headers: &HeaderMap, name: &http::HeaderName) -> String {
    let values = headers.get_all(name).iter();
    let values: Vec<String> =
        values.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()).collect();
    if name == http::header::COOKIE { values.join("; ") } else { values.join(",") }
}

/// `path` without `prefix` when the prefix ends at a segment boundary; `Some(path)` for an
/// empty prefix.
fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The route API Gateway would choose among this crate's routes for `method` and `path`, with
/// the path parameters it would report. Precedence follows the reference: a route without a
/// greedy variable beats one with; among those, literal segments beat variables from the left;
/// among greedy routes the longer literal prefix wins; a method beats `ANY`. Matching is exact
/// and case-sensitive, and a greedy variable needs a non-empty remainder (the reference's
/// assumption), so `/mcp/` matches no route here.
pub(crate) fn match_route(method: &str, path: &str) -> Option<RouteMatch> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut best: Option<(Rank, RouteMatch)> = None;
    for route in spec::ROUTES {
        let Some((route_method, template)) = route.key.split_once(' ') else {
            continue;
        };
        if route_method != "ANY" && route_method != method {
            continue;
        }
        let Some((rank, parameters)) = fit(template, &segments) else {
            continue;
        };
        let rank = Rank { method: route_method != "ANY", ..rank };
        if best.as_ref().is_none_or(|(best_rank, _)| rank > *best_rank) {
            best = Some((rank, (route, parameters)));
        }
    }
    best.map(|(_, found)| found)
}

/// A route and the path parameters it reports, by name.
pub(crate) type RouteMatch = (&'static Route, Vec<(String, String)>);

/// How specific a matching route is; greater is more specific.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    not_greedy: bool,
    /// For each segment, whether the route has a literal there.
    literals: Vec<bool>,
    method: bool,
}

fn fit(template: &str, segments: &[&str]) -> Option<(Rank, Vec<(String, String)>)> {
    let parts: Vec<&str> = template.strip_prefix('/')?.split('/').collect();
    let mut parameters = Vec::new();
    let mut literals = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let variable = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
        match variable {
            Some(name) if name.ends_with('+') => {
                if i + 1 != parts.len() {
                    return None;
                }
                let remainder = segments.get(i..).map(|rest| rest.join("/")).unwrap_or_default();
                if remainder.is_empty() {
                    return None;
                }
                parameters.push((name.trim_end_matches('+').to_owned(), remainder));
                let rank = Rank { not_greedy: false, literals, method: false };
                return Some((rank, parameters));
            }
            Some(name) => {
                let value = segments.get(i).filter(|s| !s.is_empty())?;
                parameters.push((name.to_owned(), (*value).to_owned()));
                literals.push(false);
            }
            None => {
                if segments.get(i) != Some(part) {
                    return None;
                }
                literals.push(true);
            }
        }
    }
    if segments.len() != parts.len() {
        return None;
    }
    Some((Rank { not_greedy: true, literals, method: false }, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arm;

    fn key(method: &str, path: &str) -> Option<&'static str> {
        match_route(method, path).map(|(route, _)| route.key)
    }

    #[test]
    fn every_route_matches_its_own_path() {
        for route in spec::ROUTES {
            let (method, template) = route.key.split_once(' ').unwrap();
            let method = if method == "ANY" { "POST" } else { method };
            let path = template.replace("{proxy+}", "a/b");
            let (found, _) = match_route(method, &path).unwrap();
            assert_eq!(found.key, route.key, "{path}");
        }
    }

    #[test]
    fn matching_is_anchored_exact_and_case_sensitive() {
        let mount = spec::RESOURCES[0].mount;
        let endpoint = spec::ROUTES.iter().find(|r| r.arm == Arm::McpEndpoint).unwrap();
        assert_eq!(key("GET", mount), Some(endpoint.key));
        for path in [
            format!("/x{mount}"),
            format!("{mount}x"),
            mount.to_uppercase(),
            format!("/{mount}"),
            format!("{mount}/"),
            String::new(),
        ] {
            assert_eq!(key("GET", &path), None, "{path}");
        }
        let (route, parameters) = match_route("GET", &format!("{mount}/a/b")).unwrap();
        assert_eq!(route.arm, Arm::McpSubtree);
        assert_eq!(parameters, [("proxy".to_owned(), "a/b".to_owned())]);
    }

    #[test]
    fn literal_routes_beat_the_greedy_subtree() {
        let mount = spec::RESOURCES[0].mount;
        let (route, _) =
            match_route("GET", &format!("{mount}/.well-known/oauth-protected-resource")).unwrap();
        assert_eq!(route.arm, Arm::ProtectedResourceMetadata);
    }
}

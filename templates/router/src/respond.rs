//! Response builders shared by the arms: JSON bodies, CORS headers, preflights and the bearer
//! challenge of RFC 6750 and RFC 9728.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_TYPE,
    LOCATION, WWW_AUTHENTICATE,
};
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};

/// Methods a discovery document answers.
pub(crate) const DISCOVERY_METHODS: &str = "GET, HEAD, OPTIONS";

/// Methods the default endpoints answer (a token or registration request is a POST).
pub(crate) const ENDPOINT_METHODS: &str = "GET, HEAD, POST, OPTIONS";

/// Headers a browser may send to a discovery document.
const DISCOVERY_ALLOW_HEADERS: &str = "authorization, content-type, mcp-protocol-version";

const MCP_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const MCP_ALLOW_HEADERS: &str =
    "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id";
const MCP_EXPOSE_HEADERS: &str = "WWW-Authenticate, mcp-session-id";

/// How long a browser may reuse a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "86400";

/// Discovery documents change only with a deployment or a key rotation at the issuer.
pub(crate) const PRM_CACHE_CONTROL: &str = "public, max-age=3600";
pub(crate) const AS_METADATA_CACHE_CONTROL: &str = "public, max-age=600";
const ERROR_CACHE_CONTROL: &str = "no-store";

/// A JSON response readable from any origin. `body` must already be JSON.
pub(crate) fn json(
    status: StatusCode,
    body: String,
    cache_control: &'static str,
) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `{"error": code}` with `status`, readable from any origin.
pub(crate) fn error(status: StatusCode, code: &'static str) -> Response<Body> {
    json(status, serde_json::json!({ "error": code }).to_string(), ERROR_CACHE_CONTROL)
}

pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not_found")
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The answer to a CORS preflight for a discovery path.
pub(crate) fn discovery_preflight(methods: &'static str) -> Response<Body> {
    preflight(methods, DISCOVERY_ALLOW_HEADERS)
}

/// The answer to a CORS preflight for the MCP endpoint: never a challenge, since a browser
/// sends no credentials with a preflight.
pub(crate) fn mcp_preflight() -> Response<Body> {
    let mut response = preflight(MCP_METHODS, MCP_ALLOW_HEADERS);
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(MCP_EXPOSE_HEADERS));
    response
}

fn preflight(methods: &'static str, allow_headers: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(allow_headers));
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    response
}

/// Adds the MCP endpoint's CORS headers to a response that lacks them, so that a browser can
/// read the handler's answers, the challenge and the session id.
pub(crate) fn with_mcp_cors<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    headers.entry(ACCESS_CONTROL_ALLOW_ORIGIN).or_insert(HeaderValue::from_static("*"));
    headers
        .entry(ACCESS_CONTROL_EXPOSE_HEADERS)
        .or_insert(HeaderValue::from_static(MCP_EXPOSE_HEADERS));
    response
}

/// A redirect readable from any origin.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let Ok(location) = HeaderValue::from_str(location) else {
        return error(StatusCode::BAD_GATEWAY, "invalid_authorization_server_endpoint");
    };
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(LOCATION, location);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(ERROR_CACHE_CONTROL));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// Why the guard turned a request away, as RFC 6750 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No credentials: a bare challenge, with no `error` parameter.
    NoToken,
    /// The Authorization header is not `Bearer <token>`.
    InvalidRequest,
    /// The token is unreadable, unsigned by the issuer, expired or not for this resource.
    InvalidToken,
    /// The token is valid but lacks a required scope.
    InsufficientScope,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::NoToken | Refusal::InvalidToken => StatusCode::UNAUTHORIZED,
            Refusal::InvalidRequest => StatusCode::BAD_REQUEST,
            Refusal::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }

    fn code(self) -> Option<&'static str> {
        match self {
            Refusal::NoToken => None,
            Refusal::InvalidRequest => Some("invalid_request"),
            Refusal::InvalidToken => Some("invalid_token"),
            Refusal::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// The challenge for a refused request: `resource_metadata` points at the PRM of the resource,
/// `scope` (space-separated, omitted when empty) says what to ask the authorization server for.
pub(crate) fn refusal(refusal: Refusal, resource_metadata: &str, scope: &str) -> Response<Body> {
    let mut challenge = format!("Bearer resource_metadata={}", quoted(resource_metadata));
    if !scope.is_empty() {
        challenge.push_str(&format!(", scope={}", quoted(scope)));
    }
    if let Some(code) = refusal.code() {
        challenge.push_str(&format!(", error={}", quoted(code)));
    }

    let mut response = error(refusal.status(), refusal.code().unwrap_or("unauthorized"));
    // The values come from the compiled-in spec; a value no header can carry falls back to the
    // bare scheme, which still tells the client to authenticate.
    let challenge = HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
    response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    with_mcp_cors(response)
}

/// An RFC 9110 quoted-string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(response: &Response<Body>) -> &str {
        response.headers()[WWW_AUTHENTICATE].to_str().unwrap()
    }

    #[test]
    fn a_request_without_token_gets_a_bare_challenge() {
        let response = refusal(Refusal::NoToken, "https://h/.well-known/x/mcp", "a b");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&response),
            r#"Bearer resource_metadata="https://h/.well-known/x/mcp", scope="a b""#
        );
    }

    #[test]
    fn an_empty_scope_is_left_out() {
        let response = refusal(Refusal::InvalidToken, "https://h/p", "");
        assert_eq!(
            challenge(&response),
            r#"Bearer resource_metadata="https://h/p", error="invalid_token""#
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}

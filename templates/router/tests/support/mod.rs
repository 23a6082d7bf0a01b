//! Shared by the integration tests: API Gateway events made from the fixtures for the routes of
//! `spec`, a handler that records what reaches it, a loopback authorization server, and tokens
//! signed with the keys under `tests/fixtures/keys`, which exist for these tests only.
//!
//! Every value a test expects comes from `router::spec`, so the tests hold for any spec.

#![allow(dead_code)] // Each test binary uses its own part of this module.

mod crate_under_test;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate_under_test::router;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::{Body, Request, Response};
use router::model::{Arm, Environment, Route};
use router::{Router, VerifiedClaims, spec};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn fixture(path: &str) -> String {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first environment of the spec: the one the tests serve unless they say otherwise.
pub fn environment() -> &'static Environment {
    &spec::ENVIRONMENTS[0]
}

/// The routes of one arm.
pub fn routes(arm: Arm) -> impl Iterator<Item = &'static Route> {
    spec::ROUTES.iter().filter(move |route| route.arm == arm)
}

/// The first route of an arm; every router backend has an MCP endpoint, a subtree and PRMs.
pub fn route(arm: Arm) -> &'static Route {
    routes(arm).next().unwrap_or_else(|| panic!("the spec has no {arm:?} route"))
}

/// The value of the `scope` parameter in challenges.
pub fn challenge_scope() -> String {
    let mut scopes: Vec<&str> = spec::SCOPES.to_vec();
    scopes.extend(spec::REQUIRED_SCOPES.iter().filter(|s| !spec::SCOPES.contains(s)));
    scopes.join(" ")
}

/// The exact `WWW-Authenticate` value expected for a refused request on resource `index`.
pub fn challenge(index: usize, error: Option<&str>) -> String {
    let mut value =
        format!("Bearer resource_metadata=\"{}\"", environment().resources[index].prm_url);
    let scope = challenge_scope();
    if !scope.is_empty() {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
    }
    value
}

/// An API Gateway v2 event, read from a fixture and pointed at a route of the spec.
#[derive(Clone)]
pub struct Event(Value);

impl Event {
    pub fn fixture(name: &str) -> Event {
        let text = fixture(&format!("events/{name}.json"));
        Event(serde_json::from_str(&text).unwrap())
    }

    /// Points the event at `route`, with the path it stands for; a greedy parameter gets
    /// `remainder`. With a named stage, `rawPath` starts with the stage, as API Gateway sends it.
    pub fn route(self, route: &Route, remainder: &str) -> Event {
        let (_, template) = route.key.split_once(' ').unwrap();
        let mut path = String::new();
        let mut parameters = serde_json::Map::new();
        for (i, segment) in template.split('/').enumerate() {
            if i > 0 {
                path.push('/');
            }
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let name = name.trim_end_matches('+');
                    path.push_str(remainder);
                    parameters.insert(name.to_owned(), json!(remainder));
                }
                None => path.push_str(segment),
            }
        }

        let stage = self.0["requestContext"]["stage"].as_str().unwrap_or("$default").to_owned();
        let raw_path = if stage == "$default" { path } else { format!("/{stage}{path}") };
        let mut event = self.raw_path(&raw_path);
        event.0["routeKey"] = json!(route.key);
        event.0["requestContext"]["routeKey"] = json!(route.key);
        event.0["pathParameters"] = Value::Object(parameters);
        event
    }

    /// Sets `rawPath` (and `requestContext.http.path`) alone, leaving the route key as it is.
    pub fn raw_path(mut self, raw_path: &str) -> Event {
        self.0["rawPath"] = json!(raw_path);
        self.0["requestContext"]["http"]["path"] = json!(raw_path);
        self
    }

    /// Sets the greedy `proxy` path parameter, or leaves none with `None`.
    pub fn proxy(mut self, value: Option<&str>) -> Event {
        self.0["pathParameters"] = match value {
            Some(value) => json!({ "proxy": value }),
            None => json!({}),
        };
        self
    }

    /// The fixture's `rawPath`.
    pub fn raw_path_value(&self) -> String {
        self.0["rawPath"].as_str().unwrap_or("").to_owned()
    }

    /// The stage the fixture's request context names.
    pub fn stage(&self) -> String {
        self.0["requestContext"]["stage"].as_str().unwrap_or("$default").to_owned()
    }

    pub fn route_key(mut self, key: &str) -> Event {
        self.0["routeKey"] = json!(key);
        self.0["requestContext"]["routeKey"] = json!(key);
        self
    }

    pub fn method(mut self, method: &str) -> Event {
        self.0["requestContext"]["http"]["method"] = json!(method);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Event {
        self.0["headers"][name] = json!(value);
        self
    }

    pub fn bearer(self, token: &str) -> Event {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn body(mut self, body: &str) -> Event {
        self.0["body"] = json!(body);
        self.0["headers"]["content-length"] = json!(body.len().to_string());
        self
    }

    pub fn query(mut self, query: &str) -> Event {
        self.0["rawQueryString"] = json!(query);
        self
    }

    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.0.to_string()).unwrap()
    }
}

/// What reached the handler.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub claims: Option<VerifiedClaims>,
}

/// A handler that records every request and answers `200 handled`.
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the handler was called")
    }
}

impl tower::Service<Request> for Recorder {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.seen.lock().unwrap().push(Seen {
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            claims: request.extensions().get::<VerifiedClaims>().cloned(),
        });
        ready(Ok(http::Response::new("handled".to_owned())))
    }
}

/// A router for the first environment, fetching from `server`.
pub fn new_router(recorder: &Recorder, server: &AuthorizationServer) -> Router<Recorder> {
    Router::builder(recorder.clone())
        .environment(environment().name)
        .loopback_authorization_server(server.metadata_url())
        .build()
        .unwrap()
}

pub fn body(response: &Response<Body>) -> &[u8] {
    response.body().as_ref()
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response.headers().get(name).map_or("", |value| value.to_str().unwrap())
}

/// An authorization server on 127.0.0.1 serving its metadata and the test JWKS. It answers at
/// most `MAX_CONNECTIONS` connections, one at a time, and stops with the test's runtime.
pub struct AuthorizationServer {
    address: SocketAddr,
    metadata: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

const MAX_CONNECTIONS: usize = 64;
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

impl AuthorizationServer {
    pub async fn start() -> AuthorizationServer {
        AuthorizationServer::start_with(200).await
    }

    /// A server whose metadata endpoint answers `status` (with the document when 200).
    pub async fn start_with(metadata_status: u16) -> AuthorizationServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("http://{address}");

        // Odd spacing, key order and a non-ASCII value: forwarding must keep every byte.
        let metadata = format!(
            "{{\"issuer\":\"{issuer}\",  \"jwks_uri\": \"{base}/jwks\",\n \
             \"authorization_endpoint\":\"{base}/oauth2/authorize\",\
             \"token_endpoint\":\"{base}/oauth2/token\",\
             \"registration_endpoint\":\"{base}/oauth2/register\",\
             \"service_documentation\":\"https://example.com/d\u{e9}j\u{e0}-vu\",\
             \"code_challenge_methods_supported\":[\"S256\"]}}\n",
            issuer = environment().issuer,
        );
        let hits = Arc::new(Mutex::new(HashMap::new()));

        let served = (metadata.clone(), fixture("jwks.json"), hits.clone());
        tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let accepted = tokio::time::timeout(Duration::from_secs(30), listener.accept());
                let Ok(Ok((stream, _))) = accepted.await else {
                    break;
                };
                let answer = serve(stream, &served.0, &served.1, metadata_status, &served.2);
                let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;
            }
        });
        AuthorizationServer { address, metadata, hits }
    }

    pub fn metadata_url(&self) -> String {
        format!("http://{}{METADATA_PATH}", self.address)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The metadata document exactly as served.
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    /// The document the router must serve at its metadata routes: the spec's fixed one, or
    /// this server's, forwarded.
    pub fn expected_document(&self) -> &str {
        spec::AS_METADATA_DOCUMENT.unwrap_or(&self.metadata)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn serve(
    mut stream: TcpStream,
    metadata: &str,
    jwks: &str,
    metadata_status: u16,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split(' ').nth(1).unwrap_or("").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;

    let (status, body) = match path.as_str() {
        METADATA_PATH if metadata_status == 200 => (200, metadata),
        METADATA_PATH => (metadata_status, "{\"error\":\"server_error\"}"),
        "/jwks" => (200, jwks),
        _ => (404, "{\"error\":\"not_found\"}"),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims that the router accepts for resource `index`: the compiled-in issuer, the resource
/// URL as audience, current, with every published and required scope.
pub fn valid_claims(index: usize) -> Value {
    json!({
        "iss": environment().issuer,
        "aud": environment().resources[index].resource_url,
        "sub": "user-1",
        "iat": now(),
        "nbf": now() - 10,
        "exp": now() + 600,
        "scope": challenge_scope(),
    })
}

pub fn sign(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(fixture("keys/rsa-private.pem").as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(fixture("keys/ec-private.pem").as_bytes()),
        other => panic!("no test key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.unwrap()).unwrap()
}

/// A token signed with the test RSA key, which the test JWKS publishes as `test-rsa`.
pub fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, "test-rsa", claims)
}

/// A token that says `alg: none` and has no signature.
pub fn unsigned(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": "test-rsa"});
    format!(
        "{}.{}.",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    )
}

/// An HS256 token whose secret is the RSA public key: the classic key-confusion attack.
pub fn hs256_with_public_key(claims: &Value) -> String {
    let secret = fixture("keys/rsa-public.pem");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-rsa".to_owned());
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Unpadded base64url, enough to forge a token by hand.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

//! The authorization server as the router sees it: its RFC 8414 metadata document (forwarded
//! verbatim, and read for `jwks_uri` and the endpoints) and its signing keys. Both are fetched
//! lazily, with a timeout, and cached in memory for the life of the Lambda instance.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::ACCEPT;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config::{ConfigError, is_loopback_http};

/// How long a metadata document is reused before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// The least time between two JWKS fetches, so that tokens with made-up `kid`s cannot make the
/// router hammer the issuer.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The timeout of one fetch, connection included. API Gateway gives up on the Lambda after 30 s.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest metadata or JWKS document accepted.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Which URLs the router fetches from or redirects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlPolicy {
    /// Production: `https://` only.
    Https,
    /// Tests: `http://` on a loopback host with a port, nothing else.
    Loopback,
}

impl UrlPolicy {
    pub(crate) fn permits(self, url: &str) -> bool {
        match self {
            UrlPolicy::Https => url.starts_with("https://") && reqwest::Url::parse(url).is_ok(),
            UrlPolicy::Loopback => is_loopback_http(url),
        }
    }
}

/// A fetch that failed; the message is for the log, never for the client.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamError(String);

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The authorization server's metadata: the document as fetched, plus the fields the router
/// uses.
#[derive(Debug)]
pub(crate) struct Metadata {
    /// The document exactly as the issuer served it; never rewritten.
    pub(crate) document: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) authorization_endpoint: Option<String>,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) registration_endpoint: Option<String>,
}

impl Metadata {
    fn parse(document: String) -> Result<Metadata, UpstreamError> {
        let fields: Map<String, Value> = serde_json::from_str(&document)
            .map_err(|e| UpstreamError(format!("metadata is not a JSON object: {e}")))?;
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Metadata {
            jwks_uri: text("jwks_uri"),
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            registration_endpoint: text("registration_endpoint"),
            document,
        })
    }
}

/// A signing key of the issuer.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) key: DecodingKey,
    /// The `alg` the JWKS pins the key to, when it does.
    pub(crate) algorithm: Option<Algorithm>,
}

struct CachedMetadata {
    fetched_at: Instant,
    metadata: Arc<Metadata>,
}

#[derive(Default)]
struct KeyCache {
    by_kid: HashMap<String, VerificationKey>,
    fetched_at: Option<Instant>,
    /// Why the last fetch failed, repeated until the next one is allowed.
    last_failure: Option<UpstreamError>,
}

pub(crate) struct AuthorizationServer {
    client: reqwest::Client,
    metadata_url: String,
    policy: UrlPolicy,
    /// The document the spec fixes, served instead of the issuer's.
    fixed_document: Option<&'static str>,
    /// The fixed document, read, when it also names the keys and endpoints (always, except
    /// when a test points the router at its own server for those).
    fixed_metadata: Option<Arc<Metadata>>,
    metadata: Mutex<Option<CachedMetadata>>,
    keys: Mutex<KeyCache>,
}

impl AuthorizationServer {
    /// The authorization server whose metadata is at `metadata_url`. With a `fixed_document`,
    /// that document is served at the metadata routes; when `fixed_is_source` is true, it also
    /// names the JWKS and the endpoints, and `metadata_url` is never fetched.
    pub(crate) fn new(
        metadata_url: &str,
        policy: UrlPolicy,
        fixed_document: Option<&'static str>,
        fixed_is_source: bool,
    ) -> Result<AuthorizationServer, ConfigError> {
        let fixed_metadata = match fixed_document {
            Some(document) if fixed_is_source => {
                let metadata = Metadata::parse(document.to_owned())
                    .map_err(|e| ConfigError::InconsistentSpec(e.to_string()))?;
                Some(Arc::new(metadata))
            }
            _ => None,
        };
        // Redirects are not followed: keys come from the URLs the spec and the issuer name.
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(AuthorizationServer {
            client,
            metadata_url: metadata_url.to_owned(),
            policy,
            fixed_document,
            fixed_metadata,
            metadata: Mutex::new(None),
            keys: Mutex::new(KeyCache::default()),
        })
    }

    pub(crate) fn policy(&self) -> UrlPolicy {
        self.policy
    }

    /// The document served at the metadata routes: the spec's fixed document as written, or
    /// the issuer's as fetched. Neither is ever rewritten.
    pub(crate) async fn document(&self) -> Result<String, UpstreamError> {
        match self.fixed_document {
            Some(document) => Ok(document.to_owned()),
            None => Ok(self.metadata().await?.document.clone()),
        }
    }

    /// The metadata the router reads `jwks_uri` and the endpoints from: the fixed document, or
    /// the fetched one from the cache while it is fresh. When a refresh fails, the last good
    /// document is used: it is what the issuer said most recently.
    pub(crate) async fn metadata(&self) -> Result<Arc<Metadata>, UpstreamError> {
        if let Some(fixed) = &self.fixed_metadata {
            return Ok(fixed.clone());
        }
        let mut cached = self.metadata.lock().await;
        if let Some(entry) = cached.as_ref().filter(|e| e.fetched_at.elapsed() < METADATA_TTL) {
            return Ok(entry.metadata.clone());
        }

        let fetched = self.fetch(&self.metadata_url).await.and_then(Metadata::parse);
        match fetched {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                *cached =
                    Some(CachedMetadata { fetched_at: Instant::now(), metadata: metadata.clone() });
                Ok(metadata)
            }
            Err(error) => match cached.as_ref() {
                Some(stale) => {
                    tracing::warn!(%error, "serving stale authorization server metadata");
                    Ok(stale.metadata.clone())
                }
                None => Err(error),
            },
        }
    }

    /// The issuer's key with this `kid`. An unknown `kid` refetches the JWKS (a key rotation),
    /// at most once per `JWKS_REFETCH_INTERVAL`; `None` means the issuer has no such key.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<VerificationKey>, UpstreamError> {
        let mut cache = self.keys.lock().await;
        if let Some(key) = cache.by_kid.get(kid) {
            return Ok(Some(key.clone()));
        }
        if cache.fetched_at.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            return match &cache.last_failure {
                Some(failure) => Err(failure.clone()),
                None => Ok(None),
            };
        }

        cache.fetched_at = Some(Instant::now());
        match self.fetch_keys().await {
            Ok(keys) => {
                tracing::debug!(count = keys.len(), "fetched the issuer's signing keys");
                cache.by_kid = keys;
                cache.last_failure = None;
                Ok(cache.by_kid.get(kid).cloned())
            }
            Err(error) => {
                cache.last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, VerificationKey>, UpstreamError> {
        let metadata = self.metadata().await?;
        let jwks_uri = metadata
            .jwks_uri
            .as_deref()
            .ok_or_else(|| UpstreamError("the metadata has no jwks_uri".to_owned()))?;
        if !self.policy.permits(jwks_uri) {
            return Err(UpstreamError(format!("jwks_uri {jwks_uri:?} is not allowed")));
        }
        let document = self.fetch(jwks_uri).await?;
        parse_jwks(&document)
    }

    /// GETs a JSON document: 200 only, at most `MAX_DOCUMENT_BYTES`, UTF-8.
    async fn fetch(&self, url: &str) -> Result<String, UpstreamError> {
        let failed = |e: reqwest::Error| UpstreamError(format!("fetching {url}: {e}"));

        let mut response =
            self.client.get(url).header(ACCEPT, "application/json").send().await.map_err(failed)?;
        if response.status() != StatusCode::OK {
            return Err(UpstreamError(format!("{url} answered {}", response.status())));
        }

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(UpstreamError(format!(
                    "{url} sent more than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| UpstreamError(format!("{url} sent invalid UTF-8")))
    }
}

/// Reads the signature keys of a JWKS. Keys the router cannot or must not use are skipped one
/// by one, so that one odd key does not hide the others: keys without `kid`, encryption keys,
/// symmetric keys (a shared secret is never a verification key here) and unknown key types.
fn parse_jwks(document: &str) -> Result<HashMap<String, VerificationKey>, UpstreamError> {
    let set: Map<String, Value> = serde_json::from_str(document)
        .map_err(|e| UpstreamError(format!("the JWKS is not a JSON object: {e}")))?;
    let Some(Value::Array(entries)) = set.get("keys") else {
        return Err(UpstreamError("the JWKS has no keys array".to_owned()));
    };

    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let for_signatures =
            matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
        let asymmetric = !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_));
        if !for_signatures || !asymmetric {
            continue;
        }
        let algorithm = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => match Algorithm::from_str(&alg.to_string()) {
                Ok(algorithm) => Some(algorithm),
                Err(_) => continue,
            },
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.insert(kid, VerificationKey { key, algorithm });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() {
        let jwks = r#"{"keys": [
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "XYZ", "kid": "odd"}
        ]}"#;
        assert!(parse_jwks(jwks).unwrap().is_empty());
    }

    /// Port 9 on loopback (discard) has no HTTP server here: a fetch would fail, so an answer
    /// proves that nothing was fetched.
    const NOWHERE: &str = "http://127.0.0.1:9/.well-known/oauth-authorization-server";

    #[tokio::test]
    async fn a_fixed_document_is_served_verbatim_and_never_fetched() {
        let document = r#"{"issuer":"https://as.example",  "jwks_uri":"https://as.example/k"}"#;
        let server =
            AuthorizationServer::new(NOWHERE, UrlPolicy::Loopback, Some(document), true).unwrap();
        assert_eq!(server.document().await.unwrap(), document);
        let metadata = server.metadata().await.unwrap();
        assert_eq!(metadata.jwks_uri.as_deref(), Some("https://as.example/k"));
        assert_eq!(metadata.document, document);
    }

    #[tokio::test]
    async fn a_fixed_document_is_still_served_when_a_test_server_names_the_keys() {
        let document = r#"{"issuer":"https://as.example"}"#;
        let server =
            AuthorizationServer::new(NOWHERE, UrlPolicy::Loopback, Some(document), false).unwrap();
        assert_eq!(server.document().await.unwrap(), document);
        assert!(server.metadata().await.is_err());
    }

    #[test]
    fn a_fixed_document_that_is_not_an_object_stops_the_router() {
        let result = AuthorizationServer::new(NOWHERE, UrlPolicy::Https, Some("[]"), true);
        assert!(matches!(result, Err(ConfigError::InconsistentSpec(_))));
    }

    #[test]
    fn the_https_policy_refuses_plain_http() {
        assert!(UrlPolicy::Https.permits("https://example-tenant.authkit.app/oauth2/jwks"));
        assert!(!UrlPolicy::Https.permits("http://example-tenant.authkit.app/oauth2/jwks"));
        assert!(!UrlPolicy::Https.permits("http://127.0.0.1:8080/jwks"));
        assert!(UrlPolicy::Loopback.permits("http://127.0.0.1:8080/jwks"));
        assert!(!UrlPolicy::Loopback.permits("https://example-tenant.authkit.app/oauth2/jwks"));
    }
}

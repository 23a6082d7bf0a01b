//! The bearer guard: reads the Authorization header and verifies the token as a JWT signed by
//! the compiled-in issuer, for this resource, with the required scopes (section 5 of the OAuth
//! discovery contract, RFC 6750, RFC 8707).

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde_json::{Map, Value};

use crate::upstream::{AuthorizationServer, UpstreamError};

/// Asymmetric algorithms only: never `none` (jsonwebtoken cannot even read it), never HMAC,
/// which would let anyone holding the public key sign.
const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The longest Authorization header read; longer ones are refused as malformed.
const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 60;

/// The claims of a verified token, inserted into the request handed to the handler as an
/// extension: `request.extensions().get::<VerifiedClaims>()`.
#[derive(Clone, Debug)]
pub struct VerifiedClaims {
    scopes: Vec<String>,
    claims: Map<String, Value>,
}

impl VerifiedClaims {
    fn new(claims: Map<String, Value>) -> VerifiedClaims {
        // `scope` is RFC 8693's space-separated string; some issuers send `scp` as an array.
        let mut scopes: Vec<String> = Vec::new();
        if let Some(Value::String(scope)) = claims.get("scope") {
            scopes.extend(scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
        }
        match claims.get("scp") {
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            Some(Value::String(scope)) => {
                scopes.extend(scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            _ => {}
        }
        scopes.sort();
        scopes.dedup();
        VerifiedClaims { scopes, claims }
    }

    /// The `sub` claim, when the token has one.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The granted scopes, from `scope` and `scp`, sorted and without duplicates.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Every claim of the token.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// What the Authorization header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    Missing,
    /// Anything but one `Bearer <token68>` of at most `MAX_AUTHORIZATION_BYTES`.
    Malformed,
    Bearer(&'a str),
}

pub(crate) fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credentials::Missing;
    };
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_BYTES {
        return Credentials::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Credentials::Malformed;
    };
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || !is_token68(token) {
        return Credentials::Malformed;
    }
    Credentials::Bearer(token)
}

/// Whether the query string carries an `access_token` parameter (RFC 6750 section 2.3), a
/// method this resource does not accept. The name is compared after percent-decoding, so an
/// escaped spelling is caught too.
pub(crate) fn has_query_token(query: Option<&str>) -> bool {
    let Some(query) = query else {
        return false;
    };
    form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token")
}

/// RFC 7235's token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Why a token was not accepted.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The token is not valid for this resource; the reason is for the log only.
    Invalid(String),
    /// The issuer's keys could not be fetched, so no token can be checked now.
    Unavailable(UpstreamError),
}

fn invalid(reason: impl Into<String>) -> TokenError {
    TokenError::Invalid(reason.into())
}

/// Verifies `token` as a JWT signed by one of the issuer's keys, issued by exactly `issuer`, for
/// `audience` (the resource URL), and current within `LEEWAY_SECONDS`.
pub(crate) async fn verify(
    token: &str,
    issuer: &str,
    audience: &str,
    server: &AuthorizationServer,
) -> Result<VerifiedClaims, TokenError> {
    let header = decode_header(token).map_err(|e| invalid(format!("unreadable header: {e}")))?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(invalid(format!("algorithm {:?} is not allowed", header.alg)));
    }
    let kid = header.kid.as_deref().ok_or_else(|| invalid("the header has no kid"))?;

    let key = server
        .key(kid)
        .await
        .map_err(TokenError::Unavailable)?
        .ok_or_else(|| invalid(format!("the issuer has no key {kid:?}")))?;
    if key.algorithm.is_some_and(|pinned| pinned != header.alg) {
        return Err(invalid(format!("key {kid:?} is not for {:?}", header.alg)));
    }

    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);

    let data = decode::<Map<String, Value>>(token, &key.key, &validation)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(VerifiedClaims::new(data.claims))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// The token read from one Authorization header, `None` when it is malformed.
    fn bearer(value: &[u8]) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        match credentials(&headers) {
            Credentials::Bearer(token) => Some(token.to_owned()),
            Credentials::Malformed => None,
            Credentials::Missing => panic!("the header was sent"),
        }
    }

    #[test]
    fn the_authorization_header_is_read_strictly() {
        assert_eq!(credentials(&HeaderMap::new()), Credentials::Missing);
        assert_eq!(bearer(b"Bearer abc.def-_~+/==").as_deref(), Some("abc.def-_~+/=="));
        assert_eq!(bearer(b"bearer  abc").as_deref(), Some("abc"));

        for malformed in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Basic dXNlcjpwYXNz",
            b"Bearer a b",
            b"Bearer a,Bearer b",
            b"Bearer =",
            b"Bearer \xff",
        ] {
            assert_eq!(bearer(malformed), None, "{}", String::from_utf8_lossy(malformed));
        }
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(bearer(long.as_bytes()), None);
    }

    #[test]
    fn a_token_in_the_query_string_is_noticed() {
        assert!(!has_query_token(None));
        assert!(!has_query_token(Some("x=1&token=a")));
        assert!(has_query_token(Some("access_token=a")));
        assert!(has_query_token(Some("x=1&access%5Ftoken=a")));
        assert!(has_query_token(Some("access_token")));
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credentials(&headers), Credentials::Malformed);
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims = serde_json::json!({"scope": "b a", "scp": ["c", "a"], "sub": "u"});
        let Value::Object(claims) = claims else { unreachable!() };
        let verified = VerifiedClaims::new(claims);
        assert_eq!(verified.scopes(), ["a", "b", "c"]);
        assert_eq!(verified.subject(), Some("u"));
        assert!(verified.has_scope("c"));
    }
}

//! The attack suite: tables of requests that must not reach the consumer's handler without a
//! valid token for this resource, nor get a 200 they should not.
//!
//! - Token cases: a valid token with one thing wrong, on the MCP endpoint and its subtree. Each
//!   gets 401 `invalid_token`, or 403 `insufficient_scope` for a missing required scope.
//! - Header cases: the token sent in a form the resource does not accept. Each gets 400
//!   `invalid_request`, or a bare 401 challenge when the router sees no credentials at all.
//! - Path cases: the MCP path bent out of shape, sent with a valid token so that only the path
//!   can fail them. API Gateway's handling of case, slashes, dots and escapes is uncertain, so
//!   each variant is delivered under every reading (route key, path parameter and `rawPath`) a
//!   gateway might produce, in each of three frames: the `$default` stage, a named stage kept
//!   in `rawPath`, and a custom domain whose mapping key `rawPath` keeps. Each gets 404, except a
//!   variant that reaches the router as exactly `<mount>/`, which is served like the mount.
//!
//! The tables have a fixed length for every spec, and the README states it; a test checks the
//! two agree.

mod support;

use support::router;

use jsonwebtoken::Algorithm;
use router::model::{Arm, Route};
use router::spec;
use serde_json::{Value, json};
use support::{
    AuthorizationServer, Event, Recorder, body, challenge, environment, header, now, route, rs256,
    valid_claims,
};

/// What the router must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 401 with `error="invalid_token"` in the challenge.
    InvalidToken,
    /// 403 with `error="insufficient_scope"`; 200 when the spec requires no scope, since the
    /// token is then valid.
    InsufficientScope,
    /// 400 with `error="invalid_request"` in the challenge.
    InvalidRequest,
    /// 401 with the bare challenge: no credentials were seen.
    NoToken,
    /// A JSON 404.
    NotFound,
    /// 200 from the handler, which sees the mount path.
    ServedAsMount,
}

struct Case {
    name: String,
    event: Event,
    expect: Expect,
}

fn mcp() -> &'static Route {
    route(Arm::McpEndpoint)
}

fn subtree() -> &'static Route {
    spec::ROUTES
        .iter()
        .find(|r| r.arm == Arm::McpSubtree && r.resource == mcp().resource)
        .expect("the MCP endpoint has a subtree route")
}

fn resource() -> usize {
    mcp().resource.unwrap()
}

fn mount() -> &'static str {
    spec::RESOURCES[resource()].mount
}

fn valid_token() -> String {
    rs256(&valid_claims(resource()))
}

fn with(change: &dyn Fn(&mut Value)) -> Value {
    let mut claims = valid_claims(resource());
    change(&mut claims);
    claims
}

fn without(claim: &str) -> Value {
    with(&|c| drop(c.as_object_mut().unwrap().remove(claim)))
}

/// A token with `header` as its JOSE header, the valid claims and the RS256 signature of a
/// valid token: what an attacker can assemble from a token they saw.
fn with_header(header: Value) -> String {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", support::base64url(header.to_string().as_bytes()), parts[1], parts[2])
}

/// Token cases, each sent to the MCP endpoint and to a path below it.
fn token_cases() -> Vec<Case> {
    let resource_url = environment().resources[resource()].resource_url;
    let prm_url = environment().resources[resource()].prm_url;
    let issuer = environment().issuer;
    let invalid = Expect::InvalidToken;

    let claims = || valid_claims(resource());
    let signed = |kid: &str| support::sign(Algorithm::RS256, kid, &claims());
    let alg = |alg: &str| with_header(json!({"alg": alg, "kid": "test-rsa"}));
    let set = |name: &'static str, value: Value| rs256(&with(&|c| c[name] = value.clone()));
    let tampered = {
        let token = valid_token();
        let other = rs256(&with(&|c| c["sub"] = json!("admin")));
        let (parts, other_parts): (Vec<&str>, Vec<&str>) =
            (token.split('.').collect(), other.split('.').collect());
        format!("{}.{}.{}", parts[0], other_parts[1], parts[2])
    };
    let stripped = format!("{}.", valid_token().rsplit_once('.').unwrap().0);

    let tokens: Vec<(&str, String, Expect)> = Vec::from([
        ("alg none", support::unsigned(&claims()), invalid),
        ("alg None, valid signature attached", alg("None"), invalid),
        ("HS256 signed with the public key", support::hs256_with_public_key(&claims()), invalid),
        ("HS256 header on an RS256 signature", alg("HS256"), invalid),
        ("unknown kid", signed("no-such-key"), invalid),
        ("no kid", with_header(json!({"alg": "RS256"})), invalid),
        ("RSA signature under the EC kid", signed("test-ec"), invalid),
        ("tampered payload", tampered, invalid),
        ("signature stripped", stripped, invalid),
        ("wrong iss", set("iss", json!("https://attacker.example")), invalid),
        ("iss with a trailing slash", set("iss", json!(format!("{issuer}/"))), invalid),
        ("missing iss", rs256(&without("iss")), invalid),
        ("wrong aud", set("aud", json!("https://other.example/mcp")), invalid),
        ("aud with a trailing slash", set("aud", json!(format!("{resource_url}/"))), invalid),
        ("aud is the PRM URL", set("aud", json!(prm_url)), invalid),
        ("missing aud", rs256(&without("aud")), invalid),
        ("expired beyond the leeway", set("exp", json!(now() - 120)), invalid),
        ("missing exp", rs256(&without("exp")), invalid),
        ("not yet valid beyond the leeway", set("nbf", json!(now() + 120)), invalid),
        ("not a JWT", "abc.def.ghi".to_owned(), invalid),
        ("wrong scope", set("scope", json!("unrelated")), Expect::InsufficientScope),
    ]);

    let mut cases = Vec::new();
    for (name, token, expect) in tokens {
        let endpoint = Event::fixture("default-stage").route(mcp(), "").method("POST");
        let below = Event::fixture("default-stage").route(subtree(), "tools").method("GET");
        cases.push(Case {
            name: format!("{name}, endpoint"),
            event: endpoint.bearer(&token),
            expect,
        });
        cases.push(Case { name: format!("{name}, subtree"), event: below.bearer(&token), expect });
    }
    cases
}

/// Header cases: the token where the resource does not take it, or an Authorization header it
/// cannot read.
fn header_cases() -> Vec<Case> {
    let token = valid_token();
    let post = || Event::fixture("default-stage").route(mcp(), "").method("POST");
    let authorization = |value: &str| post().header("authorization", value);
    let oversized = format!("Bearer {token}{}", "A".repeat(8 * 1024));

    let cases: Vec<(&str, Event, Expect)> = Vec::from([
        ("oversized Authorization", authorization(&oversized), Expect::InvalidRequest),
        ("Basic credentials", authorization("Basic dXNlcjpwYXNz"), Expect::InvalidRequest),
        ("scheme alone", authorization("Bearer"), Expect::InvalidRequest),
        ("empty header", authorization(""), Expect::InvalidRequest),
        ("token without scheme", authorization(&token), Expect::InvalidRequest),
        ("another scheme name", authorization(&format!("Token {token}")), Expect::InvalidRequest),
        (
            "tab after the scheme",
            authorization(&format!("Bearer\t{token}")),
            Expect::InvalidRequest,
        ),
        (
            "two tokens in one header",
            authorization(&format!("Bearer {token} {token}")),
            Expect::InvalidRequest,
        ),
        (
            "two headers, joined",
            authorization(&format!("Bearer {token},Bearer {token}")),
            Expect::InvalidRequest,
        ),
        (
            "token then Basic",
            authorization(&format!("Bearer {token}, Basic dXNlcjpwYXNz")),
            Expect::InvalidRequest,
        ),
        ("quoted token", authorization(&format!("Bearer \"{token}\"")), Expect::InvalidRequest),
        (
            "token with a NUL escape",
            authorization(&format!("Bearer {token}%00")),
            Expect::InvalidRequest,
        ),
        (
            "access_token in the query, no header",
            post().query(&format!("access_token={token}")),
            Expect::InvalidRequest,
        ),
        (
            "access_token in the query, escaped name",
            post().query(&format!("x=1&access%5Ftoken={token}")),
            Expect::InvalidRequest,
        ),
        (
            "access_token in the query beside a valid header",
            post().bearer(&token).query(&format!("access_token={token}")),
            Expect::InvalidRequest,
        ),
        (
            "access_token in a form body",
            post()
                .header("content-type", "application/x-www-form-urlencoded")
                .body(&format!("access_token={token}")),
            Expect::NoToken,
        ),
        (
            "token in a cookie",
            post().header("cookie", &format!("access_token={token}")),
            Expect::NoToken,
        ),
        ("token in another header", post().header("x-access-token", &token), Expect::NoToken),
    ]);
    cases
        .into_iter()
        .map(|(name, event, expect)| Case { name: name.to_owned(), event, expect })
        .collect()
}

/// How one reading delivers a path variant: the route key API Gateway reports (`None` for
/// `$default`), the `proxy` parameter, and the path in `rawPath` before the frame's prefix.
struct Reading {
    route: Option<&'static Route>,
    proxy: Option<String>,
    path: String,
    expect: Expect,
}

/// Path variants, each with the readings a gateway might produce for it. `{m}` is the mount.
fn path_variants() -> Vec<(&'static str, Vec<Reading>)> {
    let m = mount();
    let endpoint =
        |path: String| Reading { route: Some(mcp()), proxy: None, path, expect: Expect::NotFound };
    let below = |proxy: &str| Reading {
        route: Some(subtree()),
        proxy: Some(proxy.to_owned()),
        path: format!("{m}/{proxy}"),
        expect: Expect::NotFound,
    };
    let default =
        |path: String| Reading { route: None, proxy: None, path, expect: Expect::NotFound };
    let served = |reading: Reading| Reading { expect: Expect::ServedAsMount, ..reading };
    let upper = m.to_uppercase();
    let prm = format!("/.well-known/oauth-protected-resource{m}");

    Vec::from([
        ("{M} in upper case", vec![endpoint(upper.clone()), default(upper)]),
        ("//{m}", vec![endpoint(format!("/{m}")), default(format!("/{m}"))]),
        (
            "{m}%2F",
            vec![
                endpoint(format!("{m}%2F")),
                served(endpoint(format!("{m}/"))),
                served(below("")),
                default(format!("{m}%2F")),
            ],
        ),
        (
            "{m}/",
            vec![
                served(below("")),
                served(Reading { proxy: None, ..below("") }),
                served(endpoint(format!("{m}/"))),
            ],
        ),
        (
            "{m}/..",
            vec![
                below(".."),
                endpoint(format!("{m}/..")),
                endpoint("/".to_owned()),
                default(format!("{m}/..")),
            ],
        ),
        ("{m}/.", vec![below("."), endpoint(format!("{m}/."))]),
        ("{m}.", vec![endpoint(format!("{m}.")), default(format!("{m}."))]),
        ("{m}..", vec![endpoint(format!("{m}..")), default(format!("{m}.."))]),
        ("{m}/...", vec![below("...")]),
        ("{m}/x.", vec![below("x.")]),
        ("{m}/%2e%2e", vec![below("%2e%2e"), below("..")]),
        ("{m}/x/../..", vec![below("x/../..")]),
        ("{m}//", vec![below("/")]),
        ("{m}//x", vec![below("/x")]),
        ("{m}\\", vec![endpoint(format!("{m}\\")), below("\\")]),
        ("{m}%5C", vec![endpoint(format!("{m}%5C")), below("%5C")]),
        ("{m}%00", vec![endpoint(format!("{m}%00")), below("%00")]),
        ("{m};x", vec![endpoint(format!("{m};x"))]),
        ("{m}x", vec![endpoint(format!("{m}x"))]),
        ("/x{m}", vec![endpoint(format!("/x{m}"))]),
        ("the PRM path under the MCP route key", vec![endpoint(prm)]),
    ])
}

/// The three frames a reading is delivered in: fixture, and what comes before the path.
fn frames() -> [(&'static str, String); 3] {
    let stage = Event::fixture("named-stage").stage();
    [
        ("default-stage", String::new()),
        ("named-stage", format!("/{stage}")),
        ("custom-domain", environment().base_path.to_owned()),
    ]
}

fn path_cases() -> Vec<Case> {
    let token = valid_token();
    let mut cases = Vec::new();
    for (variant, readings) in path_variants() {
        for (index, reading) in readings.iter().enumerate() {
            for (fixture, prefix) in frames() {
                let key = reading.route.map_or("$default", |route| route.key);
                let event = Event::fixture(fixture)
                    .route_key(key)
                    .proxy(reading.proxy.as_deref())
                    .raw_path(&format!("{prefix}{}", reading.path))
                    .method("POST")
                    .query("")
                    .bearer(&token);
                let name = format!("{variant}, reading {index} ({key}), {fixture}");
                cases.push(Case { name, event, expect: reading.expect });
            }
        }
    }
    cases
}

/// Runs a table; returns how many cases were served.
async fn run(cases: Vec<Case>) -> usize {
    let server = AuthorizationServer::start().await;
    let recorder = Recorder::default();
    let router = support::new_router(&recorder, &server);
    let mut served = 0;

    for case in cases {
        let calls = recorder.calls();
        let response = router.handle(case.event.request()).await;
        let name = &case.name;
        let reached = recorder.calls() - calls;
        let authenticate = header(&response, "www-authenticate");
        match case.expect {
            Expect::InvalidToken => {
                assert_eq!(response.status(), 401, "{name}");
                assert_eq!(authenticate, challenge(resource(), Some("invalid_token")), "{name}");
            }
            Expect::InsufficientScope if spec::REQUIRED_SCOPES.is_empty() => {
                assert_eq!(response.status(), 200, "{name}");
            }
            Expect::InsufficientScope => {
                assert_eq!(response.status(), 403, "{name}");
                assert_eq!(
                    authenticate,
                    challenge(resource(), Some("insufficient_scope")),
                    "{name}"
                );
            }
            Expect::InvalidRequest => {
                assert_eq!(response.status(), 400, "{name}");
                assert_eq!(authenticate, challenge(resource(), Some("invalid_request")), "{name}");
            }
            Expect::NoToken => {
                assert_eq!(response.status(), 401, "{name}");
                assert_eq!(authenticate, challenge(resource(), None), "{name}");
            }
            Expect::NotFound => {
                assert_eq!(response.status(), 404, "{name}");
                assert_eq!(body(&response), br#"{"error":"not_found"}"#, "{name}");
            }
            Expect::ServedAsMount => {
                assert_eq!(response.status(), 200, "{name}");
                assert_eq!(recorder.last().uri, mount(), "{name}");
            }
        }
        let may_reach = matches!(case.expect, Expect::ServedAsMount)
            || (case.expect == Expect::InsufficientScope && spec::REQUIRED_SCOPES.is_empty());
        assert_eq!(reached, usize::from(may_reach), "{name}: the handler was reached");
        if response.status() == 200 {
            assert!(may_reach, "{name}: a 200 it should not get");
        }
        served += reached;
    }
    served
}

#[tokio::test]
async fn token_attacks_are_refused_with_the_exact_challenge() {
    let cases = token_cases();
    let served = run(cases).await;
    // Only a token that lacks no required scope can be served: the wrong-scope case, on the
    // endpoint and below it, when the spec requires none.
    assert_eq!(served, if spec::REQUIRED_SCOPES.is_empty() { 2 } else { 0 });
}

#[tokio::test]
async fn header_attacks_are_refused_as_malformed_or_unauthenticated() {
    assert_eq!(run(header_cases()).await, 0);
}

#[tokio::test]
async fn path_variants_are_not_found_except_the_mount_with_a_slash() {
    let cases = path_cases();
    let expected = cases.iter().filter(|c| c.expect == Expect::ServedAsMount).count();
    assert_eq!(run(cases).await, expected);
}

/// The README of the crate states how many cases the suite tries.
#[test]
fn the_readme_states_the_number_of_cases() {
    let (tokens, headers, paths) = (token_cases().len(), header_cases().len(), path_cases().len());
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let stated = format!(
        "tries {} cases: {tokens} token cases, {headers} header cases and {paths} path cases",
        tokens + headers + paths
    );
    assert!(readme.contains(&stated), "the README should say: {stated}");
}

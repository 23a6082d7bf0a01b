//! `specgen explain`: which route API Gateway picks for one request, why, and who answers it.
//!
//! Explain sits beside the checks, not after them: it reads the resolved model of a spec that
//! may fail `check` (only parse and resolve errors stop it), asks [`engine`] the same question
//! the guarantees ask, and then follows the request past the gateway. For a backend served by
//! the generated router it names the arm that takes the route and what that arm answers a
//! request without a token, as `templates/router/src/dispatch.rs` does; any disagreement between
//! the gateway's choice and the router (a route the router has no arm for, a path the arm
//! answers with a JSON 404) is listed. [`crate::assertions`] checks the spec's assertions
//! against the same [`Explanation`].
//!
//! A request is `METHOD URL`. The URL is absolute (`https://dev.wikibot.io/x`: the environment
//! is the one whose origin it names) or a bare path (`/x`: the URL's path on the origin of the
//! environment named with `--env`, or else of the first deployed environment, or else of the
//! first environment). The path is percent-decoded, as API Gateway hands it to the route table
//! (reference row 15); a query or fragment is dropped, since route selection never sees it.
//!
//! `--format json` prints one object with these fields, which are stable:
//!
//! - `spec`: the spec's path.
//! - `request`: `method`, `url` (as sent, on the environment's origin) and `path` (decoded).
//! - `environment`: `name`, `origin`, and `chosen_by`: `origin`, `env-option` or `default`.
//! - `entry`: `kind` (`custom-domain`, `api-endpoint` or `local`), `stage` and `mapping_key`
//!   (or null), `path`, the path the route table sees, and `not_served`, why the request
//!   cannot reach this API (both never set at once).
//! - `route`: the winning route as `key`, `derived`, `purpose` and `line` (the route's line in
//!   the spec, 0 for none), or null for API Gateway's 404.
//! - `steps`: the rules behind the choice, in reading order, each with `row` (of the
//!   reference's section 1), `tag` (`[doc]`, `[obs]` or `[?]`), `assumed`, `rule` and `note`.
//! - `runners_up`: the route keys that matched and lost, best first.
//! - `assumptions`: the `[?]` rows the answer rests on, each with `row`, `tag` and `rule`.
//! - `ambiguous`: null, or `winner`, `rival`, `row`, `tag` and `rule` when the winner rests on
//!   a precedence AWS does not document.
//! - `path_parameters`: what the winner's variables captured.
//! - `backend`: the backend's name, or null.
//! - `auth`: `kind` (`none`, `bearer` or `jwt`) and `authorizer` (or null), or null.
//! - `router`: for a backend served by the generated router, `crate`, `arm` (the arm's name in
//!   the router, null when it has none for the route) and `path_fits`; else null.
//! - `answer`: `from` (`api-gateway`, `router` or `backend`), `status` (what a request without
//!   a token gets, null where specgen cannot know it) and `text`.
//! - `disagreements`: sentences, one per disagreement between the gateway and the router.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::engine::{self, Entry, NotServed, Rule};
use crate::model::{Arm, CrateModel, EnvModel, Model, RouteModel};
use crate::run::{self, exit};
use crate::url::{self, UrlProblem};

/// The methods a request can carry. `ANY` is a route-key word, never a request's method.
pub const REQUEST_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The body of API Gateway's own 404 (reference rows 1 and 2).
pub const GATEWAY_NOT_FOUND: &str = r#"{"message":"Not Found"}"#;

/// A request as a user writes it, checked but not yet placed on an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub method: String,
    /// The canonical origin of an absolute URL (lowercase, default port dropped); `None` for a
    /// bare path.
    pub origin: Option<String>,
    /// The path as written, without query or fragment.
    pub raw_path: String,
    /// The query string as written, without `?`, when there is one. Route selection never
    /// sees it, but the router refuses a token in it.
    pub query: Option<String>,
    /// The path percent-decoded, as the route table sees it; `/` when empty.
    pub path: String,
}

impl RequestLine {
    /// The URL of the request on `origin`, as a client sends it.
    pub fn url_on(&self, origin: &str) -> String {
        format!("{}{}", self.origin.as_deref().unwrap_or(origin), self.raw_path)
    }
}

fn problem(message: String, help: impl Into<String>) -> UrlProblem {
    UrlProblem { message, help: help.into() }
}

/// Parses `METHOD URL-or-path`, as an assertion's `request` is written.
pub fn parse_request_line(text: &str) -> Result<RequestLine, UrlProblem> {
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(method), Some(target), None) => parse_request(method, target),
        _ => Err(problem(
            format!("request `{}` is not `METHOD URL`", text.escape_debug()),
            "write the method and the URL or path, e.g. `GET /mcp`",
        )),
    }
}

/// Checks a method and a URL or path as a client would send them.
pub fn parse_request(method: &str, target: &str) -> Result<RequestLine, UrlProblem> {
    if !REQUEST_METHODS.contains(&method) {
        let upper = method.to_ascii_uppercase();
        let help = if REQUEST_METHODS.contains(&upper.as_str()) {
            format!("methods are uppercase: write `{upper}`")
        } else if method == "ANY" {
            "`ANY` is a route-key word; pick the method a client sends, e.g. GET".to_string()
        } else {
            format!("use one of: {}", REQUEST_METHODS.join(", "))
        };
        return Err(problem(format!("`{}` is not a request method", method.escape_debug()), help));
    }

    // Route selection never sees the query or the fragment.
    let without_fragment = target.split('#').next().unwrap_or_default();
    let query = without_fragment.split_once('?').map(|(_, q)| q.to_string());
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    let (origin, raw_path) = if without_query.starts_with('/') {
        (None, without_query.to_string())
    } else if without_query.contains("://") {
        let (origin, path) = url::split_origin(without_query);
        let parsed = url::parse(&origin.to_ascii_lowercase())?;
        let default_port = if parsed.scheme == "https" { 443 } else { 80 };
        let port = parsed.port.filter(|p| *p != default_port);
        let origin = url::ParsedUrl { port, ..parsed }.origin();
        (Some(origin), path.to_string())
    } else {
        return Err(problem(
            format!("`{}` is neither an absolute URL nor a path", target.escape_debug()),
            "write `https://host/path`, or a path starting with `/`",
        ));
    };
    if raw_path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(
            format!("path `{}` has whitespace or a control character", raw_path.escape_debug()),
            "percent-encode it, e.g. %20 for a space",
        ));
    }
    let path = percent_decode(&raw_path)?;
    let path = if path.is_empty() { "/".to_string() } else { path };
    Ok(RequestLine { method: method.to_string(), origin, raw_path, path, query })
}

fn percent_decode(path: &str) -> Result<String, UrlProblem> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = path
            .get(i + 1..i + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or_else(|| {
                problem(
                    format!("path `{path}` has a `%` that is not followed by two hex digits"),
                    "write a literal `%` as %25",
                )
            })?;
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        problem(format!("path `{path}` does not decode to UTF-8"), "percent-encode UTF-8 bytes")
    })
}

/// How explain chose the environment of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChosenBy {
    /// The URL names the environment's origin.
    Origin,
    /// `--env` names it.
    EnvOption,
    /// A bare path without `--env`: the first deployed environment, or the first of all.
    Default,
}

/// The environments whose origin is the request's: those of its URL's origin, or every one for
/// a bare path.
pub fn environments_for<'m>(model: &'m Model, line: &RequestLine) -> Vec<&'m EnvModel> {
    model
        .environments
        .iter()
        .filter(|env| line.origin.as_ref().is_none_or(|o| *o == env.origin))
        .collect()
}

/// The one environment `explain` describes the request on.
pub fn choose_environment<'m>(
    model: &'m Model,
    line: &RequestLine,
    name: Option<&str>,
) -> Result<(&'m EnvModel, ChosenBy), UrlProblem> {
    let names = || model.environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>();
    let origins = || model.environments.iter().map(|e| e.origin.as_str()).collect::<Vec<_>>();
    if let Some(name) = name {
        let Some(env) = model.environments.iter().find(|e| e.name == name) else {
            return Err(problem(
                format!("environment `{}` is not defined", name.escape_debug()),
                format!("use one of: {}", names().join(", ")),
            ));
        };
        if let Some(origin) = line.origin.as_ref().filter(|o| **o != env.origin) {
            return Err(problem(
                format!("{origin} is not the origin of environment `{name}`, {}", env.origin),
                "give a bare path, or the URL on that environment's origin",
            ));
        }
        return Ok((env, ChosenBy::EnvOption));
    }
    match &line.origin {
        Some(origin) => match environments_for(model, line).first() {
            Some(env) => Ok((env, ChosenBy::Origin)),
            None => Err(problem(
                format!("no environment has the origin {origin}"),
                format!("the spec's origins: {}", origins().join(", ")),
            )),
        },
        None => {
            let env = model.environments.iter().find(|e| !e.local).or(model.environments.first());
            let env = env.ok_or_else(|| {
                problem("the spec has no environment".to_string(), "add one to the spec")
            })?;
            Ok((env, ChosenBy::Default))
        }
    }
}

/// Everything explain says about one request on one environment. See the module doc for the
/// meaning of each field; their names are the JSON output's.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub spec: String,
    pub request: RequestInfo,
    pub environment: EnvironmentInfo,
    pub entry: EntryInfo,
    pub route: Option<RouteInfo>,
    pub steps: Vec<StepInfo>,
    pub runners_up: Vec<String>,
    pub assumptions: Vec<RuleInfo>,
    pub ambiguous: Option<AmbiguityInfo>,
    pub path_parameters: BTreeMap<String, String>,
    pub backend: Option<String>,
    pub auth: Option<AuthInfo>,
    pub router: Option<RouterInfo>,
    pub answer: Answer,
    pub disagreements: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentInfo {
    pub name: String,
    pub origin: String,
    pub chosen_by: ChosenBy,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    pub kind: &'static str,
    pub stage: Option<String>,
    pub mapping_key: Option<String>,
    pub path: Option<String>,
    pub not_served: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub key: String,
    pub derived: bool,
    pub purpose: String,
    pub line: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    pub row: u8,
    pub tag: &'static str,
    pub assumed: bool,
    pub rule: &'static str,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub row: u8,
    pub tag: &'static str,
    pub rule: &'static str,
}

impl From<Rule> for RuleInfo {
    fn from(rule: Rule) -> Self {
        RuleInfo { row: rule.row(), tag: rule.tag(), rule: rule.description() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AmbiguityInfo {
    pub winner: String,
    pub rival: String,
    pub row: u8,
    pub tag: &'static str,
    pub rule: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthInfo {
    pub kind: &'static str,
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouterInfo {
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub arm: Option<Arm>,
    pub path_fits: bool,
}

/// Who answers the request and with what, for a request without a token.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub from: &'static str,
    pub status: Option<u16>,
    pub text: String,
}

/// Explains `line` on `env`: the entry, the route selection, the backend and who answers.
pub fn explain(
    model: &Model,
    env: &EnvModel,
    line: &RequestLine,
    chosen_by: ChosenBy,
) -> Explanation {
    let entry = env.entry();
    let routed = engine::strip_entry(&entry, &line.path);
    let mut out = Explanation {
        spec: model.source.file.clone(),
        request: RequestInfo {
            method: line.method.clone(),
            url: line.url_on(&env.origin),
            path: line.path.clone(),
        },
        environment: EnvironmentInfo {
            name: env.name.clone(),
            origin: env.origin.clone(),
            chosen_by,
        },
        entry: entry_info(env, &entry, &routed),
        route: None,
        steps: Vec::new(),
        runners_up: Vec::new(),
        assumptions: Vec::new(),
        ambiguous: None,
        path_parameters: BTreeMap::new(),
        backend: None,
        auth: None,
        router: None,
        answer: gateway_not_found(),
        disagreements: Vec::new(),
    };

    // Stage or mapping selection comes first (row 1): a request it turns away sees no route.
    let routed = match routed {
        Ok(path) => path,
        Err(not_served) => {
            if let Some(rule) = not_served.rule() {
                out.steps.push(step(rule, not_served.to_string()));
            }
            if let NotServed::MappingKeyNotPrefix { .. } = not_served {
                out.answer = Answer {
                    from: "api-gateway",
                    status: None,
                    text: "this API's mapping does not take the path; another API mapping on \
                           the domain may, else API Gateway answers 404"
                        .into(),
                };
            }
            return out;
        }
    };

    let keys: Vec<engine::RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
    let selection = engine::select(&keys, &line.method, &routed);
    let key = |i: usize| model.routes[i].key.clone();
    out.steps = selection.steps.iter().map(|s| step(s.rule, s.note.clone())).collect();
    out.runners_up = selection.runners_up.iter().map(|&i| key(i)).collect();
    out.assumptions = selection.assumptions.iter().map(|&r| r.into()).collect();
    out.ambiguous = selection.ambiguous.map(|(w, r, rule)| AmbiguityInfo {
        winner: key(w),
        rival: key(r),
        row: rule.row(),
        tag: rule.tag(),
        rule: rule.description(),
    });
    out.path_parameters = selection.path_parameters.clone();

    let Some(route) = selection.winner.map(|i| &model.routes[i]) else { return out };
    out.route = Some(RouteInfo {
        key: route.key.clone(),
        derived: route.derived,
        purpose: route.purpose.clone(),
        line: route.at.line,
    });
    out.backend = Some(route.backend.clone());
    out.auth = Some(AuthInfo { kind: route.auth, authorizer: route.authorizer.clone() });
    out.answer = backend_answer(model, route);

    if let Some(krate) = model.crates.iter().find(|c| c.backend == route.backend) {
        let arm = krate.routes.iter().find(|r| r.key == route.key);
        let arm = arm.map(|a| a.arm);
        let fits = path_fits(route, arm, &selection.path_parameters, &routed);
        out.router =
            Some(RouterInfo { crate_name: krate.name.clone(), arm, path_fits: fits.is_ok() });
        let token_in_query = line.query.as_deref().is_some_and(query_has_token);
        let (answer, disagreement) =
            router_answer(krate, env, route, &line.method, &routed, fits, token_in_query);
        if route.auth != "jwt" {
            out.answer = answer;
        }
        out.disagreements.extend(disagreement);
    }
    out
}

fn step(rule: Rule, note: String) -> StepInfo {
    StepInfo {
        row: rule.row(),
        tag: rule.tag(),
        assumed: rule.is_assumed(),
        rule: rule.description(),
        note,
    }
}

fn gateway_not_found() -> Answer {
    Answer { from: "api-gateway", status: Some(404), text: format!("its own {GATEWAY_NOT_FOUND}") }
}

fn entry_info(env: &EnvModel, entry: &Entry, routed: &Result<String, NotServed>) -> EntryInfo {
    let (kind, stage, mapping_key) = match entry {
        _ if env.local => ("local", None, None),
        Entry::ApiEndpoint { stage } => {
            ("api-endpoint", Some(stage.clone().unwrap_or_else(|| "$default".into())), None)
        }
        Entry::CustomDomain { mapping_key } => ("custom-domain", None, Some(mapping_key.clone())),
    };
    let (path, not_served) = match routed {
        Ok(path) => (Some(path.clone()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    EntryInfo { kind, stage, mapping_key, path, not_served }
}

/// The answer when the backend is not a generated router: specgen knows only who answers.
fn backend_answer(model: &Model, route: &RouteModel) -> Answer {
    let backend = model.backends.iter().find(|b| b.name == route.backend);
    let text = match (route.auth, &route.authorizer) {
        ("jwt", Some(authorizer)) => format!(
            "API Gateway's JWT authorizer `{authorizer}` checks the token before backend `{}` \
             sees the request; specgen does not model its answer",
            route.backend
        ),
        _ => match backend.and_then(|b| b.framework.as_ref()) {
            Some(fw) => format!(
                "backend `{}` answers through its own {} app; specgen does not know what it says",
                route.backend, fw.name
            ),
            None => format!(
                "backend `{}` answers; it is not a generated router, so specgen does not know \
                 what it says",
                route.backend
            ),
        },
    };
    Answer { from: "backend", status: None, text }
}

/// Whether the generated router accepts the path for the route, or why not. The router
/// (`resolve` in `templates/router/src/dispatch.rs`) serves only paths in a clean form, and
/// rebuilds the path from the route key and the path parameters API Gateway reports: anything
/// but that path (or, for the MCP endpoint, that path with a trailing slash) gets a JSON 404.
fn path_fits(
    route: &RouteModel,
    arm: Option<Arm>,
    params: &BTreeMap<String, String>,
    routed: &str,
) -> Result<(), &'static str> {
    if !is_clean_path(routed) {
        return Err("the path is not in the clean form the router serves (an empty segment, a \
                    segment ending in a dot, a backslash, a control character, or an escape \
                    of a separator, a dot or a percent sign)");
    }
    let misfit = "the path does not fit the route key";
    let template = route.path.as_deref().ok_or(misfit)?;
    let mut expected = Vec::new();
    for segment in template.split('/') {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) => expected.push(params.get(greedy).cloned().unwrap_or_default()),
                None => match params.get(name).filter(|v| !v.is_empty() && !v.contains('/')) {
                    Some(value) => expected.push(value.clone()),
                    None => return Err(misfit),
                },
            },
            None => expected.push(segment.to_string()),
        }
    }
    let expected = expected.join("/");
    let fits = routed == expected
        || (arm == Some(Arm::McpEndpoint) && routed.strip_suffix('/') == Some(&expected));
    if fits { Ok(()) } else { Err(misfit) }
}

/// The router's clean form of a path: absolute; no empty segment but a final slash; no segment
/// ending in a dot; no backslash or control character; no escape left that decodes to `/`,
/// `\`, `.`, `%` or a control character (API Gateway decodes the path once, so such an escape
/// was escaped twice).
fn is_clean_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else { return false };
    if rest.is_empty() {
        return true;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    segments.iter().enumerate().all(|(i, segment)| {
        if segment.is_empty() {
            return i == last && i > 0;
        }
        let escaped = segment.as_bytes().windows(3).any(|w| {
            let hex =
                std::str::from_utf8(&w[1..]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            w[0] == b'%'
                && hex.is_some_and(|b| {
                    matches!(b, b'/' | b'\\' | b'.' | b'%') || b.is_ascii_control()
                })
        });
        !segment.ends_with('.') && !segment.chars().any(|c| c == '\\' || c.is_control()) && !escaped
    })
}

/// What the generated router's arm answers a request without a token, and the disagreement
/// with the gateway's choice, if any. Follows `Router::respond` in the router template.
fn router_answer(
    krate: &CrateModel,
    env: &EnvModel,
    route: &RouteModel,
    method: &str,
    routed: &str,
    fits: Result<(), &'static str>,
    token_in_query: bool,
) -> (Answer, Option<String>) {
    let from_router =
        |status: u16, text: String| Answer { from: "router", status: Some(status), text };
    let not_found =
        |why: &str| from_router(404, format!("JSON {{\"error\":\"not_found\"}}, {why}"));
    let preflight = || from_router(204, "a CORS preflight answer, never a challenge".into());
    let disagree = |what: &str| {
        format!(
            "API Gateway sends the request to route `{}` on router backend `{}`, but the \
             router {what}",
            route.key, route.backend
        )
    };

    let Some(crate_route) = krate.routes.iter().find(|r| r.key == route.key) else {
        let answer = not_found("the router has no arm for this route");
        let what = "has no arm for that route and answers a JSON 404; point the route at \
                    another backend, or let the OAuth block derive it";
        return (answer, Some(disagree(what)));
    };
    if let Err(why) = fits {
        return (not_found(why), Some(disagree(&format!("answers a JSON 404: {why}"))));
    }

    let crate_env = krate.environments.iter().find(|e| e.name == env.name);
    let published = crate_route.resource.and_then(|i| crate_env?.resources.get(i));
    let document = |what: String| match method {
        "GET" => from_router(200, what),
        "HEAD" => from_router(200, format!("the headers of {what}")),
        "OPTIONS" => preflight(),
        _ => from_router(405, "method not allowed (Allow: GET, HEAD, OPTIONS)".into()),
    };
    let well_known_404 = |why: &str| if method == "OPTIONS" { preflight() } else { not_found(why) };

    let answer = match crate_route.arm {
        Arm::McpEndpoint | Arm::McpSubtree => {
            let Some(resource) = published else {
                return (not_found("the route names no resource"), None);
            };
            let below = routed.strip_prefix(resource.mount.as_str()).unwrap_or("");
            if below.split('/').any(|s| s == ".well-known") {
                let why = format!(
                    "no document lives at a `.well-known` path below the mount `{}`",
                    resource.mount
                );
                let answer = well_known_404(&why);
                let disagreement = (answer.status == Some(404))
                    .then(|| disagree(&format!("answers a JSON 404: {why}")));
                return (answer, disagreement);
            }
            if method == "OPTIONS" {
                preflight()
            } else if token_in_query {
                from_router(
                    400,
                    "error=\"invalid_request\": a token in the query string is refused \
                     (RFC 6750 section 2.3 leaks it into logs)"
                        .into(),
                )
            } else {
                from_router(
                    401,
                    format!(
                        "a challenge without a token (WWW-Authenticate: Bearer \
                         resource_metadata=\"{}\"); with a valid token, your MCP handler answers",
                        resource.prm_url
                    ),
                )
            }
        }
        Arm::ProtectedResourceMetadata => match published {
            Some(r) => document(format!("the protected resource metadata of {}", r.resource_url)),
            None => not_found("the route names no resource"),
        },
        Arm::RootProtectedResourceMetadata => match published.filter(|r| r.root_prm) {
            Some(r) => document(format!("the protected resource metadata of {}", r.resource_url)),
            None => well_known_404("the origin has no single resource to describe"),
        },
        Arm::AuthorizationServerMetadata => match method {
            "GET" | "HEAD" if krate.as_metadata_document.is_some() => {
                from_router(200, "the spec's static authorization server metadata".into())
            }
            "GET" | "HEAD" => from_router(
                200,
                format!(
                    "the issuer's authorization server metadata, forwarded verbatim from {} \
                     (502 when the issuer cannot be reached)",
                    crate_env.map_or("the issuer", |e| e.as_metadata_url.as_str())
                ),
            ),
            "OPTIONS" => preflight(),
            _ => from_router(405, "method not allowed (Allow: GET, HEAD, OPTIONS)".into()),
        },
        Arm::WellKnownNotFound => {
            well_known_404("clients probe this well-known path, and it has no document here")
        }
        Arm::DefaultEndpoint => match (method, crate_route.endpoint) {
            ("OPTIONS", _) => preflight(),
            (_, Some(endpoint)) => {
                let (status, name) = match endpoint {
                    "authorize" => (302, "authorization_endpoint"),
                    "token" => (307, "token_endpoint"),
                    _ => (307, "registration_endpoint"),
                };
                from_router(
                    status,
                    format!(
                        "a redirect to the issuer's {name}, query kept (502 when the issuer's \
                         metadata cannot be fetched, 404 when it names no such endpoint)"
                    ),
                )
            }
            (_, None) => not_found("the route names no endpoint"),
        },
        Arm::Unprotected => Answer {
            from: "router",
            status: None,
            text: "your handler answers, with no bearer guard".into(),
        },
    };
    (answer, None)
}

/// What the command line asks of `specgen explain`, resolved from its arguments.
#[derive(Debug, Clone)]
pub struct Request {
    pub spec: PathBuf,
    pub method: String,
    pub url: String,
    pub env: Option<String>,
}

/// What `specgen explain` found, for the binary to print.
#[derive(Debug, Default)]
pub struct Report {
    /// Parse and resolve diagnostics, when they stopped the explanation.
    pub diagnostics: Vec<Diagnostic>,
    pub source: Option<String>,
    pub explanation: Option<Explanation>,
    /// A usage or I/O error, with help.
    pub error: Option<(String, String)>,
    pub exit: u8,
}

/// Runs `specgen explain`: a bad request is a usage error (64), an unreadable spec an I/O error
/// (74), a spec that does not parse or resolve is invalid (1); anything else is explained,
/// API Gateway's 404 included (0).
pub fn run(request: &Request) -> Report {
    let mut report = Report::default();
    let line = match parse_request(&request.method, &request.url) {
        Ok(line) => line,
        Err(p) => {
            report.error = Some((p.message, p.help));
            report.exit = exit::USAGE;
            return report;
        }
    };

    let compiled = run::resolve_spec(&request.spec);
    report.source = compiled.source;
    report.diagnostics = compiled.diagnostics.sorted();
    let Some(model) = compiled.model else {
        report.exit = run::spec_failure_exit(&report.diagnostics);
        return report;
    };

    match choose_environment(&model, &line, request.env.as_deref()) {
        Ok((env, chosen_by)) => {
            report.explanation = Some(explain(&model, env, &line, chosen_by));
            report.exit = exit::CLEAN;
        }
        Err(p) => {
            report.error = Some((p.message, p.help));
            report.exit = exit::USAGE;
        }
    }
    report
}

/// The explanation as one JSON object, with the fields the module doc lists.
pub fn render_json(explanation: &Explanation) -> String {
    let mut text = serde_json::to_string_pretty(explanation).expect("explanations serialize");
    text.push('\n');
    text
}

/// The explanation as a reader follows it: entry, route and the rules behind it, backend, who
/// answers, and any disagreement last.
pub fn render_human(e: &Explanation) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));

    field("request", format!("{} {}", e.request.method, e.request.url));
    let chosen = match e.environment.chosen_by {
        ChosenBy::Origin => "the URL's origin",
        ChosenBy::EnvOption => "chosen with --env",
        ChosenBy::Default => "the first deployed environment, for a bare path",
    };
    field("environment", format!("{} at {} ({chosen})", e.environment.name, e.environment.origin));
    let entry = match (e.entry.kind, &e.entry.stage, &e.entry.mapping_key) {
        ("api-endpoint", Some(stage), _) => format!("the API's own endpoint, stage `{stage}`"),
        ("custom-domain", _, Some(key)) if key.is_empty() => {
            "custom domain, API mapping with the empty key".to_string()
        }
        ("custom-domain", _, Some(key)) => format!("custom domain, API mapping key `{key}`"),
        _ => "local, served at the root like an empty mapping key".to_string(),
    };
    let entry = match (&e.entry.path, &e.entry.not_served) {
        (Some(path), _) => format!("{entry}; the route table sees `{path}`"),
        (None, Some(why)) => format!("{entry}; the request cannot reach this API: {why}"),
        (None, None) => entry,
    };
    field("entry", entry);

    let route = match &e.route {
        Some(r) if r.derived => format!("`{}` (derived: {})", r.key, r.purpose),
        Some(r) => format!("`{}` ({}, line {})", r.key, r.purpose, r.line),
        None => format!("none: API Gateway's 404 {GATEWAY_NOT_FOUND}"),
    };
    field("route", route);
    if !e.steps.is_empty() {
        out.push_str("because\n");
        for s in &e.steps {
            let assumed = if s.assumed { ", assumed" } else { "" };
            out.push_str(&format!("  {} row {}{assumed}: {}\n", s.tag, s.row, s.note));
        }
    }
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));
    if !e.runners_up.is_empty() {
        let keys: Vec<String> = e.runners_up.iter().map(|k| format!("`{k}`")).collect();
        field("runners-up", keys.join(", "));
    }
    if !e.assumptions.is_empty() {
        let rows: Vec<String> =
            e.assumptions.iter().map(|r| format!("row {}: {}", r.row, r.rule)).collect();
        field("assumes", rows.join("; "));
    }
    if let Some(a) = &e.ambiguous {
        field(
            "ambiguous",
            format!("`{}` or `{}`: {} row {}, {}", a.winner, a.rival, a.tag, a.row, a.rule),
        );
    }
    if !e.path_parameters.is_empty() {
        let params: Vec<String> =
            e.path_parameters.iter().map(|(k, v)| format!("{k} = `{v}`")).collect();
        field("parameters", params.join(", "));
    }
    if let Some(backend) = &e.backend {
        let served = match &e.router {
            Some(r) => format!("{backend}, served by the generated router crate {}", r.crate_name),
            None => backend.clone(),
        };
        field("backend", served);
    }
    if let Some(auth) = &e.auth {
        let text = match &auth.authorizer {
            Some(a) => format!("{} (authorizer `{a}`)", auth.kind),
            None => auth.kind.to_string(),
        };
        field("auth", text);
    }
    if let Some(router) = &e.router {
        let arm = match router.arm {
            Some(arm) => format!("{arm:?}"),
            None => "none: the router has no arm for this route".to_string(),
        };
        field("router arm", arm);
    }
    let status = match e.answer.status {
        Some(status) => {
            let from = match e.answer.from {
                "api-gateway" => "API Gateway",
                "router" => "the router",
                _ => "the backend",
            };
            format!("{status} from {from}: ")
        }
        None => String::new(),
    };
    field("answer", format!("{status}{}", e.answer.text));
    for d in &e.disagreements {
        field("disagreement", d.clone());
    }
    // A decoded path can hold control characters; on a terminal they would act, not show.
    out.chars()
        .flat_map(
            |c| {
                if c.is_control() && c != '\n' { c.escape_default().collect() } else { vec![c] }
            },
        )
        .collect()
}

/// Whether a query string carries an `access_token` parameter, spelled plainly or escaped, as
/// the generated router checks it.
fn query_has_token(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default().replace('+', " ");
        percent_decode(&name).is_ok_and(|n| n == "access_token")
    })
}

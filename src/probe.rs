//! `specgen probe`: checks a running deployment against its spec, after `pulumi up`.
//!
//! The checks and the compile-time guarantees prove the same things from two sides: [`crate::check`]
//! proves them on the model, before anything is deployed; probe asks the deployment itself.
//! It sends the discovery sequence of an MCP client (the numbered requests of the OAuth
//! discovery contract) and the seed's verification requests to one environment's origin, and
//! compares every answer with the URLs the model derived for that environment:
//!
//! 1. `POST` to each MCP endpoint without a token: a 401 whose `WWW-Authenticate` header, under
//!    exactly that name, is a `Bearer` challenge naming the PRM URL. Then a browser's `OPTIONS`
//!    preflight to it: answered 2xx with `Access-Control-Allow-Origin`, never challenged.
//! 2. `GET` each PRM URL, path-inserted and (where the resource has one) root: JSON, readable
//!    from any origin, with `resource` and `authorization_servers` byte for byte.
//! 3. `GET` the authorization-server metadata on the origin (the legacy request of the
//!    incident), and the issuer's own metadata URL when the issuer shares the origin: JSON,
//!    readable from any origin, with the issuer's own `issuer` value.
//! 4. `POST` an MCP `initialize` with a bearer token, when one is given: 200.
//! 5. `GET` each page a backend names in `pages`: a 200 HTML page, not JSON.
//!
//! `--base-url` replaces the origin that requests are sent to, and nothing else: the answers are
//! still compared with the environment's own URLs, since those are what the deployment must
//! advertise. It suits a proxy, a tunnel or a local gateway that serves the environment's
//! metadata; a local environment run on loopback (as `specgen serve` will) is probed on its own
//! origin. The issuer's host is never contacted: the probe stays on one origin.
//!
//! The client follows no redirects (it reports them), reads no environment proxy, times out
//! each request after [`TIMEOUT`] and reads at most [`MAX_BODY_BYTES`] of a body. The token
//! is sent only with the `initialize` request to the probed origin's MCP endpoint, and is never
//! printed.
//!
//! `--format json` prints one object with the stable fields `spec`, `environment`, `origin`
//! (the environment's), `target` (the origin requests went to), `token` (whether one was
//! given), `reached`, `checks` (each with `check`, `method`, `url`, `outcome`: `pass`, `fail`
//! or `skipped`, and `detail`) and `summary` (`passed`, `failed`, `skipped`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diag::Diagnostic;
use crate::model::{self, EnvModel, EnvResource, Model};
use crate::run::{self, exit};
use crate::url;

/// The environment variable a token is read from when `--token` is not given.
pub const TOKEN_VAR: &str = "SPECGEN_PROBE_TOKEN";

/// The longest one request may take, connection and body included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body probe reads; a larger one fails its check.
pub const MAX_BODY_BYTES: u64 = 1 << 20;

/// The MCP protocol revision probe's `initialize` asks for.
const PROTOCOL_VERSION: &str = "2025-06-18";

/// The `Origin` of probe's preflight: a browser client's page, on a name that never resolves.
const PREFLIGHT_ORIGIN: &str = "https://specgen-probe.invalid";

/// A bearer token. Its `Debug` never shows the value, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token, or `None` for an empty or blank value.
    pub fn new(value: String) -> Option<Token> {
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| Token(trimmed.to_string()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// What the command line asks of `specgen probe`, resolved from its arguments and environment.
#[derive(Debug, Clone)]
pub struct Request {
    pub spec: PathBuf,
    pub env: String,
    pub base_url: Option<String>,
    pub token: Option<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One check on one answer.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked, a stable kebab-case name such as `prm-resource`.
    pub check: &'static str,
    pub method: &'static str,
    /// The URL the request went to.
    pub url: String,
    pub outcome: Outcome,
    /// What was found, or why the check failed or was skipped.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Everything one run of the probe found.
#[derive(Debug, Clone, Serialize)]
pub struct Probed {
    pub spec: String,
    pub environment: String,
    pub origin: String,
    pub target: String,
    pub token: bool,
    /// False when the first request got no HTTP answer; the other requests were then not sent.
    pub reached: bool,
    pub checks: Vec<Check>,
    pub summary: Summary,
}

impl Probed {
    /// 0 when every check passed or was skipped, 1 when one failed, 74 when nothing answered.
    pub fn exit(&self) -> u8 {
        if !self.reached {
            exit::IO
        } else if self.summary.failed > 0 {
            exit::INVALID
        } else {
            exit::CLEAN
        }
    }
}

/// What `specgen probe` found, for the binary to print.
#[derive(Debug, Default)]
pub struct Report {
    /// Parse and resolve diagnostics, when they stopped the probe.
    pub diagnostics: Vec<Diagnostic>,
    pub source: Option<String>,
    pub probed: Option<Probed>,
    /// A usage error, or why the deployment could not be reached, with help.
    pub error: Option<(String, String)>,
    pub exit: u8,
}

/// Runs `specgen probe`: a bad environment or base URL is a usage error (64), an unreadable
/// spec or an unreachable deployment an I/O error (74), a spec that does not parse or resolve
/// is invalid (1), and otherwise the exit code is the checks' (0 or 1).
pub fn run(request: &Request) -> Report {
    let mut report = Report::default();
    let target = match request.base_url.as_deref().map(parse_base_url).transpose() {
        Ok(target) => target,
        Err((message, help)) => {
            report.error = Some((message, help));
            report.exit = exit::USAGE;
            return report;
        }
    };

    let compiled = run::resolve_spec(&request.spec);
    report.source = compiled.source;
    report.diagnostics = compiled.diagnostics.sorted();
    let Some(model) = compiled.model else {
        let unreadable = report.diagnostics.iter().any(|d| d.code == "spec-unreadable");
        report.exit = if unreadable { exit::IO } else { exit::INVALID };
        return report;
    };
    let Some(env) = model.environments.iter().find(|e| e.name == request.env) else {
        let names: Vec<&str> = model.environments.iter().map(|e| e.name.as_str()).collect();
        report.error = Some((
            format!("the spec has no environment `{}`", request.env.escape_debug()),
            format!("use one of: {}", names.join(", ")),
        ));
        report.exit = exit::USAGE;
        return report;
    };

    let target = target.unwrap_or_else(|| env.origin.clone());
    tracing::debug!(environment = %env.name, %target, "probing");
    let probed = probe(&model, env, &target, request.token.as_ref());
    report.exit = probed.exit();
    if !probed.reached {
        let why = probed.checks.first().map(|c| c.detail.clone()).unwrap_or_default();
        report.error = Some((
            format!("the deployment at {target} did not answer: {why}"),
            "check that the stack is deployed and the origin resolves; --base-url sends the \
             requests elsewhere"
                .into(),
        ));
    }
    report.probed = Some(probed);
    report
}

/// Checks `--base-url`: an http(s) origin, http only on loopback, since a token may be sent to
/// it. A trailing `/` is dropped; any other path is refused, because probe adds the
/// environment's own paths.
pub fn parse_base_url(text: &str) -> Result<String, (String, String)> {
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let parsed = url::parse(trimmed).map_err(|p| (format!("--base-url: {}", p.message), p.help))?;
    if !parsed.path.is_empty() {
        return Err((
            format!("--base-url `{text}` has the path `{}`", parsed.path),
            format!(
                "give an origin only, e.g. `{}`: probe adds the environment's paths itself",
                parsed.origin()
            ),
        ));
    }
    if parsed.scheme == "http" && !parsed.is_loopback() {
        return Err((
            format!("--base-url `{text}` is plain http on a host that is not loopback"),
            "use https, or an http URL on 127.0.0.1 or localhost".into(),
        ));
    }
    Ok(parsed.origin())
}

/// Probes one environment of a model on `target`, an origin that stands in for the
/// environment's own. This is the library entry point, for tests and for other commands.
pub fn probe(model: &Model, env: &EnvModel, target: &str, token: Option<&Token>) -> Probed {
    let mut prober = Prober {
        client: Client::new(),
        env,
        target,
        checks: Vec::new(),
        sent: 0,
        unreachable_after_first: None,
    };

    if let Some(oauth) = &model.oauth {
        // The discovery sequence, in the order a client sends it.
        for resource in &env.resources {
            prober.unauthenticated(resource);
            prober.preflight(resource);
            prober.document(Document::Prm { root: false, resource }, &resource.prm_url);
            if let Some(root) = &resource.root_prm_url {
                prober.document(Document::Prm { root: true, resource }, root);
            }
        }
        let legacy = format!("{}/.well-known/oauth-authorization-server", env.origin);
        let issuer_on_origin = url::split_origin(&env.as_metadata_url).0 == env.origin;
        if issuer_on_origin && env.as_metadata_url != legacy {
            prober.document(Document::AsMetadata { issuers: true }, &env.as_metadata_url);
        }
        // As in the checks: the legacy URL is required when a backend serves metadata on the
        // origin, or when it is one of the issuer's own metadata URLs.
        let legacy_is_issuers = model::issuer_paths_on_origin(env)
            .is_some_and(|paths| paths.iter().any(|p| format!("{}{p}", env.origin) == legacy));
        if !oauth.metadata_backend.is_empty() || legacy_is_issuers {
            prober.document(Document::AsMetadata { issuers: false }, &legacy);
        }
        for resource in &env.resources {
            prober.initialize(resource, token);
        }
    }
    for backend in &model.backends {
        for page in &backend.pages {
            prober.page(&backend.name, &format!("{}{page}", env.base_url));
        }
    }

    let mut summary = Summary::default();
    for check in &prober.checks {
        match check.outcome {
            Outcome::Pass => summary.passed += 1,
            Outcome::Fail => summary.failed += 1,
            Outcome::Skipped => summary.skipped += 1,
        }
    }
    Probed {
        spec: model.source.file.clone(),
        environment: env.name.clone(),
        origin: env.origin.clone(),
        target: target.to_string(),
        token: token.is_some(),
        reached: prober.unreachable_after_first.is_none(),
        checks: prober.checks,
        summary,
    }
}

/// A metadata document and what its fields must say.
#[derive(Clone, Copy)]
enum Document<'a> {
    /// Protected resource metadata, path-inserted or (`root`) at the root.
    Prm { root: bool, resource: &'a EnvResource },
    /// Authorization-server metadata on the origin: the legacy URL, or the issuer's own.
    AsMetadata { issuers: bool },
}

impl Document<'_> {
    /// The names of its checks, in the order they are reported: JSON, CORS, then the fields.
    fn checks(self) -> &'static [&'static str] {
        match self {
            Document::Prm { root: false, .. } => {
                &["prm-json", "prm-cors", "prm-resource", "prm-authorization-servers"]
            }
            Document::Prm { root: true, .. } => &[
                "root-prm-json",
                "root-prm-cors",
                "root-prm-resource",
                "root-prm-authorization-servers",
            ],
            Document::AsMetadata { issuers: true } => {
                &["issuer-metadata-json", "issuer-metadata-cors", "issuer-metadata-issuer"]
            }
            Document::AsMetadata { issuers: false } => {
                &["as-metadata-json", "as-metadata-cors", "as-metadata-issuer"]
            }
        }
    }
}

struct Prober<'a> {
    client: Client,
    env: &'a EnvModel,
    target: &'a str,
    checks: Vec<Check>,
    sent: usize,
    /// Why the first request got no answer; nothing is sent after it.
    unreachable_after_first: Option<String>,
}

/// The result of one request.
enum Fetched {
    Answer(Answer),
    /// The request was sent and got no HTTP answer.
    Failed(String),
    /// The request was not sent.
    NotSent(String),
}

impl Prober<'_> {
    /// `url`, one of the environment's URLs, on the probed origin. Only the path is kept, so
    /// no request (and no token) can go to another host.
    fn on_target(&self, url: &str) -> String {
        let (origin, path) = url::split_origin(url);
        debug_assert_eq!(origin, self.env.origin, "probe sends only the environment's URLs");
        format!("{}{path}", self.target)
    }

    fn fetch(&mut self, method: &'static str, url: &str, payload: Payload<'_>) -> Fetched {
        if self.unreachable_after_first.is_some() {
            return Fetched::NotSent("not sent: the first request got no answer".into());
        }
        self.sent += 1;
        match self.client.send(url, payload) {
            Ok(answer) => {
                tracing::debug!(method, url, status = answer.status, "answered");
                Fetched::Answer(answer)
            }
            Err(why) => {
                tracing::debug!(method, url, %why, "no answer");
                if self.sent == 1 {
                    self.unreachable_after_first = Some(why.clone());
                }
                Fetched::Failed(why)
            }
        }
    }

    fn push(
        &mut self,
        check: &'static str,
        method: &'static str,
        url: &str,
        outcome: Outcome,
        detail: String,
    ) {
        self.checks.push(Check { check, method, url: url.to_string(), outcome, detail });
    }

    /// Records the checks of a request that got no answer: the first fails (or is skipped
    /// when the request was not sent), the ones that depend on it are skipped.
    fn no_answer(
        &mut self,
        method: &'static str,
        url: &str,
        fetched: Fetched,
        checks: &[&'static str],
    ) {
        let (first, why) = match fetched {
            Fetched::Failed(why) => (Outcome::Fail, format!("no answer: {why}")),
            Fetched::NotSent(why) => (Outcome::Skipped, why),
            Fetched::Answer(_) => unreachable!("only called without an answer"),
        };
        for (i, check) in checks.iter().enumerate() {
            let outcome = if i == 0 { first } else { Outcome::Skipped };
            let detail = if i == 0 { why.clone() } else { format!("see {}", checks[0]) };
            self.push(check, method, url, outcome, detail);
        }
    }

    /// Step 1: the MCP endpoint without a token must challenge.
    fn unauthenticated(&mut self, resource: &EnvResource) {
        let url = self.on_target(&resource.resource_url);
        let fetched = self.fetch("POST", &url, Payload::Initialize { token: None });
        let answer = match fetched {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("POST", &url, other, &["mcp-401", "mcp-challenge"]),
        };

        if answer.status == 401 {
            self.push("mcp-401", "POST", &url, Outcome::Pass, "401 without a token".into());
        } else {
            let detail = format!("expected 401 without a token, got {}", answer.describe());
            self.push("mcp-401", "POST", &url, Outcome::Fail, detail);
            let detail = "no 401 to read a challenge from (see mcp-401)".to_string();
            return self.push("mcp-challenge", "POST", &url, Outcome::Skipped, detail);
        }

        let (outcome, detail) = challenge_verdict(&answer, &resource.prm_url);
        self.push("mcp-challenge", "POST", &url, outcome, detail);
    }

    /// Steps 3, 5, 6 and 7: a discovery document must be a JSON object readable from any
    /// origin, whose fields name this environment's URLs byte for byte.
    fn document(&mut self, document: Document<'_>, env_url: &str) {
        let names = document.checks();
        let url = self.on_target(env_url);
        let answer = match self.fetch("GET", &url, Payload::Accept("application/json")) {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("GET", &url, other, names),
        };

        let object = match json_verdict(&answer) {
            Ok(object) => {
                let detail = format!("200 {}, a JSON object", answer.media_type());
                self.push(names[0], "GET", &url, Outcome::Pass, detail);
                object
            }
            Err(why) => {
                self.push(names[0], "GET", &url, Outcome::Fail, why);
                for name in &names[1..] {
                    let detail = format!("not a metadata document (see {})", names[0]);
                    self.push(name, "GET", &url, Outcome::Skipped, detail);
                }
                return;
            }
        };

        match answer.header("access-control-allow-origin") {
            Some(value) => {
                let detail = format!("Access-Control-Allow-Origin: {value}");
                self.push(names[1], "GET", &url, Outcome::Pass, detail);
            }
            None => {
                let detail = "no Access-Control-Allow-Origin header, so browser clients cannot \
                              read the document"
                    .to_string();
                self.push(names[1], "GET", &url, Outcome::Fail, detail);
            }
        }

        let issuer = &self.env.issuer;
        match document {
            Document::Prm { resource, .. } => {
                let (outcome, detail) = resource_verdict(&object, resource);
                self.push(names[2], "GET", &url, outcome, detail);
                let (outcome, detail) = servers_verdict(&object, issuer);
                self.push(names[3], "GET", &url, outcome, detail);
            }
            Document::AsMetadata { .. } => {
                let (outcome, detail) = issuer_verdict(&object, issuer);
                self.push(names[2], "GET", &url, outcome, detail);
            }
        }
    }

    /// A browser client's preflight to the MCP endpoint carries no credentials, so it must
    /// be answered, never challenged: a gateway authorizer on it breaks every browser client.
    fn preflight(&mut self, resource: &EnvResource) {
        let url = self.on_target(&resource.resource_url);
        let answer = match self.fetch("OPTIONS", &url, Payload::Preflight) {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("OPTIONS", &url, other, &["mcp-preflight"]),
        };
        let allow_origin = answer.header("access-control-allow-origin");
        let (outcome, detail) = match (answer.status, allow_origin) {
            (200..=299, Some(value)) => (
                Outcome::Pass,
                format!("{} with Access-Control-Allow-Origin: {value}", answer.status),
            ),
            (200..=299, None) => (
                Outcome::Fail,
                format!(
                    "{} without Access-Control-Allow-Origin, so browsers refuse the POST",
                    answer.status
                ),
            ),
            (401 | 403, _) => (
                Outcome::Fail,
                format!(
                    "{}: a preflight carries no credentials, so nothing may challenge or deny \
                     it (an authorizer on OPTIONS?)",
                    answer.describe()
                ),
            ),
            _ => (
                Outcome::Fail,
                format!("expected a 2xx preflight answer, got {}", answer.describe()),
            ),
        };
        self.push("mcp-preflight", "OPTIONS", &url, outcome, detail);
    }

    /// The seed's check with a token: an MCP `initialize` gets a 200.
    fn initialize(&mut self, resource: &EnvResource, token: Option<&Token>) {
        let url = self.on_target(&resource.resource_url);
        let Some(token) = token else {
            let detail = format!("no token: pass --token or set {TOKEN_VAR}");
            return self.push("mcp-initialize", "POST", &url, Outcome::Skipped, detail);
        };
        let answer = match self.fetch("POST", &url, Payload::Initialize { token: Some(token) }) {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("POST", &url, other, &["mcp-initialize"]),
        };
        let media = answer.media_type();
        let (outcome, detail) = if answer.status != 200 {
            (Outcome::Fail, format!("expected 200 with the token, got {}", answer.describe()))
        } else if media != "application/json" && media != "text/event-stream" {
            let detail = format!("200, but `{media}` is neither JSON nor an event stream");
            (Outcome::Fail, detail)
        } else {
            (Outcome::Pass, format!("200 {media}: the MCP server initialized"))
        };
        self.push("mcp-initialize", "POST", &url, outcome, detail);
    }

    /// A page the spec names must still be served as HTML by its backend.
    fn page(&mut self, backend: &str, env_url: &str) {
        let url = self.on_target(env_url);
        let answer = match self.fetch("GET", &url, Payload::Accept("text/html")) {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("GET", &url, other, &["page"]),
        };
        let media = answer.media_type();
        let (outcome, detail) = if answer.status == 200 && media == "text/html" {
            (Outcome::Pass, format!("200 text/html, a page of backend `{backend}`"))
        } else if answer.json_object().is_ok() {
            let detail = format!(
                "expected a page of backend `{backend}`, got {} with a JSON object: another \
                 backend, such as the MCP router, took the route",
                answer.describe()
            );
            (Outcome::Fail, detail)
        } else {
            let detail = format!(
                "expected a 200 text/html page of backend `{backend}`, got {}",
                answer.describe()
            );
            (Outcome::Fail, detail)
        };
        self.push("page", "GET", &url, outcome, detail);
    }
}

/// The body as a JSON object, or why it is not the JSON a client expects.
fn json_verdict(answer: &Answer) -> Result<Map<String, Value>, String> {
    let media = answer.media_type();
    if answer.looks_like_html() {
        return Err(format!(
            "answered {} with HTML, not JSON: the request reached a web page instead of the \
             metadata, as in the outage this tool comes from",
            answer.describe()
        ));
    }
    if answer.status != 200 {
        return Err(format!("expected 200 with JSON, got {}", answer.describe()));
    }
    if media != "application/json" {
        return Err(format!("the content type is `{media}`, not application/json"));
    }
    answer.json_object().map_err(|why| format!("the body is not a JSON object: {why}"))
}

fn resource_verdict(object: &Map<String, Value>, resource: &EnvResource) -> (Outcome, String) {
    let expected = &resource.resource_url;
    match object.get("resource") {
        Some(Value::String(found)) if found == expected => {
            (Outcome::Pass, format!("resource is {expected}"))
        }
        Some(Value::String(found)) => {
            let path = url::split_origin(found).1;
            let mount: Vec<&str> = resource.mount.split('/').filter(|s| !s.is_empty()).collect();
            let doubled = if url::doubled_segments(path, &mount) {
                "; the mount path is doubled, as when a base URL that already holds it gets the \
                 mount path appended"
            } else {
                ""
            };
            let detail = format!(
                "resource is `{}`, not the resource URL `{expected}` byte for byte{doubled}",
                found.escape_debug()
            );
            (Outcome::Fail, detail)
        }
        Some(other) => (Outcome::Fail, format!("resource is {other}, not a string")),
        None => (Outcome::Fail, "the document has no `resource`".into()),
    }
}

fn servers_verdict(object: &Map<String, Value>, issuer: &str) -> (Outcome, String) {
    match object.get("authorization_servers") {
        Some(Value::Array(servers)) if servers.iter().any(|s| s.as_str() == Some(issuer)) => {
            (Outcome::Pass, format!("authorization_servers names {issuer}"))
        }
        Some(Value::Array(servers)) => {
            let found = Value::Array(servers.clone());
            let detail = format!(
                "authorization_servers is {found}, without the issuer `{issuer}` byte for byte"
            );
            (Outcome::Fail, detail)
        }
        Some(other) => (Outcome::Fail, format!("authorization_servers is {other}, not an array")),
        None => (Outcome::Fail, "the document has no `authorization_servers`".into()),
    }
}

fn issuer_verdict(object: &Map<String, Value>, issuer: &str) -> (Outcome, String) {
    match object.get("issuer") {
        Some(Value::String(found)) if found == issuer => {
            (Outcome::Pass, format!("issuer is {issuer}"))
        }
        Some(Value::String(found)) => {
            let detail = format!(
                "issuer is `{}`, not `{issuer}` byte for byte; forwarded metadata must keep the \
                 issuer's own value",
                found.escape_debug()
            );
            (Outcome::Fail, detail)
        }
        Some(other) => (Outcome::Fail, format!("issuer is {other}, not a string")),
        None => (Outcome::Fail, "the document has no `issuer`".into()),
    }
}

/// Whether a 401 carries the challenge clients read: `WWW-Authenticate` under that name, a
/// `Bearer` challenge with `resource_metadata` set to the PRM URL exactly.
fn challenge_verdict(answer: &Answer, prm_url: &str) -> (Outcome, String) {
    let challenges: Vec<&str> = answer.headers_named("www-authenticate").collect();
    if challenges.is_empty() {
        let renamed: Vec<&str> = answer.headers_named("x-amzn-remapped-www-authenticate").collect();
        let detail = match renamed.first() {
            Some(value) => format!(
                "no WWW-Authenticate header: the challenge arrived renamed as \
                 x-amzn-remapped-www-authenticate (`{}`), which clients do not read",
                value.escape_debug()
            ),
            None => "the 401 has no WWW-Authenticate header".into(),
        };
        return (Outcome::Fail, detail);
    }
    let Some(bearer) = challenges.iter().find(|c| is_bearer(c)) else {
        let detail = format!(
            "WWW-Authenticate is `{}`, not a Bearer challenge",
            challenges.join(", ").escape_debug()
        );
        return (Outcome::Fail, detail);
    };
    match auth_param(bearer, "resource_metadata") {
        Some(found) if found == prm_url => {
            (Outcome::Pass, format!("Bearer challenge with resource_metadata=\"{prm_url}\""))
        }
        Some(found) => {
            let detail = format!(
                "resource_metadata is `{}`, not the PRM URL `{prm_url}`",
                found.escape_debug()
            );
            (Outcome::Fail, detail)
        }
        None => {
            let detail = format!(
                "the Bearer challenge `{}` has no resource_metadata",
                bearer.escape_debug()
            );
            (Outcome::Fail, detail)
        }
    }
}

fn is_bearer(challenge: &str) -> bool {
    let scheme = challenge.trim_start().split([' ', ',']).next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("bearer")
}

/// The value of `name=` in a challenge's parameters, unquoted. Quoted values may hold commas
/// and escaped quotes (RFC 9110 section 11.2), so the parameters are read, not split.
fn auth_param(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge.trim_start();
    let mut chars = rest[rest.find(' ').unwrap_or(rest.len())..].chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().into()
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

/// One HTTP answer, with header names lowercased.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    /// The content type without parameters, lowercase; `""` when there is none.
    fn media_type(&self) -> String {
        let value = self.header("content-type").unwrap_or_default();
        value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }

    fn json_object(&self) -> Result<Map<String, Value>, String> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(other) => Err(format!("a JSON {}", json_kind(&other))),
            Err(e) => Err(e.to_string()),
        }
    }

    fn looks_like_html(&self) -> bool {
        let start = String::from_utf8_lossy(&self.body[..self.body.len().min(64)]).to_lowercase();
        self.media_type() == "text/html"
            || start.trim_start().starts_with("<!doctype html")
            || start.trim_start().starts_with("<html")
    }

    /// `404 text/html`, or `302 to https://x` for a redirect, for failure messages.
    fn describe(&self) -> String {
        let media = match self.media_type() {
            m if m.is_empty() => "without a content type".to_string(),
            m => m,
        };
        match self.header("location") {
            Some(location) if (300..400).contains(&self.status) => format!(
                "{} redirecting to `{}` (probe follows no redirects, and clients may not either)",
                self.status,
                location.escape_debug()
            ),
            _ => format!("{} {media}", self.status),
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What a request carries besides its method and URL.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// A GET that prefers this media type.
    Accept(&'static str),
    /// An MCP `initialize`, with a bearer token or without one.
    Initialize { token: Option<&'a Token> },
    /// A browser's CORS preflight for a POST with a token.
    Preflight,
}

/// The HTTP client: no redirects, no proxy, a timeout and a size limit on every request.
struct Client {
    agent: ureq::Agent,
}

impl Client {
    fn new() -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("specgen-probe/", env!("CARGO_PKG_VERSION")))
            .build();
        Client { agent: config.into() }
    }

    fn send(&self, url: &str, payload: Payload<'_>) -> Result<Answer, String> {
        let result = match payload {
            Payload::Accept(media) => self.agent.get(url).header("accept", media).call(),
            Payload::Initialize { token } => {
                let mut request = self
                    .agent
                    .post(url)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-protocol-version", PROTOCOL_VERSION);
                if let Some(token) = token {
                    request = request.header("authorization", format!("Bearer {}", token.0));
                }
                request.send(initialize_body())
            }
            Payload::Preflight => self
                .agent
                .options(url)
                .header("origin", PREFLIGHT_ORIGIN)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .call(),
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| format!("{status} answered, but the body could not be read: {e}"))?;
        Ok(Answer { status, headers, body })
    }
}

fn initialize_body() -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "specgen-probe", "version": env!("CARGO_PKG_VERSION") },
        },
    })
    .to_string()
}

/// The checks one per line, `outcome  check  METHOD URL: detail`, and a summary.
pub fn render_human(probed: &Probed) -> String {
    let mut out = format!(
        "probing environment `{}` of {} at {}",
        probed.environment, probed.spec, probed.target
    );
    if probed.target != probed.origin {
        out.push_str(&format!(" (metadata compared with {})", probed.origin));
    }
    out.push('\n');
    for c in &probed.checks {
        out.push_str(&format!(
            "{:<7}  {:<30} {} {}: {}\n",
            c.outcome.as_str(),
            c.check,
            c.method,
            c.url,
            c.detail
        ));
    }
    let s = probed.summary;
    out.push_str(&format!("{} passed, {} failed, {} skipped\n", s.passed, s.failed, s.skipped));
    out
}

/// The result as one JSON object, with the fields the module doc lists.
pub fn render_json(probed: &Probed) -> String {
    let mut text = serde_json::to_string_pretty(probed).expect("probe results serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_challenge_parameters() {
        let c = r#"Bearer realm="a, b", resource_metadata="https://h/.well-known/x/mcp", scope="openid""#;
        assert!(is_bearer(c));
        assert_eq!(
            auth_param(c, "resource_metadata").as_deref(),
            Some("https://h/.well-known/x/mcp")
        );
        assert_eq!(auth_param(c, "realm").as_deref(), Some("a, b"));
        assert_eq!(auth_param(c, "error"), None);
        assert_eq!(auth_param(r#"Bearer a="x\"y""#, "a").as_deref(), Some("x\"y"));
        assert_eq!(auth_param("Bearer error=invalid_token, b=c", "b").as_deref(), Some("c"));
        assert!(!is_bearer(r#"Basic realm="x""#));
    }

    #[test]
    fn base_urls_are_origins_and_plain_http_only_on_loopback() {
        assert_eq!(parse_base_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(parse_base_url("https://proxy.example").unwrap(), "https://proxy.example");
        assert!(parse_base_url("http://proxy.example").is_err());
        assert!(parse_base_url("https://h/mcp").is_err());
        assert!(parse_base_url("ftp://h").is_err());
    }

    #[test]
    fn a_token_never_shows_in_debug() {
        let token = Token::new("secret-value".into()).unwrap();
        assert_eq!(format!("{token:?}"), "Token(..)");
        assert!(Token::new("  ".into()).is_none());
    }
}

//! `specgen probe`: checks a running deployment against its spec, after `pulumi up`.
//!
//! The checks and the compile-time guarantees prove the same things from two sides:
//! [`crate::check`] proves them on the model, before anything is deployed; probe asks the
//! deployment itself. It sends the discovery sequence of an MCP client (the numbered requests
//! of the OAuth discovery contract) and the seed's verification requests to one environment's
//! origin, and compares every answer with the URLs the model derived for that environment:
//!
//! 1. `POST` to each MCP endpoint without a token: a 401 whose `WWW-Authenticate` header, under
//!    exactly that name, holds a `Bearer` challenge naming the PRM URL. The header may hold
//!    other challenges too, and may come as several lines (RFC 9110 section 11.6.1); the first
//!    `Bearer` challenge among them is judged. The official clients read the header more
//!    simply, so no other `resource_metadata=` may appear in it, and a header that does not
//!    start with the `Bearer` challenge is a warning: the TypeScript client ignores it. Then a
//!    browser's `OPTIONS` preflight to it: answered 2xx, never challenged, with an
//!    `Access-Control-Allow-Origin` browsers accept and the POST's headers allowed.
//! 2. `GET` each PRM URL, path-inserted and (where the resource has one) root: JSON, readable
//!    from any origin, with `resource` byte for byte and the issuer first in
//!    `authorization_servers`, the one entry clients use.
//! 3. `GET` the authorization-server metadata on the origin (the legacy request of the
//!    incident), and the issuer's own metadata URL when the issuer shares the origin: JSON,
//!    readable from any origin, with the issuer's own `issuer` value.
//! 4. `POST` an MCP `initialize` with a bearer token, when one is given: 200 with a JSON-RPC
//!    result, as JSON or as the first message of an event stream.
//! 5. `GET` each page a backend names in `pages`: a 200 HTML page, not JSON.
//!
//! `--base-url` replaces the origin that requests are sent to, and nothing else: the answers are
//! still compared with the environment's own URLs, since those are what the deployment must
//! advertise. It suits a proxy, a tunnel or a local gateway that serves the environment's
//! metadata; a local environment run on loopback (as `specgen serve` will) is probed on its own
//! origin. The issuer's host is never contacted: the probe stays on one origin.
//!
//! The client follows no redirects (it reports them), reads no environment proxy, times out
//! each request after [`TIMEOUT`] and reads at most [`MAX_BODY_BYTES`] of a body. An answer
//! whose body is larger, or breaks off, is still an answer: the checks that judge a status and
//! headers judge them, and only the checks that read the body fail, saying why. An event stream
//! is read only up to its first message that answers the request. "No answer" means that no
//! status line came back.
//!
//! The token is sent only with the `initialize` request to the probed origin's MCP endpoint,
//! and is never printed: a token that cannot be sent in a header is refused before any request,
//! and a server that echoes the token back has it replaced by `[token]`, in any ASCII case,
//! in every answer as it arrives and again in every detail.
//!
//! A check passes, warns (a client still works, but one official client does less than the
//! deployment means it to), fails or is skipped; only a failure makes the exit code 1.
//!
//! `--format json` prints one object with the stable fields `spec`, `environment`, `origin`
//! (the environment's), `target` (the origin requests went to), `token` (whether one was
//! given), `reached`, `checks` (each with `check`, `method`, `url`, `outcome`: `pass`, `warn`,
//! `fail` or `skipped`, and `detail`) and `summary` (`passed`, `warned`, `failed`, `skipped`).

use std::io::Read;
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

/// The headers of an MCP client's POST that a browser asks the preflight about, as a browser
/// names them: lowercase and sorted. None is CORS-safelisted: the token, the JSON content type
/// (a form cannot send it) and the protocol revision, which clients send on every request after
/// `initialize` and probe sends on that one too.
const PREFLIGHT_HEADERS: [&str; 3] = ["authorization", "content-type", "mcp-protocol-version"];

/// The schemes whose challenge the TypeScript client reads, when the header starts with one.
const TYPESCRIPT_SCHEMES: [&str; 2] = ["bearer", "dpop"];

/// A bearer token. Its `Debug` never shows the value, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token, or `None` for an empty or blank value.
    pub fn new(value: String) -> Option<Token> {
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| Token(trimmed.to_string()))
    }

    /// Why the token cannot be sent as `Authorization: Bearer <token>`, or `None` when it can.
    /// A bearer token is visible ASCII (RFC 6750 section 2.1 allows a subset of it): a CR or LF
    /// would end the header early, and a space or anything outside ASCII is not one token. The
    /// reason names the character's kind and position, never the token itself.
    fn unsendable(&self) -> Option<String> {
        let (at, c) = self.0.chars().enumerate().find(|(_, c)| !c.is_ascii_graphic())?;
        let kind = match c {
            '\r' => "a carriage return (CR)".to_string(),
            '\n' => "a line feed (LF)".to_string(),
            ' ' => "a space".to_string(),
            '\t' => "a tab".to_string(),
            c if c.is_control() => format!("the control character U+{:04X}", u32::from(c)),
            _ => "a non-ASCII character".to_string(),
        };
        Some(format!(
            "the token holds {kind} at character {}, so it cannot be sent in an Authorization \
             header",
            at + 1
        ))
    }

    /// `text` with the token replaced by `[token]`. Only a server can put the token into a
    /// detail, by echoing it back (in a redirect's `Location`, say), and the report must not
    /// carry it further.
    fn redact(&self, text: &str) -> String {
        // The forms replaced are whole UTF-8 strings, so the text between them stays valid.
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes())).into_owned()
    }

    /// `bytes` with the token replaced by `[token]`: as sent, and as a message (`escape_debug`)
    /// or JSON escapes it, since details show values both ways, and in any ASCII case, since
    /// probe lowercases some values (a content type) and a hex token lowercased is the whole
    /// secret.
    fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let json = Value::from(self.0.as_str()).to_string();
        let mut forms = vec![
            self.0.clone(),
            self.0.escape_debug().to_string(),
            json[1..json.len() - 1].to_string(),
        ];
        // The longest first, so that an escaped form is replaced whole before a part of it is.
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        forms.iter().fold(bytes.to_vec(), |text, form| {
            replace_ignoring_ascii_case(&text, form.as_bytes(), b"[token]")
        })
    }
}

/// `haystack` with every occurrence of `needle`, compared ignoring ASCII case, replaced.
fn replace_ignoring_ascii_case(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut at = 0;
    while at < haystack.len() {
        let rest = &haystack[at..];
        if !needle.is_empty()
            && rest.len() >= needle.len()
            && rest[..needle.len()].eq_ignore_ascii_case(needle)
        {
            out.extend_from_slice(with);
            at += needle.len();
        } else {
            out.push(haystack[at]);
            at += 1;
        }
    }
    out
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
    /// The deployment works with the official clients, but one of them does less with it than
    /// the deployment means it to (it ignores a challenge, say). It does not fail the probe.
    Warn,
    Fail,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
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
    pub warned: usize,
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
    /// 0 when no check failed (warnings allowed), 1 when one failed, 74 when nothing answered.
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

/// Runs `specgen probe`: a bad environment, base URL or token is a usage error (64), an
/// unreadable spec or an unreachable deployment an I/O error (74), a spec that does not parse
/// or resolve is invalid (1), and otherwise the exit code is the checks' (0 or 1).
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
    // Refused before anything is sent: the request that would carry the token is the last one,
    // and a report whose other checks passed would hide that the token was never tried.
    if let Some(why) = request.token.as_ref().and_then(Token::unsendable) {
        let help = format!(
            "a bearer token is printable ASCII without spaces (RFC 6750); check what --token or \
             {TOKEN_VAR} holds (the token is not printed)"
        );
        report.error = Some((why, help));
        report.exit = exit::USAGE;
        return report;
    }

    let compiled = run::resolve_spec(&request.spec);
    report.source = compiled.source;
    report.diagnostics = compiled.diagnostics.sorted();
    let Some(model) = compiled.model else {
        report.exit = run::spec_failure_exit(&report.diagnostics);
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
        let detail = probed.checks.first().map(|c| c.detail.as_str()).unwrap_or_default();
        let why = detail.strip_prefix("no answer: ").unwrap_or(detail);
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
        token,
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

    // Answers were redacted as they arrived; this catches the token in the values a check
    // decoded from them, such as an unquoted parameter or a JSON string with escapes.
    if let Some(token) = token {
        for check in &mut prober.checks {
            check.detail = token.redact(&check.detail);
        }
    }
    let mut summary = Summary::default();
    for check in &prober.checks {
        match check.outcome {
            Outcome::Pass => summary.passed += 1,
            Outcome::Warn => summary.warned += 1,
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
    /// The token, to redact from every answer as it arrives.
    token: Option<&'a Token>,
    checks: Vec<Check>,
    sent: usize,
    /// Why the first request got no answer; nothing is sent after it.
    unreachable_after_first: Option<String>,
}

/// The result of one request.
enum Fetched {
    /// A status line came back, whether or not its body could be read.
    Answer(Answer),
    /// The request was sent and no status line came back.
    NoAnswer(String),
    /// The request could not be built as asked, a header HTTP cannot carry for one.
    Unsendable(String),
    /// The request was not sent, because the first request got no answer.
    Skipped(String),
}

impl Fetched {
    fn redact(&mut self, token: &Token) {
        match self {
            Fetched::Answer(answer) => answer.redact(token),
            Fetched::NoAnswer(why) | Fetched::Unsendable(why) => *why = token.redact(why),
            Fetched::Skipped(_) => {}
        }
    }
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
            return Fetched::Skipped("not sent: the first request got no answer".into());
        }
        let mut fetched = self.client.send(url, payload);
        // Before any check reads the answer, and before it is logged: a check may shorten,
        // lowercase or unescape a value, and no form of the token may come out of that.
        if let Some(token) = self.token {
            fetched.redact(token);
        }
        match &fetched {
            Fetched::Answer(answer) => {
                self.sent += 1;
                tracing::debug!(method, url, status = answer.status, "answered");
            }
            Fetched::NoAnswer(why) => {
                self.sent += 1;
                tracing::debug!(method, url, %why, "no answer");
                if self.sent == 1 {
                    self.unreachable_after_first = Some(why.clone());
                }
            }
            Fetched::Unsendable(why) => tracing::debug!(method, url, %why, "not sent"),
            Fetched::Skipped(_) => unreachable!("the client sends or fails to"),
        }
        fetched
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
    /// when the first request got no answer either), the ones that depend on it are skipped.
    fn no_answer(
        &mut self,
        method: &'static str,
        url: &str,
        fetched: Fetched,
        checks: &[&'static str],
    ) {
        let (first, why) = match fetched {
            Fetched::NoAnswer(why) => (Outcome::Fail, format!("no answer: {why}")),
            Fetched::Unsendable(why) => (Outcome::Fail, format!("not sent: {why}")),
            Fetched::Skipped(why) => (Outcome::Skipped, why),
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

        // The status and the challenge are what a client reads here; the body is not judged,
        // so a body probe could not read is only noted.
        let note = answer.unread_note();
        if answer.status == 401 {
            let detail = format!("401 without a token{note}");
            self.push("mcp-401", "POST", &url, Outcome::Pass, detail);
        } else {
            let detail = format!("expected 401 without a token, got {}{note}", answer.describe());
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

        match allow_origin_verdict(&answer) {
            Ok(value) => {
                let detail = format!("Access-Control-Allow-Origin: {value}");
                self.push(names[1], "GET", &url, Outcome::Pass, detail);
            }
            Err(why) => {
                let detail = format!("{why}, so browser clients cannot read the document");
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
        let (outcome, mut detail) = match answer.status {
            200..=299 => preflight_verdict(&answer),
            401 | 403 => (
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
        detail.push_str(&answer.unread_note());
        self.push("mcp-preflight", "OPTIONS", &url, outcome, detail);
    }

    /// The seed's check with a token: an MCP `initialize` gets a 200 with a JSON-RPC result.
    fn initialize(&mut self, resource: &EnvResource, token: Option<&Token>) {
        let url = self.on_target(&resource.resource_url);
        let Some(token) = token else {
            let detail = format!("no token: pass --token or set {TOKEN_VAR}");
            return self.push("mcp-initialize", "POST", &url, Outcome::Skipped, detail);
        };
        // `run` refuses such a token up front; this guards the library entry point.
        if let Some(why) = token.unsendable() {
            let detail = format!("not sent: {why}");
            return self.push("mcp-initialize", "POST", &url, Outcome::Fail, detail);
        }
        let answer = match self.fetch("POST", &url, Payload::Initialize { token: Some(token) }) {
            Fetched::Answer(answer) => answer,
            other => return self.no_answer("POST", &url, other, &["mcp-initialize"]),
        };
        let media = answer.media_type();
        let note = answer.unread_note();
        let (outcome, detail) = if answer.status != 200 {
            let detail = format!("expected 200 with the token, got {}{note}", answer.describe());
            (Outcome::Fail, detail)
        } else if media != "application/json" && media != "text/event-stream" {
            let detail = format!("200, but `{media}` is neither JSON nor an event stream{note}");
            (Outcome::Fail, detail)
        } else {
            initialize_verdict(&answer, &media)
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
        let (outcome, mut detail) = if answer.status == 200 && media == "text/html" {
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
        detail.push_str(&answer.unread_note());
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
    if let Some(why) = &answer.unread {
        return Err(format!("{} answered, but {why}", answer.describe()));
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

/// Whether `authorization_servers` names the issuer first, byte for byte. The official MCP
/// clients (Python `mcp` 2.3.0, TypeScript `@modelcontextprotocol/client` 2.4.0) use the first
/// entry and never read the others, so the issuer further down the list is not enough.
fn servers_verdict(object: &Map<String, Value>, issuer: &str) -> (Outcome, String) {
    let servers = match object.get("authorization_servers") {
        Some(Value::Array(servers)) => servers,
        Some(other) => {
            return (Outcome::Fail, format!("authorization_servers is {other}, not an array"));
        }
        None => return (Outcome::Fail, "the document has no `authorization_servers`".into()),
    };
    let first = match servers.first() {
        Some(Value::String(first)) if first == issuer => {
            let detail = match servers.len() {
                1 => format!("authorization_servers names {issuer}"),
                n => format!(
                    "authorization_servers names {issuer} first of {n}, the one clients use"
                ),
            };
            return (Outcome::Pass, detail);
        }
        Some(Value::String(first)) => format!("`{}`", first.escape_debug()),
        Some(other) => other.to_string(),
        None => {
            let detail =
                "authorization_servers is empty: clients need the issuer as its first entry";
            return (Outcome::Fail, detail.into());
        }
    };
    let issuer_at = match servers.iter().position(|s| s.as_str() == Some(issuer)) {
        Some(at) => format!("; the issuer is entry {}, which they never read", at + 1),
        None => format!(", and the list does not hold the issuer `{issuer}` byte for byte"),
    };
    let detail = format!(
        "authorization_servers names {first} first, not the issuer `{issuer}`: MCP clients use \
         only the first entry{issuer_at}"
    );
    (Outcome::Fail, detail)
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

/// The `Access-Control-Allow-Origin` value, when browsers let a client read the answer with it:
/// `*`, or one origin as a browser serializes it (`https://app.example`, `http://[::1]:6274`),
/// which lets that origin's pages read it. Browsers compare the value with the page's origin
/// byte for byte, so `null` (the origin of sandboxed and `file:` pages, which any page can
/// take on), a list, a path or a trailing `/` lets no client's page read it. The error says what
/// was found, for the caller to add what it costs.
fn allow_origin_verdict(answer: &Answer) -> Result<&str, String> {
    let values: Vec<&str> = answer.headers_named("access-control-allow-origin").collect();
    let value = match values.as_slice() {
        [] => return Err("no Access-Control-Allow-Origin header".into()),
        [value] => value.trim(),
        several => {
            return Err(format!(
                "Access-Control-Allow-Origin {} times (`{}`), where browsers accept one",
                several.len(),
                several.join("`, `").escape_debug()
            ));
        }
    };
    if value == "*" || is_serialized_origin(value) {
        return Ok(value);
    }
    let why = if value.eq_ignore_ascii_case("null") {
        "the origin of sandboxed and file: pages, not of a client"
    } else if value.contains([',', ' ']) {
        "a list, where browsers accept one origin or `*`"
    } else {
        "neither `*` nor an origin as browsers write it (scheme://host[:port], lowercase, no path)"
    };
    Err(format!("Access-Control-Allow-Origin `{}` ({why})", value.escape_debug()))
}

/// Whether `value` is an origin as a browser serializes it: a lowercase `scheme://host`, with
/// an optional `:port` and nothing after it, not even a `/`.
fn is_serialized_origin(value: &str) -> bool {
    let Some((scheme, host)) = value.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let host_ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_graphic() && !c.is_ascii_uppercase())
        && !host.contains(['/', '?', '#', ',']);
    scheme_ok && host_ok
}

/// Whether a 2xx preflight answer lets a browser send the MCP POST: an origin it accepts, and
/// every header of [`PREFLIGHT_HEADERS`] allowed. `*` allows every header but `authorization`,
/// which the Fetch standard leaves out of the wildcard; browsers have long let it through
/// anyway and are withdrawing that, so `*` without `authorization` is a warning, not a failure.
fn preflight_verdict(answer: &Answer) -> (Outcome, String) {
    let status = answer.status;
    let origin = match allow_origin_verdict(answer) {
        Ok(value) => value,
        Err(why) => {
            return (Outcome::Fail, format!("{status} with {why}, so browsers refuse the POST"));
        }
    };
    let found = format!("{status} with Access-Control-Allow-Origin: {origin}");

    let lines: Vec<&str> = answer.headers_named("access-control-allow-headers").collect();
    let allowed: Vec<String> = lines
        .iter()
        .flat_map(|line| line.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let wildcard = allowed.iter().any(|name| name == "*");
    let missing: Vec<&str> = PREFLIGHT_HEADERS
        .into_iter()
        .filter(|name| !allowed.iter().any(|a| a == name))
        .filter(|name| !wildcard || *name == "authorization")
        .collect();
    match missing.as_slice() {
        [] => (Outcome::Pass, format!("{found}, allowing {}", PREFLIGHT_HEADERS.join(", "))),
        ["authorization"] if wildcard => {
            let detail = format!(
                "{found} and Access-Control-Allow-Headers `*`, which the Fetch standard does not \
                 let cover authorization: browsers that follow it refuse the POST with a token, so \
                 list authorization by name"
            );
            (Outcome::Warn, detail)
        }
        missing => {
            let shown = match lines.as_slice() {
                [] => "no Access-Control-Allow-Headers".to_string(),
                _ => format!("Access-Control-Allow-Headers `{}`", lines.join(", ").escape_debug()),
            };
            let detail = format!(
                "{found}, but {shown} does not allow {}, so browsers refuse the MCP POST, which \
                 sends them",
                missing.join(", ")
            );
            (Outcome::Fail, detail)
        }
    }
}

/// Whether a 200 answer to `initialize` holds a JSON-RPC result: the body itself, or in an
/// event stream the first message that is not the server's own request or notification. A
/// JSON-RPC error comes with a 200 too, and initializes nothing.
fn initialize_verdict(answer: &Answer, media: &str) -> (Outcome, String) {
    let fail = |why: String| (Outcome::Fail, format!("200 {media}, but {why}"));
    let message = if media == "text/event-stream" {
        match (&answer.event, &answer.unread) {
            (Some(data), _) => data.as_bytes(),
            (None, Some(why)) => return fail(format!("no JSON-RPC answer arrived: {why}")),
            (None, None) => return fail("the stream ended without a JSON-RPC answer".into()),
        }
    } else if let Some(why) = &answer.unread {
        return fail(why.clone());
    } else {
        &answer.body
    };
    let object = match serde_json::from_slice::<Value>(message) {
        Ok(Value::Object(object)) => object,
        Ok(other) => return fail(format!("the answer is a JSON {}", json_kind(&other))),
        Err(e) => return fail(format!("the answer is not JSON: {e}")),
    };
    match (object.get("result"), object.get("error")) {
        (_, Some(error)) => {
            let code = error.get("code").map_or_else(|| "none".into(), Value::to_string);
            let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
            fail(format!(
                "the answer is a JSON-RPC error, code {code}: `{}`",
                message.escape_debug()
            ))
        }
        (Some(Value::Object(_)), None) => {
            (Outcome::Pass, format!("200 {media}: the MCP server initialized"))
        }
        _ => fail("the answer has neither a JSON-RPC `result` object nor an `error`".into()),
    }
}

/// The `resource_metadata` value the official MCP clients find in a `WWW-Authenticate` header,
/// its lines joined by `, ` as their HTTP libraries join them. Python `mcp` 2.3.0 and
/// TypeScript `@modelcontextprotocol/client` 2.4.0 do not parse challenges: both take the first
/// match of `resource_metadata=(?:"([^"]+)"|([^\s,]+))` anywhere in the text, inside another
/// challenge or a quoted value as well.
fn pattern_resource_metadata(header: &str) -> Option<&str> {
    const NAME: &str = "resource_metadata=";
    let mut from = 0;
    while let Some(found) = header[from..].find(NAME) {
        let at = from + found + NAME.len();
        let rest = &header[at..];
        // The quoted alternative first: at least one character, up to the next quote.
        if let Some(end) = rest.strip_prefix('"').and_then(|quoted| quoted.find('"'))
            && end > 0
        {
            return Some(&rest[1..=end]);
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == ',').unwrap_or(rest.len());
        if end > 0 {
            return Some(&rest[..end]);
        }
        from = at;
    }
    None
}

/// Whether the TypeScript client (`@modelcontextprotocol/client` 2.4.0) reads a
/// `WWW-Authenticate` header, its lines joined by `, `: it splits the text at spaces, and
/// ignores the header unless the first piece is `Bearer` or `DPoP` and the second is not empty.
fn typescript_reads(header: &str) -> bool {
    let mut pieces = header.split(' ');
    let scheme = pieces.next().unwrap_or_default();
    let next = pieces.next().unwrap_or_default();
    TYPESCRIPT_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)) && !next.is_empty()
}

/// Whether a 401 carries the challenge clients read: `WWW-Authenticate` under that name,
/// holding a `Bearer` challenge with `resource_metadata` set to the PRM URL exactly. The header
/// may hold several challenges, on one line or on several lines that together form one list
/// (RFC 9110 sections 5.3 and 11.6.1); the first `Bearer` challenge is the one judged.
fn challenge_verdict(answer: &Answer, prm_url: &str) -> (Outcome, String) {
    let lines: Vec<&str> = answer.headers_named("www-authenticate").collect();
    let renamed: Vec<&str> = answer.headers_named("x-amzn-remapped-www-authenticate").collect();
    if lines.is_empty() {
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

    let mut challenges = Vec::new();
    for line in &lines {
        match parse_challenges(line) {
            Ok(parsed) => challenges.extend(parsed),
            Err(why) => {
                let detail = format!(
                    "WWW-Authenticate `{}` is not a list of challenges (RFC 9110 section \
                     11.6.1), so clients may not find the Bearer one: {why}",
                    line.escape_debug()
                );
                return (Outcome::Fail, detail);
            }
        }
    }
    let judged = challenges.iter().position(|c| c.scheme.eq_ignore_ascii_case("bearer"));
    let Some(bearer) = judged.map(|at| &challenges[at]) else {
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        let found = if schemes.is_empty() {
            "no challenge at all".to_string()
        } else {
            format!("only {}", schemes.join(", "))
        };
        let detail = format!(
            "WWW-Authenticate is `{}`, with no Bearer challenge: {found}",
            lines.join(", ").escape_debug()
        );
        return (Outcome::Fail, detail);
    };

    let values: Vec<&str> = bearer.params_named("resource_metadata").collect();
    match values.as_slice() {
        [found] if *found == prm_url => clients_verdict(&challenges, bearer, &lines, prm_url),
        [found] => {
            let detail = format!(
                "resource_metadata is `{}`, not the PRM URL `{prm_url}`",
                found.escape_debug()
            );
            (Outcome::Fail, detail)
        }
        [] => {
            let detail = format!(
                "the Bearer challenge `{}` has no resource_metadata",
                bearer.text.escape_debug()
            );
            (Outcome::Fail, detail)
        }
        several => {
            let detail = format!(
                "the Bearer challenge `{}` gives resource_metadata {} times: RFC 9110 allows a \
                 parameter once per challenge, and clients may read any of them",
                bearer.text.escape_debug(),
                several.len()
            );
            (Outcome::Fail, detail)
        }
    }
}

/// Whether the official clients read a header whose Bearer challenge is right as probe reads it.
/// They read the text rather than the challenges: a `resource_metadata` anywhere but in the
/// Bearer challenge may be the one they follow, which fails, and the TypeScript client ignores
/// a header that does not start with the Bearer challenge. That only warns: the client then
/// tries the well-known PRM URLs, which are the PRM URL itself and are checked on their own,
/// and loses only the challenge's `scope`.
fn clients_verdict(
    challenges: &[Challenge],
    bearer: &Challenge,
    lines: &[&str],
    prm_url: &str,
) -> (Outcome, String) {
    let others = challenges.iter().filter(|c| !std::ptr::eq(*c, bearer));
    let decoy = others
        .flat_map(|c| c.params_named("resource_metadata").map(move |value| (c, value)))
        .find(|(_, value)| *value != prm_url);
    if let Some((challenge, value)) = decoy {
        let detail = format!(
            "the {} challenge `{}` gives resource_metadata `{}` too: the MCP clients take the \
             first `resource_metadata=` in the header, whatever challenge holds it, so no other \
             value than the PRM URL `{prm_url}` may appear",
            challenge.scheme,
            challenge.text.escape_debug(),
            value.escape_debug()
        );
        return (Outcome::Fail, detail);
    }
    let header = lines.join(", ");
    if let Some(found) = pattern_resource_metadata(&header).filter(|found| *found != prm_url) {
        let detail = format!(
            "the MCP clients take the first `resource_metadata=` anywhere in the header, quoted \
             values included, and here it gives `{}`, not the PRM URL `{prm_url}`",
            found.escape_debug()
        );
        return (Outcome::Fail, detail);
    }

    let among = match challenges.len() {
        1 => String::new(),
        n => format!(" (one of {n} challenges)"),
    };
    let found = format!("Bearer challenge with resource_metadata=\"{prm_url}\"{among}");
    if typescript_reads(&header) {
        return (Outcome::Pass, found);
    }
    let first = &challenges[0];
    let start = if std::ptr::eq(first, bearer) {
        format!("the header starts `{}`", first.text.escape_debug())
    } else {
        format!("the first challenge is {}", first.scheme)
    };
    let detail = format!(
        "{found}, but {start}: the TypeScript MCP client reads WWW-Authenticate only when it \
         starts with `Bearer ` and a parameter, so it ignores this challenge and its scope and \
         tries the well-known PRM URLs instead (see prm-json)"
    );
    (Outcome::Warn, detail)
}

/// One challenge of a `WWW-Authenticate` header: a scheme, then a token68 or auth-params,
/// with quoted values unquoted.
#[derive(Debug, PartialEq)]
struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
    /// The challenge as it stood in the header, for messages.
    text: String,
}

impl Challenge {
    /// The values of the parameters named `name`; parameter names ignore case.
    fn params_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The challenges of one `WWW-Authenticate` line, read by the grammar of RFC 9110 section
/// 11.6.1 rather than split on commas, since a quoted value may hold commas, quotes and `=`:
///
/// ```text
/// challenge  = auth-scheme [ 1*SP ( token68 / [ auth-param *( OWS "," OWS auth-param ) ] ) ]
/// auth-param = token BWS "=" BWS ( token / quoted-string )
/// ```
///
/// Commas separate both the challenges and a challenge's parameters: after a comma, a token
/// followed by `=` continues the parameters, and anything else starts the next challenge. Empty
/// list elements are skipped, as the list rule of section 5.6.1 asks of a recipient.
fn parse_challenges(line: &str) -> Result<Vec<Challenge>, String> {
    let mut cursor = Cursor { bytes: line.as_bytes(), at: 0 };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_separators();
        if cursor.at_end() {
            return Ok(challenges);
        }
        let start = cursor.at;
        let scheme = cursor.token();
        if scheme.is_empty() {
            return Err(cursor.expected("an auth-scheme"));
        }
        let spaced = cursor.skip_ows();
        let (mut token68, mut params) = (None, Vec::new());
        if !cursor.at_list_end() {
            if !spaced {
                return Err(cursor.expected(&format!("a space after the scheme `{scheme}`")));
            }
            token68 = cursor.token68();
            if token68.is_none() {
                params = cursor.auth_params()?;
            }
        }
        let text = String::from_utf8_lossy(&cursor.bytes[start..cursor.at]).trim_end().to_string();
        challenges.push(Challenge { scheme, token68, params, text });
    }
}

/// A position in a header value, for [`parse_challenges`].
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// At the end of a list element: the end of the line or a comma.
    fn at_list_end(&self) -> bool {
        self.at_end() || self.peek() == Some(b',')
    }

    /// Skips optional whitespace, and tells whether there was any.
    fn skip_ows(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    /// Skips whitespace and commas, including the empty list elements between them.
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    /// A token (RFC 9110 section 5.6.2), empty when none starts here.
    fn token(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    /// A token68 that makes up the rest of the challenge, or `None` with nothing consumed when
    /// what follows is not one, such as the parameters `realm="x"` or `error=invalid_token`.
    fn token68(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)) {
            self.at += 1;
        }
        let body_end = self.at;
        while self.peek() == Some(b'=') {
            self.at += 1;
        }
        let end = self.at;
        self.skip_ows();
        if body_end > start && self.at_list_end() {
            return Some(String::from_utf8_lossy(&self.bytes[start..end]).into_owned());
        }
        self.at = start;
        None
    }

    /// A challenge's parameters, up to the comma before the next challenge or the end.
    fn auth_params(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut params = Vec::new();
        loop {
            let name = self.token();
            if name.is_empty() {
                return Err(self.expected("a parameter name"));
            }
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(self.expected(&format!("`=` after `{name}`")));
            }
            self.at += 1;
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                let value = self.token();
                if value.is_empty() {
                    let what = format!("a token or a quoted string as the value of `{name}`");
                    return Err(self.expected(&what));
                }
                value
            };
            self.skip_ows();
            if !self.at_list_end() {
                return Err(self.expected(&format!(
                    "`,` or the end after the value of `{name}`: a value that is not a token, \
                     such as a URL, must be a quoted string"
                )));
            }
            params.push((name, value));

            // Past the comma, a token and `=` are this challenge's next parameter; anything
            // else is left for the next challenge.
            let before = self.at;
            self.skip_separators();
            let after = self.at;
            let next = self.token();
            self.skip_ows();
            if next.is_empty() || self.peek() != Some(b'=') {
                self.at = before;
                return Ok(params);
            }
            self.at = after;
        }
    }

    /// A quoted string, unquoted: backslash escapes the next character, commas are text.
    fn quoted_string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1;
        let mut value = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                self.at = start;
                return Err(self.expected("a quoted string closed by `\"`"));
            };
            self.at += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&value).into_owned()),
                b'\\' if !self.at_end() => {
                    value.push(self.bytes[self.at]);
                    self.at += 1;
                }
                _ => value.push(b),
            }
        }
    }

    /// A parse error naming what was expected and the text where it was not found.
    fn expected(&self, what: &str) -> String {
        let rest = String::from_utf8_lossy(&self.bytes[self.at.min(self.bytes.len())..]);
        if rest.is_empty() {
            return format!("expected {what} at the end");
        }
        let shown: String = rest.chars().take(32).collect();
        let more = if rest.chars().count() > 32 { "…" } else { "" };
        format!("expected {what} at `{}{more}`", shown.escape_debug())
    }
}

/// One HTTP answer, with header names lowercased.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body, or as much of it as was read: at most [`MAX_BODY_BYTES`].
    body: Vec<u8>,
    /// Why `body` is not the whole body, phrased to follow "but": too large, or broken off. An
    /// event stream read up to its answer is not one: the rest is not needed.
    unread: Option<String>,
    /// For an event stream, the data of the first event that may answer the request.
    event: Option<String>,
}

impl Answer {
    /// Replaces the token in everything the deployment sent that a check may print.
    fn redact(&mut self, token: &Token) {
        for (_, value) in &mut self.headers {
            *value = token.redact(value);
        }
        self.body = token.redact_bytes(&self.body);
        if let Some(event) = &mut self.event {
            *event = token.redact(event);
        }
    }

    /// Reads the body to its end, at most [`MAX_BODY_BYTES`] of it. One byte more than the
    /// limit tells a body at the limit from a larger one, and what was read is kept, so that an
    /// HTML page can still be recognised by its start.
    fn read_body(&mut self, reader: impl Read) {
        self.unread = match reader.take(MAX_BODY_BYTES + 1).read_to_end(&mut self.body) {
            Err(e) => Some(format!("the body could not be read: {e}")),
            Ok(_) if self.body.len() as u64 > MAX_BODY_BYTES => {
                self.body.truncate(MAX_BODY_BYTES as usize);
                Some(too_large())
            }
            Ok(_) => None,
        };
    }

    /// Reads an event stream up to the first event that may answer the request, within
    /// [`MAX_BODY_BYTES`]. An MCP server may send its own messages first, and may keep the
    /// stream open after its answer, so reading to the end could only end at the timeout.
    fn read_event_stream(&mut self, mut reader: impl Read) {
        let mut stream = EventStream::default();
        let mut chunk = [0; 8192];
        loop {
            let read = match reader.read(&mut chunk) {
                Ok(0) => return,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.unread = Some(format!("the body could not be read: {e}"));
                    return;
                }
            };
            let kept = read.min(MAX_BODY_BYTES as usize - self.body.len());
            self.body.extend_from_slice(&chunk[..kept]);
            if let Some(data) = stream.feed(&chunk[..kept]).into_iter().find(|d| may_answer(d)) {
                self.event = Some(data);
                return;
            }
            if kept < read {
                self.unread = Some(too_large());
                return;
            }
        }
    }

    /// A note for the checks that judge only the status and headers, so that a body probe
    /// could not read is reported without failing them; empty when the body was read.
    fn unread_note(&self) -> String {
        match &self.unread {
            Some(why) => format!(" ({why}; judged on the status and headers)"),
            None => String::new(),
        }
    }

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

fn too_large() -> String {
    format!("the body is larger than {MAX_BODY_BYTES} bytes, the most probe reads")
}

/// Whether an event's data may be the answer to probe's request: not empty, as a priming event
/// that carries only an id is, and not a request or notification of the server's own, which
/// has a `method`.
fn may_answer(data: &str) -> bool {
    let own = matches!(
        serde_json::from_str::<Value>(data),
        Ok(Value::Object(message)) if message.contains_key("method")
    );
    !data.trim().is_empty() && !own
}

/// A reader of the event stream format (`text/event-stream`, HTML standard section 9.2), fed
/// a body as it arrives. Only `data` fields matter to probe; a blank line ends an event.
#[derive(Default)]
struct EventStream {
    /// The line so far, without its end.
    line: Vec<u8>,
    /// The current event's data, each `data` line followed by a line feed.
    data: Vec<u8>,
    /// Whether the last byte ended a line with a CR, so that an LF right after it is the same
    /// line end, not an empty line.
    after_cr: bool,
}

impl EventStream {
    /// Reads `bytes`, and returns the data of each event they complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    events.extend(self.end_line());
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    /// Ends the current line: a blank one dispatches the event, when any data was given.
    fn end_line(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.data.is_empty() {
                return None;
            }
            let mut data = std::mem::take(&mut self.data);
            data.pop();
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return None,
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &[][..]),
        };
        if field == b"data" {
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
        }
        None
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

    /// Sends one request and reads its answer. An answer is whatever has a status line: its
    /// body is read up to [`MAX_BODY_BYTES`], and a larger body or one that breaks off is
    /// recorded on the answer, not turned into "no answer".
    fn send(&self, url: &str, payload: Payload<'_>) -> Fetched {
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
                .header("access-control-request-headers", PREFLIGHT_HEADERS.join(","))
                .call(),
        };
        let mut response = match result {
            Ok(response) => response,
            // The http crate refuses to build the request: nothing went on the wire.
            Err(e @ (ureq::Error::Http(_) | ureq::Error::BadUri(_))) => {
                return Fetched::Unsendable(e.to_string());
            }
            Err(e) => return Fetched::NoAnswer(e.to_string()),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        let mut answer = Answer { status, headers, body: Vec::new(), unread: None, event: None };
        let reader = response.body_mut().as_reader();
        if answer.media_type() == "text/event-stream" {
            answer.read_event_stream(reader);
        } else {
            answer.read_body(reader);
        }
        Fetched::Answer(answer)
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
    // Warnings are counted only when there are some, so a clean run reads as it always has.
    let warned = match s.warned {
        0 => String::new(),
        n => format!(", {n} warned"),
    };
    out.push_str(&format!(
        "{} passed{warned}, {} failed, {} skipped\n",
        s.passed, s.failed, s.skipped
    ));
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

    /// A challenge as its scheme, token68 and parameters, for compact assertions.
    type Parsed = (String, Option<String>, Vec<(String, String)>);

    fn parsed(line: &str) -> Vec<Parsed> {
        let challenges = parse_challenges(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        challenges.into_iter().map(|c| (c.scheme, c.token68, c.params)).collect()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_quoted_challenge_parameters() {
        let c = r#"Bearer realm="a, b", resource_metadata="https://h/.well-known/x/mcp", "#;
        let c = format!(r#"{c}scope="openid""#);
        let expected = params(&[
            ("realm", "a, b"),
            ("resource_metadata", "https://h/.well-known/x/mcp"),
            ("scope", "openid"),
        ]);
        assert_eq!(parsed(&c), [("Bearer".into(), None, expected)]);
        assert_eq!(parsed(r#"Bearer a="x\"y""#)[0].2, params(&[("a", "x\"y")]));
        assert_eq!(parsed(r#"Bearer a="\\""#)[0].2, params(&[("a", "\\")]));
        assert_eq!(
            parsed("Bearer error=invalid_token, b=c")[0].2,
            params(&[("error", "invalid_token"), ("b", "c")])
        );
        assert_eq!(parsed(r#"Bearer a = "b" ,c	=d"#)[0].2, params(&[("a", "b"), ("c", "d")]));
    }

    #[test]
    fn finds_each_challenge_of_a_list() {
        let line = r#"Basic realm="x, Bearer y=\"z\"", Bearer resource_metadata="https://h/p""#;
        let schemes: Vec<String> = parsed(line).into_iter().map(|c| c.0).collect();
        assert_eq!(schemes, ["Basic", "Bearer"]);
        assert_eq!(parsed(line)[1].2, params(&[("resource_metadata", "https://h/p")]));

        // A token68, with or without padding, ends its challenge.
        let line = r#"Negotiate YWJj==, Bearer resource_metadata="u", Basic dXNlcg"#;
        let found = parsed(line);
        assert_eq!(found[0], ("Negotiate".into(), Some("YWJj==".into()), vec![]));
        assert_eq!(found[1].2, params(&[("resource_metadata", "u")]));
        assert_eq!(found[2], ("Basic".into(), Some("dXNlcg".into()), vec![]));

        // Challenges without parameters, and the empty elements a list may hold.
        let found = parsed(r#" , Digest,, Bearer , Basic realm="r" ,"#);
        let schemes: Vec<&str> = found.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(schemes, ["Digest", "Bearer", "Basic"]);
        assert!(parsed("").is_empty());
        // `a=` alone is a token68 with its padding, not a parameter without a value.
        assert_eq!(parsed("Bearer a=")[0].1.as_deref(), Some("a="));
    }

    #[test]
    fn refuses_what_is_not_a_challenge_list() {
        for (line, why) in [
            ("Bearer resource_metadata=https://h/p", "must be a quoted string"),
            (r#"Bearer resource_metadata="https://h/p"#, "closed by"),
            (r#"Bearer,resource_metadata="u""#, "a space after the scheme"),
            (r#"Bearer a="b", c="#, "as the value of `c`"),
            (r#"Bearer a="b" c="d""#, "`,` or the end"),
            ("=x", "an auth-scheme"),
        ] {
            let error = parse_challenges(line).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn a_token_that_a_header_cannot_carry_is_named_without_its_value() {
        let token = Token::new("secret\r\nX-Injected: more".into()).unwrap();
        let why = token.unsendable().unwrap();
        assert!(why.contains("carriage return") && why.contains("character 7"), "{why}");
        assert!(!why.contains("secret") && !why.contains("Injected"), "{why}");
        for (value, kind) in [("a b", "a space"), ("a\u{7f}", "U+007F"), ("aé", "non-ASCII")] {
            let why = Token::new(value.into()).unwrap().unsendable().unwrap();
            assert!(why.contains(kind), "{value:?}: {why}");
        }
        assert_eq!(Token::new("eyJ.a-b_c~d+e/f==".into()).unwrap().unsendable(), None);
    }

    #[test]
    fn an_echoed_token_is_redacted() {
        let token = Token::new(r#"tok"en"#.into()).unwrap();
        let detail =
            format!("redirecting to `{}` and {}", r#"x?t=tok"en"#.escape_debug(), "tok\"en");
        assert_eq!(token.redact(&detail), "redirecting to `x?t=[token]` and [token]");
    }

    #[test]
    fn an_echoed_token_is_redacted_in_any_ascii_case_and_escaped_form() {
        let token = Token::new("9F86D0aB'\"x".into()).unwrap();
        let json = Value::from("9f86d0ab'\"X").to_string();
        let detail = format!("text/x-9f86d0ab'\"x, {json} and {}", r#"9F86D0AB\'\"X"#);
        assert_eq!(token.redact(&detail), r#"text/x-[token], "[token]" and [token]"#);
        // Text around the token keeps its characters, whatever their encoding.
        assert_eq!(token.redact("é9F86D0aB'\"xé"), "é[token]é");
        assert_eq!(token.redact_bytes(b"\xff9f86d0ab'\"x"), b"\xff[token]");
    }

    #[test]
    fn the_clients_pattern_takes_the_first_resource_metadata_anywhere() {
        let find = pattern_resource_metadata;
        assert_eq!(
            find(r#"Bearer resource_metadata="https://h/p", scope="a""#),
            Some("https://h/p")
        );
        assert_eq!(find(r#"Basic realm="resource_metadata=u, v", Bearer"#), Some("u"));
        assert_eq!(find(r#"Basic x_resource_metadata="d", resource_metadata="p""#), Some("d"));
        // An empty quoted value falls to the unquoted alternative, which takes the quotes.
        assert_eq!(find(r#"Bearer resource_metadata="", a=b"#), Some(r#""""#));
        assert_eq!(find("Bearer resource_metadata=, resource_metadata=x"), Some("x"));
        assert_eq!(find(r#"Bearer Resource_Metadata="p""#), None);
    }

    #[test]
    fn the_typescript_client_reads_only_a_header_that_starts_with_its_scheme() {
        assert!(typescript_reads(r#"Bearer resource_metadata="u", Basic realm="x""#));
        assert!(typescript_reads(r#"dpop resource_metadata="u""#));
        assert!(!typescript_reads(r#"Basic realm="x", Bearer resource_metadata="u""#));
        assert!(!typescript_reads(r#"Bearer  resource_metadata="u""#));
        assert!(!typescript_reads("Bearer"));
    }

    #[test]
    fn an_allowed_origin_is_one_origin_as_browsers_write_it() {
        for origin in ["https://app.example", "http://localhost:6274", "http://[::1]:8080"] {
            assert!(is_serialized_origin(origin), "{origin}");
        }
        for value in ["null", "https://app.example/", "https://App.example", "app.example", ""] {
            assert!(!is_serialized_origin(value), "{value}");
        }
        assert!(!is_serialized_origin("https://a.example,https://b.example"));
    }

    #[test]
    fn an_event_stream_yields_the_data_of_each_complete_event() {
        let mut stream = EventStream::default();
        assert_eq!(stream.feed(b": comment\r\nid: 0\r\ndata:\r\n\r"), [""]);
        // The LF after a CR at the end of the last chunk is the same line end.
        assert!(stream.feed(b"\nevent: message\rdata: {\"a\":\rdata:1}\r").is_empty());
        assert_eq!(stream.feed(b"\r"), ["{\"a\":\n1}"]);
        assert_eq!(stream.feed(b"data\ndata:  two\n\ndata: cut"), ["\n two"]);
        assert!(!may_answer("") && !may_answer(r#"{"jsonrpc":"2.0","method":"ping","id":7}"#));
        assert!(may_answer(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#) && may_answer("not json"));
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

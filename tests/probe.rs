//! `specgen probe` against a deployment played by a loopback HTTP server in this process.
//!
//! The server answers as a correct wikibot deployment would: the MCP router on `/mcp` and the
//! discovery paths, the wiki on everything else. Each negative twin breaks one thing the seed's
//! outage or the discovery contract is about, and its test asserts that exactly the checks
//! about that thing fail. The server binds 127.0.0.1:0, serves a bounded number of
//! connections for a bounded time, and is stopped when the test drops it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const ISSUER: &str = "https://example-tenant.authkit.app";
const TOKEN: &str = "test-token-for-loopback";

/// The most of a body probe reads, as `specgen::probe::MAX_BODY_BYTES` says.
const LIMIT: usize = 1 << 20;

/// What the played deployment gets wrong, one field per seed mistake or contract rule.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// `$default` shadows discovery: the wiki answers the metadata URLs with HTML.
    wiki_on_discovery: bool,
    /// `MCP_BASE_URL` held the mount path, so the PRM names `/mcp/mcp`.
    doubled_resource: bool,
    /// The challenge arrives as `x-amzn-remapped-www-authenticate`.
    renamed_challenge: bool,
    /// Discovery answers lack `Access-Control-Allow-Origin`.
    no_cors: bool,
    /// The wiki's page is gone: the MCP router's JSON 404 answers it.
    no_page: bool,
    /// The PRM URL redirects to another path.
    redirect_prm: bool,
    /// An authorizer answers the MCP endpoint's CORS preflight with 401.
    challenged_preflight: bool,
    /// How the 401's `WWW-Authenticate` holds the Bearer challenge.
    challenge: Challenge,
    /// The 401 without a token has a 2 MiB body, twice what probe reads.
    large_401_body: bool,
    /// The PRM documents are padded to this many bytes; 0 leaves them as they are.
    prm_bytes: usize,
    /// A token that initializes nothing is redirected to a login page that names it.
    token_in_location: bool,
    /// A token that initializes nothing gets a 500 whose content type echoes it.
    token_in_content_type: bool,
    /// How the PRM documents list their authorization servers.
    servers: Servers,
    /// The `Access-Control-Allow-Origin` of every answer in place of `*`.
    allow_origin: Option<&'static str>,
    /// The preflight's `Access-Control-Allow-Headers` in place of the router's list.
    allow_headers: Option<&'static str>,
    /// How `initialize` with the right token is answered.
    initialize: Initialize,
}

/// How `authorization_servers` lists the issuer.
#[derive(Clone, Copy, Default)]
enum Servers {
    /// `[issuer]`.
    #[default]
    Issuer,
    /// `["https://evil.example", issuer]`: the issuer is listed, but not where clients look.
    DecoyFirst,
    /// `[issuer, "https://other.example"]`: the issuer where clients look, another after it.
    IssuerFirst,
}

/// How the MCP endpoint answers an `initialize` that carries the right token.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Initialize {
    /// 200 `application/json` with a JSON-RPC `result`.
    #[default]
    Result,
    /// 200 `application/json` with a JSON-RPC `error`, which initializes nothing.
    Error,
    /// 200 `text/event-stream`: a priming event, a notification, then the `result`.
    Events,
    /// 200 `text/event-stream` whose first message is a JSON-RPC `error`.
    ErrorEvent,
    /// 200 `text/event-stream` with the `result`, then kept open with comments, as a server
    /// that streams further messages on the same answer does.
    OpenEvents,
}

/// Forms of the challenge header, all but the first two beyond what the router sends.
#[derive(Clone, Copy, Default)]
enum Challenge {
    /// `WWW-Authenticate: Bearer resource_metadata="…", scope="openid"`, as the router sends.
    #[default]
    Bearer,
    /// A Basic challenge first, in the same header line, with a comma and quotes in its realm.
    AfterBasic,
    /// A Negotiate token68 and a Basic challenge on their own lines, then the Bearer challenge
    /// with commas, escaped quotes and the word Bearer inside its quoted values.
    SeveralLines,
    /// No Bearer challenge, only a Basic one whose quoted realm looks like one.
    NoBearer,
    /// `resource_metadata=https://…`: a URL is not a token, so it must be quoted.
    Unquoted,
    /// The Bearer challenge first, then a Basic one: the order every client reads.
    BearerThenBasic,
    /// A Basic challenge naming a decoy PRM, before the right Bearer challenge.
    DecoyBefore,
    /// The right Bearer challenge, then a Basic challenge naming a decoy PRM.
    DecoyAfter,
    /// The Bearer challenge first, with `resource_metadata=<decoy>` inside an earlier quoted
    /// value, where the clients' pattern finds it before the real parameter.
    DecoyInText,
}

/// One request the server received, to check where a token went.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// A deployment on loopback. `origin` is the origin whose URLs it advertises, which is its own
/// address unless the test probes it with `--base-url`.
struct Deployment {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

/// Bounds on the server, so that a test that goes wrong cannot leave it running.
const MAX_CONNECTIONS: usize = 64;
const MAX_LIFETIME: Duration = Duration::from_secs(60);

impl Deployment {
    fn start(origin: Option<&str>, faults: Faults) -> Deployment {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = origin.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_string);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || serve(&listener, &origin, faults, &stop, &seen))
        };
        Deployment { port, stop, seen, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: &TcpListener,
    origin: &str,
    faults: Faults,
    stop: &AtomicBool,
    seen: &Mutex<Vec<Seen>>,
) {
    let started = Instant::now();
    let mut served = 0;
    while !stop.load(Ordering::SeqCst)
        && served < MAX_CONNECTIONS
        && started.elapsed() < MAX_LIFETIME
    {
        match listener.accept() {
            Ok((stream, _)) => {
                served += 1;
                handle(stream, origin, faults, seen);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

/// Reads one request, records it (before answering, so the record is there when the probe
/// ends) and answers it, closing the connection.
fn handle(stream: TcpStream, origin: &str, faults: Faults, seen: &Mutex<Vec<Seen>>) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // Probe stops reading a body past its limit; the write then fails rather than waits.
    stream.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let (mut length, mut authorization) = (0usize, None);
    for _ in 0..100 {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "authorization" => authorization = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body).ok()?;

    let initializes = method == "POST"
        && path == "/mcp"
        && authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
    if initializes && faults.initialize == Initialize::OpenEvents {
        seen.lock().unwrap().push(Seen { method, path, authorization });
        return stream_events(stream);
    }
    let (status, headers, body) = answer(&method, &path, authorization.as_deref(), origin, faults);
    seen.lock().unwrap().push(Seen { method, path, authorization });
    let mut response = format!("HTTP/1.1 {status} X\r\n");
    if status != 204 {
        response.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("Connection: close\r\n\r\n");
    response.push_str(&body);
    let mut stream = stream;
    stream.write_all(response.as_bytes()).ok()
}

/// Answers `initialize` with an event stream that stays open: the result, then a comment every
/// 50 ms until the client goes away or 15 s have passed, longer than probe's timeout, so that a
/// client that reads to the end cannot finish in time.
fn stream_events(mut stream: TcpStream) -> Option<()> {
    let head = "HTTP/1.1 200 X\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    stream.write_all(format!("{head}{}", event(&initialize_result())).as_bytes()).ok()?;
    for _ in 0..300 {
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(b": still here\n\n").ok()?;
    }
    Some(())
}

/// One server-sent event holding `message`, pretty-printed over several `data:` lines (with and
/// without the optional space) as the format allows.
fn event(message: &Value) -> String {
    let text = serde_json::to_string_pretty(message).unwrap();
    let lines: String = text.lines().map(|line| format!("data:{line}\r\n")).collect();
    format!("event: message\r\n{}\r\n", lines.replacen("data:", "data: ", 1))
}

fn initialize_result() -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "result": { "protocolVersion": "2025-06-18", "capabilities": {},
                    "serverInfo": { "name": "played", "version": "0" } },
    })
}

fn initialize_error() -> Value {
    let error = serde_json::json!({ "code": -32602, "message": "Unsupported protocol version" });
    serde_json::json!({ "jsonrpc": "2.0", "id": 1, "error": error })
}

type Answer = (u16, Vec<(&'static str, String)>, String);

/// What the played deployment answers: the router's arms, or the wiki behind `$default`.
fn answer(method: &str, path: &str, auth: Option<&str>, origin: &str, f: Faults) -> Answer {
    let wiki = || -> Answer {
        let page = "<!DOCTYPE html><html><body>Otterwiki</body></html>".to_string();
        (200, vec![("Content-Type", "text/html; charset=utf-8".into())], page)
    };
    let json = |status: u16, body: Value, cors: bool| -> Answer {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if cors {
            headers.push(("Access-Control-Allow-Origin", f.allow_origin.unwrap_or("*").into()));
        }
        (status, headers, body.to_string())
    };
    let prm = || {
        let resource =
            if f.doubled_resource { format!("{origin}/mcp/mcp") } else { format!("{origin}/mcp") };
        let mut body = serde_json::json!({
            "resource": resource,
            "authorization_servers": match f.servers {
                Servers::Issuer => vec![ISSUER],
                Servers::DecoyFirst => vec!["https://evil.example", ISSUER],
                Servers::IssuerFirst => vec![ISSUER, "https://other.example"],
            },
            "bearer_methods_supported": ["header"],
            "padding": "",
        });
        let unpadded = body.to_string().len();
        body["padding"] = Value::from("x".repeat(f.prm_bytes.saturating_sub(unpadded)));
        json(200, body, !f.no_cors)
    };
    let prm_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");

    match (method, path) {
        ("POST", "/mcp") if f.token_in_location && auth.is_some() => {
            let token = auth.unwrap_or_default().trim_start_matches("Bearer ");
            (302, vec![("Location", format!("{origin}/login?expired={token}"))], String::new())
        }
        ("POST", "/mcp") if f.token_in_content_type && auth.is_some() => {
            let token = auth.unwrap_or_default().trim_start_matches("Bearer ");
            (500, vec![("Content-Type", format!("text/x-{token}"))], "failed".into())
        }
        ("POST", "/mcp") if auth == Some(&format!("Bearer {TOKEN}")) => {
            let events = |messages: &[Value]| -> Answer {
                // A priming event carries an id and no message; clients skip it.
                let mut body = "id: 0\ndata:\n\n".to_string();
                body.extend(messages.iter().map(event));
                (200, vec![("Content-Type", "text/event-stream".into())], body)
            };
            let progress = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": { "level": "info", "data": "starting" },
            });
            match f.initialize {
                Initialize::Result | Initialize::OpenEvents => json(200, initialize_result(), true),
                Initialize::Error => json(200, initialize_error(), true),
                Initialize::Events => events(&[progress, initialize_result()]),
                Initialize::ErrorEvent => events(&[initialize_error()]),
            }
        }
        ("OPTIONS", "/mcp") if f.challenged_preflight => {
            json(401, serde_json::json!({ "message": "Unauthorized" }), false)
        }
        ("OPTIONS", "/mcp") => {
            let allowed = "authorization, content-type, mcp-protocol-version, mcp-session-id, \
                           last-event-id";
            let headers = vec![
                ("Access-Control-Allow-Origin", f.allow_origin.unwrap_or("*").to_string()),
                ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS".into()),
                ("Access-Control-Allow-Headers", f.allow_headers.unwrap_or(allowed).into()),
            ];
            (204, headers, String::new())
        }
        ("POST", "/mcp") => {
            let name = if f.renamed_challenge {
                "x-amzn-remapped-www-authenticate"
            } else {
                "WWW-Authenticate"
            };
            let bearer = format!("Bearer resource_metadata=\"{prm_url}\", scope=\"openid\"");
            let lines = match f.challenge {
                Challenge::Bearer => vec![bearer],
                Challenge::AfterBasic => {
                    vec![format!(r#"Basic realm="wiki, \"staff\"", {bearer}"#)]
                }
                Challenge::SeveralLines => {
                    let why = r#"error="invalid_request", error_description="no, \"Bearer x\"""#;
                    vec![
                        "Negotiate YWJjZA==".into(),
                        r#"Basic realm="wiki""#.into(),
                        format!(r#"Bearer {why}, resource_metadata="{prm_url}""#),
                    ]
                }
                Challenge::NoBearer => {
                    vec![format!(
                        r#"Basic realm="Bearer resource_metadata=\"{prm_url}\"", Negotiate"#
                    )]
                }
                Challenge::Unquoted => vec![format!("Bearer resource_metadata={prm_url}")],
                Challenge::BearerThenBasic => vec![format!(r#"{bearer}, Basic realm="wiki""#)],
                Challenge::DecoyBefore => {
                    vec![format!(r#"Basic resource_metadata="{origin}/decoy-prm", {bearer}"#)]
                }
                Challenge::DecoyAfter => {
                    vec![bearer, format!(r#"Basic resource_metadata="{origin}/decoy-prm""#)]
                }
                Challenge::DecoyInText => vec![format!(
                    "Bearer error_description=\"try resource_metadata={origin}/decoy-prm\", \
                     resource_metadata=\"{prm_url}\""
                )],
            };
            let (status, mut headers, mut body) =
                json(401, serde_json::json!({ "error": "unauthorized" }), true);
            headers.extend(lines.into_iter().map(|line| (name, line)));
            if f.large_401_body {
                body = "x".repeat(2 * LIMIT);
            }
            (status, headers, body)
        }
        (
            _,
            "/.well-known/oauth-protected-resource/mcp" | "/.well-known/oauth-protected-resource",
        ) if f.wiki_on_discovery => wiki(),
        ("GET", "/.well-known/oauth-protected-resource/mcp") if f.redirect_prm => (
            301,
            vec![("Location", format!("{origin}/mcp/.well-known/oauth-protected-resource"))],
            String::new(),
        ),
        (
            "GET",
            "/.well-known/oauth-protected-resource/mcp" | "/.well-known/oauth-protected-resource",
        ) => prm(),
        ("GET", "/.well-known/oauth-authorization-server") if f.wiki_on_discovery => wiki(),
        ("GET", "/.well-known/oauth-authorization-server") => {
            let body = serde_json::json!({
                "issuer": ISSUER,
                "authorization_endpoint": format!("{ISSUER}/oauth2/authorize"),
                "token_endpoint": format!("{ISSUER}/oauth2/token"),
            });
            json(200, body, !f.no_cors)
        }
        ("GET", "/Home") if f.no_page => {
            json(404, serde_json::json!({ "error": "not_found" }), true)
        }
        _ => wiki(),
    }
}

/// A spec with a local environment on the deployment's own port.
fn local_spec(dir: &Path, port: u16) -> std::path::PathBuf {
    let spec = format!(
        "api:
  name: probed
environments:
  - name: local
    local: true
    origin: http://127.0.0.1:{port}
backends:
  - name: wiki
    deploy: referenced
    pages: [/Home]
  - name: mcp
    deploy: managed
    router: true
routes:
  - key: $default
    backend: wiki
oauth:
  issuer: {ISSUER}
  default_endpoints: true
  resources:
    - backend: mcp
      mount: /mcp
"
    );
    let path = dir.join("probed.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn specgen(args: &[&str], token_var: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_specgen"));
    command.args(args).env_remove("SPECGEN_PROBE_TOKEN");
    if let Some(token) = token_var {
        command.env("SPECGEN_PROBE_TOKEN", token);
    }
    command.output().unwrap()
}

/// Probes a faulty local deployment and returns the exit code and the JSON report.
fn probe_local(faults: Faults, extra: &[&str]) -> (i32, Value, Vec<Seen>) {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(None, faults);
    let spec = local_spec(dir.path(), deployment.port);
    let mut args = vec!["probe", spec.to_str().unwrap(), "--env", "local", "--format", "json"];
    args.extend_from_slice(extra);
    let output = specgen(&args, None);
    let report = parse(&output);
    (output.status.code().unwrap(), report, deployment.seen())
}

fn parse(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The names of the checks with `outcome`, in report order.
fn with_outcome(report: &Value, outcome: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

fn detail<'a>(report: &'a Value, check: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no check {check}"))
}

const ALL_CHECKS: [&str; 16] = [
    "mcp-401",
    "mcp-challenge",
    "mcp-preflight",
    "prm-json",
    "prm-cors",
    "prm-resource",
    "prm-authorization-servers",
    "root-prm-json",
    "root-prm-cors",
    "root-prm-resource",
    "root-prm-authorization-servers",
    "as-metadata-json",
    "as-metadata-cors",
    "as-metadata-issuer",
    "mcp-initialize",
    "page",
];

#[test]
fn a_correct_deployment_passes_and_initialize_is_skipped_without_a_token() {
    let (code, report, seen) = probe_local(Faults::default(), &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "skipped"), ["mcp-initialize"]);
    assert!(detail(&report, "mcp-initialize").contains("SPECGEN_PROBE_TOKEN"));
    assert_eq!(with_outcome(&report, "fail"), Vec::<String>::new());
    let names: Vec<String> =
        report["checks"].as_array().unwrap().iter().map(|c| c["check"].to_string()).collect();
    let expected: Vec<String> = ALL_CHECKS.iter().map(|c| format!("\"{c}\"")).collect();
    assert_eq!(names, expected);
    assert_eq!(report["reached"], true);
    assert_eq!(report["token"], false);
    assert!(seen.iter().all(|s| s.authorization.is_none()), "{seen:?}");
}

#[test]
fn a_token_from_the_environment_initializes_and_goes_only_to_the_mcp_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(None, Faults::default());
    let spec = local_spec(dir.path(), deployment.port);
    let args = ["probe", spec.to_str().unwrap(), "--env", "local", "--format", "json"];
    let output = specgen(&args, Some(TOKEN));
    let report = parse(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(with_outcome(&report, "pass").len(), ALL_CHECKS.len());
    assert_eq!(report["token"], true);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(TOKEN));

    let with_token: Vec<(String, String)> = deployment
        .seen()
        .into_iter()
        .filter(|s| s.authorization.is_some())
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(with_token, [("POST".to_string(), "/mcp".to_string())]);
}

#[test]
fn a_wrong_token_fails_initialize() {
    let (code, report, _) = probe_local(Faults::default(), &["--token", "not-the-token"]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-initialize"]);
    assert!(detail(&report, "mcp-initialize").contains("expected 200"), "{report:#}");
}

#[test]
fn base_url_sends_requests_to_a_local_gateway_and_compares_with_the_environments_urls() {
    let deployment = Deployment::start(Some("https://dev.wikibot.io"), Faults::default());
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/wikibot.yaml");
    let url = deployment.url();
    let args = ["probe", spec, "--env", "dev", "--base-url", &url, "--format", "json"];
    let output = specgen(&args, None);
    let report = parse(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["origin"], "https://dev.wikibot.io");
    assert_eq!(report["target"], url);
    assert!(detail(&report, "prm-resource").contains("https://dev.wikibot.io/mcp"));
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["url"].as_str().unwrap().starts_with(&url))
    );
}

#[test]
fn base_url_with_the_deployments_own_origin_fails_the_byte_exact_checks() {
    // The server advertises its loopback URLs, but wikibot's dev environment expects its own.
    let deployment = Deployment::start(None, Faults::default());
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/wikibot.yaml");
    let url = deployment.url();
    let args = ["probe", spec, "--env", "dev", "--base-url", &url, "--format", "json"];
    let report = parse(&specgen(&args, None));
    assert_eq!(
        with_outcome(&report, "fail"),
        ["mcp-challenge", "prm-resource", "root-prm-resource"]
    );
}

#[test]
fn discovery_answered_with_the_wikis_html_fails_as_in_the_outage() {
    let faults = Faults { wiki_on_discovery: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["prm-json", "root-prm-json", "as-metadata-json"]);
    assert!(detail(&report, "as-metadata-json").contains("with HTML, not JSON"), "{report:#}");
    assert!(detail(&report, "prm-resource").contains("not a metadata document"));
}

#[test]
fn a_doubled_resource_fails_byte_for_byte_and_says_why() {
    let faults = Faults { doubled_resource: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["prm-resource", "root-prm-resource"]);
    let why = detail(&report, "prm-resource");
    assert!(why.contains("/mcp/mcp") && why.contains("doubled"), "{why}");
}

#[test]
fn a_renamed_challenge_header_fails_and_is_named() {
    let faults = Faults { renamed_challenge: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
    assert!(detail(&report, "mcp-challenge").contains("x-amzn-remapped-www-authenticate"));
}

#[test]
fn discovery_without_cors_fails() {
    let faults = Faults { no_cors: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["prm-cors", "root-prm-cors", "as-metadata-cors"]);
    assert!(detail(&report, "prm-cors").contains("Access-Control-Allow-Origin"));
}

#[test]
fn a_challenged_preflight_fails() {
    let faults = Faults { challenged_preflight: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-preflight"]);
    assert!(detail(&report, "mcp-preflight").contains("no credentials"), "{report:#}");
}

#[test]
fn a_missing_wiki_page_fails_when_json_answers_it() {
    let faults = Faults { no_page: true, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["page"]);
    assert!(detail(&report, "page").contains("JSON"), "{report:#}");
}

#[test]
fn a_redirect_is_reported_not_followed() {
    let faults = Faults { redirect_prm: true, ..Faults::default() };
    let (code, report, seen) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["prm-json"]);
    assert!(detail(&report, "prm-json").contains("301 redirecting"), "{report:#}");
    assert!(!seen.iter().any(|s| s.path == "/mcp/.well-known/oauth-protected-resource"));
}

#[test]
fn the_human_report_has_a_line_per_check_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults { renamed_challenge: true, ..Faults::default() };
    let deployment = Deployment::start(None, faults);
    let spec = local_spec(dir.path(), deployment.port);
    let output = specgen(&["probe", spec.to_str().unwrap(), "--env", "local"], None);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ALL_CHECKS.len() + 2, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("fail") && l.contains("mcp-challenge")), "{text}");
    assert_eq!(lines.last(), Some(&"14 passed, 1 failed, 1 skipped"));
}

#[test]
fn an_unreachable_deployment_exits_74_after_one_request() {
    // A port that was just free: nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let spec = local_spec(dir.path(), port);
    let output =
        specgen(&["probe", spec.to_str().unwrap(), "--env", "local", "--format", "json"], None);
    assert_eq!(output.status.code(), Some(74));
    let report = parse(&output);
    assert_eq!(report["reached"], false);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-401"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("did not answer"));
}

#[test]
fn usage_errors_exit_64() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/wikibot.yaml");
    for args in [
        vec!["probe", spec, "--env", "prod"],
        vec!["probe", spec, "--env", "dev", "--base-url", "ftp://127.0.0.1:1"],
        vec!["probe", spec, "--env", "dev", "--base-url", "http://proxy.example"],
        vec!["probe", spec, "--env", "dev", "--base-url", "https://proxy.example/mcp"],
        vec!["probe", spec],
    ] {
        let output = specgen(&args, None);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.is_empty(), "{args:?} sent or printed checks");
    }
}

/// The requests a probe without a token sends to the played deployment, in order.
const REQUESTS: [(&str, &str); 6] = [
    ("POST", "/mcp"),
    ("OPTIONS", "/mcp"),
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/Home"),
];

fn requests(seen: &[Seen]) -> Vec<(&str, &str)> {
    seen.iter().map(|s| (s.method.as_str(), s.path.as_str())).collect()
}

#[test]
fn a_large_first_answer_is_an_answer_and_every_other_request_is_sent() {
    let faults = Faults { large_401_body: true, ..Faults::default() };
    let (code, report, seen) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["reached"], true);
    assert_eq!(with_outcome(&report, "fail"), Vec::<String>::new());
    let why = detail(&report, "mcp-401");
    assert!(why.starts_with("401 without a token"), "{why}");
    assert!(why.contains(&format!("larger than {LIMIT} bytes")) && !why.contains("no answer"));
    assert_eq!(requests(&seen), REQUESTS);
}

#[test]
fn a_large_first_answer_still_has_its_challenge_judged() {
    let faults = Faults { large_401_body: true, renamed_challenge: true, ..Faults::default() };
    let (code, report, seen) = probe_local(faults, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
    assert!(detail(&report, "mcp-challenge").contains("x-amzn-remapped-www-authenticate"));
    assert_eq!(requests(&seen), REQUESTS);
}

#[test]
fn a_prm_at_the_body_limit_is_read_whole() {
    let faults = Faults { prm_bytes: LIMIT, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "fail"), Vec::<String>::new());
}

#[test]
fn a_prm_over_the_body_limit_fails_as_too_large_not_as_unanswered() {
    let faults = Faults { prm_bytes: LIMIT + 1, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["reached"], true);
    assert_eq!(with_outcome(&report, "fail"), ["prm-json", "root-prm-json"]);
    let why = detail(&report, "prm-json");
    assert!(why.contains("200 application/json answered"), "{why}");
    assert!(why.contains(&format!("larger than {LIMIT} bytes")), "{why}");
    assert!(!why.contains("no answer"), "{why}");
    assert!(detail(&report, "prm-resource").contains("see prm-json"), "{report:#}");
}

/// A token with a line break in it, which would end the Authorization header and start another.
const SPLIT_TOKEN: &str = "secret-head\r\nX-Injected: secret-tail";

#[test]
fn a_token_a_header_cannot_carry_is_refused_before_anything_is_sent_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(None, Faults::default());
    let spec = local_spec(dir.path(), deployment.port);
    let spec = spec.to_str().unwrap();
    for (format, from_env) in [("human", false), ("json", false), ("human", true), ("json", true)] {
        let mut args = vec!["probe", spec, "--env", "local", "--format", format];
        if !from_env {
            args.extend(["--token", SPLIT_TOKEN]);
        }
        let output = specgen(&args, from_env.then_some(SPLIT_TOKEN));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{format}, env {from_env}: {stderr}");
        assert!(output.stdout.is_empty(), "{format}, env {from_env}: checks were printed");
        assert!(
            stderr.contains("carriage return") && stderr.contains("cannot be sent"),
            "{stderr}"
        );
        assert!(!stderr.contains("secret") && !stderr.contains("Injected"), "{stderr}");
        assert!(!stderr.contains("no answer"), "{stderr}");
    }
    assert_eq!(requests(&deployment.seen()), Vec::<(&str, &str)>::new());
}

#[test]
fn a_token_the_deployment_echoes_back_is_redacted_from_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults { token_in_location: true, ..Faults::default() };
    let deployment = Deployment::start(None, faults);
    let spec = local_spec(dir.path(), deployment.port);
    for format in ["human", "json"] {
        let args = ["probe", spec.to_str().unwrap(), "--env", "local", "--format", format];
        let output = specgen(&args, Some(TOKEN));
        assert_eq!(output.status.code(), Some(1));
        let printed = [output.stdout, output.stderr].concat();
        let printed = String::from_utf8_lossy(&printed);
        assert!(!printed.contains(TOKEN), "{printed}");
        assert!(printed.contains("302 redirecting to"), "{printed}");
        assert!(printed.contains("/login?expired=[token]"), "{printed}");
    }
    // The deployment did get the token, so the redaction above is what kept it out.
    assert!(deployment.seen().iter().any(|s| s.authorization == Some(format!("Bearer {TOKEN}"))));
}

#[test]
fn a_bearer_challenge_after_another_in_the_same_header_is_read_but_warned_about() {
    let faults = Faults { challenge: Challenge::AfterBasic, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "warn"), ["mcp-challenge"]);
    assert_eq!(report["summary"]["warned"], 1);
    let why = detail(&report, "mcp-challenge");
    assert!(why.contains("resource_metadata=") && why.contains("one of 2 challenges"), "{why}");
    assert!(why.contains("first challenge is Basic") && why.contains("TypeScript"), "{why}");
}

#[test]
fn a_bearer_challenge_on_its_own_header_line_among_others_is_read_but_warned_about() {
    let faults = Faults { challenge: Challenge::SeveralLines, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "warn"), ["mcp-challenge"]);
    let why = detail(&report, "mcp-challenge");
    assert!(why.contains("one of 3 challenges") && why.contains("Negotiate"), "{why}");
}

#[test]
fn a_bearer_challenge_before_another_passes_without_a_warning() {
    let faults = Faults { challenge: Challenge::BearerThenBasic, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "warn"), Vec::<String>::new());
    assert!(detail(&report, "mcp-challenge").contains("one of 2 challenges"), "{report:#}");
}

#[test]
fn a_decoy_resource_metadata_in_another_challenge_fails_before_or_after_the_bearer_one() {
    for challenge in [Challenge::DecoyBefore, Challenge::DecoyAfter] {
        let faults = Faults { challenge, ..Faults::default() };
        let (code, report, _) = probe_local(faults, &[]);
        assert_eq!(code, 1, "{report:#}");
        assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
        let why = detail(&report, "mcp-challenge");
        assert!(why.contains("/decoy-prm") && why.contains("Basic"), "{why}");
        assert!(why.contains("first `resource_metadata=`"), "{why}");
    }
}

#[test]
fn a_decoy_resource_metadata_inside_a_quoted_value_fails_as_the_clients_pattern_finds_it() {
    let faults = Faults { challenge: Challenge::DecoyInText, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
    let why = detail(&report, "mcp-challenge");
    assert!(why.contains("/decoy-prm") && why.contains("first `resource_metadata=`"), "{why}");
}

#[test]
fn a_prm_naming_another_server_first_fails_since_clients_use_only_the_first() {
    let faults = Faults { servers: Servers::DecoyFirst, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    let failed = ["prm-authorization-servers", "root-prm-authorization-servers"];
    assert_eq!(with_outcome(&report, "fail"), failed);
    for check in failed {
        let why = detail(&report, check);
        assert!(why.contains("`https://evil.example` first"), "{why}");
        assert!(why.contains("use only the first") && why.contains("entry 2"), "{why}");
    }
}

#[test]
fn a_prm_naming_the_issuer_first_and_another_server_after_it_passes() {
    let faults = Faults { servers: Servers::IssuerFirst, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    let why = detail(&report, "prm-authorization-servers");
    assert!(why.contains(ISSUER) && why.contains("first of 2"), "{why}");
}

#[test]
fn an_allow_origin_of_null_fails_every_cors_check() {
    let faults = Faults { allow_origin: Some("null"), ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    let failed = ["mcp-preflight", "prm-cors", "root-prm-cors", "as-metadata-cors"];
    assert_eq!(with_outcome(&report, "fail"), failed);
    for check in failed {
        assert!(detail(&report, check).contains("`null`"), "{report:#}");
    }
}

#[test]
fn an_allow_origin_naming_one_origin_passes() {
    let faults = Faults { allow_origin: Some("https://inspector.example"), ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(detail(&report, "prm-cors").contains("https://inspector.example"), "{report:#}");
}

#[test]
fn a_preflight_that_does_not_allow_a_header_of_the_mcp_post_fails_and_names_it() {
    for (allowed, missing) in [
        ("content-type, mcp-protocol-version", "authorization"),
        ("authorization, content-type", "mcp-protocol-version"),
        ("authorization", "content-type, mcp-protocol-version"),
    ] {
        let faults = Faults { allow_headers: Some(allowed), ..Faults::default() };
        let (code, report, _) = probe_local(faults, &[]);
        assert_eq!(code, 1, "{allowed}: {report:#}");
        assert_eq!(with_outcome(&report, "fail"), ["mcp-preflight"], "{allowed}");
        let why = detail(&report, "mcp-preflight");
        assert!(why.contains(&format!("does not allow {missing},")), "{allowed}: {why}");
    }
}

#[test]
fn a_preflight_that_allows_the_headers_in_any_case_passes() {
    let allowed = "Authorization,Content-Type , MCP-Protocol-Version";
    let faults = Faults { allow_headers: Some(allowed), ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "warn"), Vec::<String>::new());
}

#[test]
fn a_preflight_allowing_headers_by_wildcard_is_warned_about_for_authorization() {
    let faults = Faults { allow_headers: Some("*"), ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_outcome(&report, "warn"), ["mcp-preflight"]);
    let why = detail(&report, "mcp-preflight");
    assert!(why.contains("`*`") && why.contains("authorization"), "{why}");
}

#[test]
fn a_json_rpc_error_to_initialize_fails_with_its_code_and_message() {
    let faults = Faults { initialize: Initialize::Error, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &["--token", TOKEN]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-initialize"]);
    let why = detail(&report, "mcp-initialize");
    assert!(why.contains("-32602") && why.contains("Unsupported protocol version"), "{why}");
    assert!(!why.contains("initialized"), "{why}");
}

#[test]
fn an_event_stream_answer_to_initialize_is_judged_by_its_first_message() {
    let faults = Faults { initialize: Initialize::Events, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &["--token", TOKEN]);
    assert_eq!(code, 0, "{report:#}");
    assert!(detail(&report, "mcp-initialize").contains("text/event-stream"), "{report:#}");

    let faults = Faults { initialize: Initialize::ErrorEvent, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &["--token", TOKEN]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(with_outcome(&report, "fail"), ["mcp-initialize"]);
    let why = detail(&report, "mcp-initialize");
    assert!(why.contains("-32602") && why.contains("Unsupported protocol version"), "{why}");
}

#[test]
fn an_event_stream_left_open_is_read_up_to_its_answer_not_to_the_timeout() {
    let faults = Faults { initialize: Initialize::OpenEvents, ..Faults::default() };
    let started = Instant::now();
    let (code, report, _) = probe_local(faults, &["--token", TOKEN]);
    assert_eq!(code, 0, "{report:#}");
    let why = detail(&report, "mcp-initialize");
    assert!(why.contains("initialized") && !why.contains("could not be read"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// A token of uppercase hex digits: lowercased, it is still the whole secret.
const HEX_TOKEN: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

#[test]
fn a_token_echoed_in_a_content_type_is_redacted_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults { token_in_content_type: true, ..Faults::default() };
    let deployment = Deployment::start(None, faults);
    let spec = local_spec(dir.path(), deployment.port);
    // -vv too: the HTTP library's own debug log would print the headers as received.
    for (format, verbose) in [("human", "-v"), ("json", "-v"), ("human", "-vv")] {
        let args = ["probe", spec.to_str().unwrap(), "--env", "local", "--format", format, verbose];
        let output = specgen(&args, Some(HEX_TOKEN));
        assert_eq!(output.status.code(), Some(1));
        let printed = [output.stdout, output.stderr].concat();
        let printed = String::from_utf8_lossy(&printed);
        assert!(!printed.to_ascii_lowercase().contains(&HEX_TOKEN.to_ascii_lowercase()));
        assert!(printed.contains("500 text/x-[token]"), "{printed}");
    }
    let sent = format!("Bearer {HEX_TOKEN}");
    assert!(deployment.seen().iter().any(|s| s.authorization.as_ref() == Some(&sent)));
}

#[test]
fn a_header_without_a_bearer_challenge_fails_though_a_quoted_realm_names_one() {
    let faults = Faults { challenge: Challenge::NoBearer, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
    let why = detail(&report, "mcp-challenge");
    assert!(why.contains("no Bearer challenge: only Basic, Negotiate"), "{why}");
}

#[test]
fn an_unquoted_resource_metadata_url_fails_and_says_to_quote_it() {
    let faults = Faults { challenge: Challenge::Unquoted, ..Faults::default() };
    let (code, report, _) = probe_local(faults, &[]);
    assert_eq!(code, 1);
    assert_eq!(with_outcome(&report, "fail"), ["mcp-challenge"]);
    assert!(detail(&report, "mcp-challenge").contains("must be a quoted string"), "{report:#}");
}

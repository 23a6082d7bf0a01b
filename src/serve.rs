//! `specgen serve`: a local API Gateway HTTP API on 127.0.0.1, for a `local: true` environment.
//!
//! Each request takes the path a deployed request takes: the entry (stage or mapping key) and
//! route selection of [`crate::engine`], the same calls `check` and `explain` make, then the
//! backend of the winning route. A request no route takes gets API Gateway's own
//! `404 {"message":"Not Found"}`. A backend run from a binary (`--backend NAME=PATH`, such as
//! the generated router's example) receives the payload format 2.0 event of [`event::build`]
//! through an emulated Lambda Runtime API ([`runtime`]), and its answer is read as API Gateway
//! reads it; any other backend is played by the stand-in its `local` field names.
//!
//! The gateway listens on the environment's own origin, so the URLs the model derived are the
//! ones clients reach. It is bounded: one request per connection, 10 s to send it, 6 MiB of
//! body (Lambda's limit on a synchronous invocation), [`MAX_CONNECTIONS`] at once, and a
//! function's own timeout, at most API Gateway's 30 s, to answer.

pub mod event;
pub mod http;
pub mod runtime;

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::diag::Diagnostic;
use crate::engine::{self, Entry, RouteKey};
use crate::model::{EnvModel, Model, RouteModel};
use crate::run::{self, exit};
use crate::spec::LocalStandIn;
use crate::{render, url};
use event::Answer;
use runtime::{Function, Outcome, Runtime};

/// The largest request body: Lambda's limit on a synchronous invocation.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Connections served at once; more are answered `503` and closed.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its whole request, and again to read the whole answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// API Gateway's integration timeout, the most a function's own timeout can give it.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub spec: PathBuf,
    pub env: String,
    /// `(backend, binary)`: backends run from a binary through the Lambda Runtime API.
    pub backends: Vec<(String, PathBuf)>,
}

/// What a serve run ended with, for the binary to print.
#[derive(Debug, Default)]
pub struct Report {
    pub exit: u8,
    pub source: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// A refusal: the message and the help line.
    pub error: Option<(String, String)>,
}

/// Reads a `--backend NAME=PATH` argument.
pub fn parse_backend(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("`{text}` is not NAME=PATH")),
    }
}

/// Set by `SIGINT` or `SIGTERM`: the gateway stops its functions and returns.
static STOP: AtomicBool = AtomicBool::new(false);

/// Checks the spec, starts the functions and serves until `SIGINT` or `SIGTERM`. `listening`
/// is called with the gateway's URL once it accepts requests.
pub fn run(request: &Request, listening: impl FnOnce(&str)) -> Report {
    let mut report = Report::default();
    let compiled = run::compile(&request.spec);
    report.source = compiled.source;
    report.diagnostics = compiled.diagnostics.sorted();
    let model = match compiled.model {
        Some(model) if !compiled.diagnostics.has_errors() => model,
        _ => {
            report.exit = run::spec_failure_exit(&report.diagnostics);
            return report;
        }
    };
    serve_model(model, request, listening, report)
}

/// Serves a model until `SIGINT` or `SIGTERM`. Only [`run`], after the guarantees passed, and
/// the test-only [`crate::unchecked`] call it.
pub(crate) fn serve_model(
    model: Model,
    request: &Request,
    listening: impl FnOnce(&str),
    mut report: Report,
) -> Report {
    match Gateway::start(model, request) {
        Ok(gateway) => {
            install_signal_handlers();
            listening(&gateway.url());
            gateway.serve();
            report.exit = exit::CLEAN;
        }
        Err((code, message, help)) => {
            report.exit = code;
            report.error = Some((message, help));
        }
    }
    report
}

/// Who plays a backend.
enum Player {
    StandIn(LocalStandIn),
    Function(Runtime),
}

/// A started gateway: its listener, the model and a player for each backend.
pub(crate) struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    model: Model,
    env: usize,
    keys: Vec<RouteKey>,
    players: BTreeMap<String, Player>,
    port: u16,
    /// The origin's host, the event's `domainName`.
    host: String,
    connections: AtomicUsize,
    requests: AtomicU64,
}

type Refusal = (u8, String, String);

impl Gateway {
    /// Binds the environment's origin on 127.0.0.1 and starts every function. Refuses an
    /// environment that is not local, a backend nothing can play, and a busy port.
    pub fn start(model: Model, request: &Request) -> Result<Gateway, Refusal> {
        let usage = |message: String, help: &str| (exit::USAGE, message, help.to_owned());
        let Some(env) = model.environments.iter().position(|e| e.name == request.env) else {
            let names: Vec<&str> = model.environments.iter().map(|e| e.name.as_str()).collect();
            return Err(usage(
                format!("the spec has no environment `{}`", request.env.escape_debug()),
                &format!("use one of: {}", names.join(", ")),
            ));
        };
        let env_model = &model.environments[env];
        if !env_model.local {
            return Err(usage(
                format!("environment `{}` is not local", env_model.name),
                "serve runs an environment marked `local: true`, whose origin is \
                 http://127.0.0.1:PORT, so the URLs the spec derives are the ones served",
            ));
        }
        let origin = match url::parse(&env_model.origin) {
            Ok(parsed) => parsed,
            Err(problem) => return Err(usage(problem.message, &problem.help)),
        };
        let port = origin.port.unwrap_or(80);
        // The gateway listens on the very address the origin names, so the URLs the model
        // derived are the ones that reach it. `localhost` names two addresses (127.0.0.1 and
        // ::1), and clients pick either, so it is refused rather than half served.
        let ip: IpAddr = match origin.host.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) if IpAddr::is_loopback(&ip) => ip,
            _ => {
                return Err(usage(
                    format!(
                        "environment `{}` has the origin `{}`, which does not name one loopback \
                         address",
                        env_model.name, env_model.origin
                    ),
                    "serve listens on the origin's own address: write http://127.0.0.1:PORT \
                     (or another address in 127.0.0.0/8, or http://[::1]:PORT)",
                ));
            }
        };

        let mut binaries: BTreeMap<&str, PathBuf> = BTreeMap::new();
        for (name, binary) in &request.backends {
            if binaries.contains_key(name.as_str()) {
                return Err(usage(
                    format!("--backend names `{name}` twice"),
                    "give each backend one binary",
                ));
            }
            if !model.backends.iter().any(|b| &b.name == name) {
                return Err(usage(
                    format!("--backend names `{name}`, which is not a backend of the spec"),
                    "write --backend NAME=PATH with a backend's name",
                ));
            }
            // The file checked is the file run: a bare name would otherwise be looked up on
            // PATH when started, and could be another file than the one checked here.
            let binary = match std::fs::canonicalize(binary) {
                Ok(path) if path.is_file() => path,
                _ => {
                    return Err((
                        exit::IO,
                        format!("--backend {name}: `{}` is not a file", binary.display()),
                        "build the backend's binary first, e.g. `cargo build --example \
                         mcp_server` in the generated router crate"
                            .into(),
                    ));
                }
            };
            if let Some(krate) = model.crates.iter().find(|c| &c.backend == name) {
                let identity = render::router_identity(&model, krate);
                if !built_from(&binary, &identity) {
                    return Err(usage(
                        format!(
                            "--backend {name}: `{}` was not built for backend `{name}` from \
                             this version of {}",
                            binary.display(),
                            model.source.file
                        ),
                        &format!(
                            "a router binary carries the SHA-256 of what its crate was rendered \
                             from ({identity} here); run `specgen build` and rebuild the binary \
                             of crate `{}`, or the URLs it advertises may not be the ones served",
                            krate.name
                        ),
                    ));
                }
            }
            binaries.insert(name, binary);
        }

        // Every backend a route reaches must be played, before anything is started.
        let mut players = BTreeMap::new();
        for backend in &model.backends {
            if !model.routes.iter().any(|r| r.backend == backend.name) {
                continue;
            }
            if binaries.contains_key(backend.name.as_str()) {
                continue;
            }
            match &backend.local {
                Some(stand_in) if (100..=599).contains(&stand_in.status) => {
                    players.insert(backend.name.clone(), Player::StandIn(stand_in.clone()));
                }
                Some(stand_in) => {
                    return Err(usage(
                        format!(
                            "backend `{}` has the stand-in status {}, not an HTTP status",
                            backend.name, stand_in.status
                        ),
                        "use a status from 100 to 599",
                    ));
                }
                None => {
                    let help = if backend.router {
                        "give its binary with --backend NAME=PATH (the generated router \
                         crate's example), or a `local` stand-in in the spec"
                    } else {
                        "give it a stand-in in the spec, e.g. `local: {body: \"<h1>wiki</h1>\"}`, \
                         or a binary that speaks the Lambda Runtime API with --backend NAME=PATH"
                    };
                    return Err(usage(format!("nothing plays backend `{}`", backend.name), help));
                }
            }
        }

        let address = SocketAddr::new(ip, port);
        let listener = TcpListener::bind(address).map_err(|e| {
            let message = if e.kind() == io::ErrorKind::AddrInUse {
                format!("port {port} on {ip} is busy: another process listens there")
            } else {
                format!("cannot listen on {address}: {e}")
            };
            let help = format!(
                "stop that process, or change the origin of environment `{}` in the spec",
                env_model.name
            );
            (exit::IO, message, help)
        })?;
        listener.set_nonblocking(true).map_err(|e| (exit::IO, e.to_string(), String::new()))?;

        for backend in &model.backends {
            let Some(binary) = binaries.get(backend.name.as_str()) else { continue };
            let mut variables: Vec<(String, String)> = backend
                .environment
                .iter()
                .filter_map(|v| v.values.get(&env_model.name).map(|x| (v.name.clone(), x.clone())))
                .collect();
            variables.push(("SPECGEN_ENVIRONMENT".into(), env_model.name.clone()));
            let timeout =
                Duration::from_secs(u64::from(backend.timeout_seconds)).min(INTEGRATION_TIMEOUT);
            let function = Function {
                name: &format!("{}-{}", model.api.name, backend.name),
                binary,
                memory_mb: backend.memory_mb,
                timeout,
                variables,
            };
            // A function that fails to start stops the ones started before, as they drop.
            let runtime = Runtime::start(&function).map_err(|e| {
                (exit::IO, e.to_string(), "check that the binary runs on this machine".into())
            })?;
            players.insert(backend.name.clone(), Player::Function(runtime));
        }

        let keys = model.routes.iter().map(|r| r.parsed.clone()).collect();
        let shared = Shared {
            model,
            env,
            keys,
            players,
            port,
            host: origin.host.clone(),
            connections: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        };
        Ok(Gateway { listener, shared: Arc::new(shared) })
    }

    /// The gateway's URL, the environment's origin.
    pub fn url(&self) -> String {
        self.shared.model.environments[self.shared.env].origin.clone()
    }

    /// Accepts connections until [`STOP`] is set, then stops every function by its process id.
    pub fn serve(self) {
        while !STOP.load(Ordering::SeqCst) {
            match self.listener.accept() {
                Ok((stream, peer)) => self.spawn(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(25));
                }
                Err(e) => tracing::debug!(error = %e, "accept failed"),
            }
        }
        for player in self.shared.players.values() {
            if let Player::Function(runtime) = player {
                runtime.stop();
            }
        }
    }

    fn spawn(&self, stream: TcpStream, peer: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let answer = Answer::gateway(503, "Service Unavailable");
            access_log("-", "-", None, &answer);
            // The request is left unread: the answer goes out at once, bounded, and the
            // accepting thread never waits on a client.
            let mut stream = http::Deadline::new(stream, Duration::from_millis(100));
            let _ =
                http::write_response(&mut stream, 503, &answer.headers, &answer.body, false, true);
            return;
        }
        thread::spawn(move || {
            let _ = connection(&shared, stream, peer);
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Reads one request, answers it, and closes the connection.
fn connection(shared: &Shared, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(http::Deadline::new(stream.try_clone()?, CLIENT_TIMEOUT));
    let (answer, head) = match http::read_request(&mut reader, MAX_BODY_BYTES) {
        Ok(request) => {
            let (answer, route) = shared.answer(&request, peer);
            access_log(&request.method, &request.target, route, &answer);
            (answer, request.method == "HEAD")
        }
        Err(refused) => {
            let answer = match refused {
                http::ReadError::TooLarge(413, _) => {
                    Answer::gateway(413, "Request Entity Too Large")
                }
                http::ReadError::TooLarge(status, _) => {
                    Answer::gateway(status, "Request Header Fields Too Large")
                }
                http::ReadError::Malformed(_) => Answer::gateway(400, "Bad Request"),
                // A client that did not send its whole request within the deadline is told
                // so, and logged like any other refused request.
                http::ReadError::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
                    Answer::gateway(408, "Request Timeout")
                }
                http::ReadError::Closed | http::ReadError::Io(_) => return Ok(()),
            };
            // The request could not be read, so its method and target are unknown.
            access_log("-", "-", None, &answer);
            (answer, false)
        }
    };
    let mut writer = http::Deadline::new(stream, CLIENT_TIMEOUT);
    http::write_response(&mut writer, answer.status, &answer.headers, &answer.body, head, true)
}

impl Shared {
    fn env(&self) -> &EnvModel {
        &self.model.environments[self.env]
    }

    /// The answer to one request: the gateway's entry and route selection, then the backend.
    /// Also returns the route that took it, if any, for the access log.
    fn answer(&self, request: &http::Request, peer: SocketAddr) -> (Answer, Option<&RouteModel>) {
        let number = self.requests.fetch_add(1, Ordering::SeqCst);
        let now_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let request_id = format!("{:x}{number:04x}=", now_ms);

        let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
        let decoded = event::percent_decode(path);
        let env = self.env();
        let entry = env.entry();
        let mut taken = None;
        let mut answer = match engine::strip_entry(&entry, &decoded) {
            Err(_) => Answer::gateway(404, "Not Found"),
            Ok(routed) => {
                let selection = engine::select(&self.keys, &request.method, &routed);
                taken = selection.winner.map(|i| &self.model.routes[i]);
                match taken {
                    None => Answer::gateway(404, "Not Found"),
                    Some(route) => {
                        // With a mapping key, rawPath is the path below it (section 3's one
                        // report); otherwise it is the path as sent, a named stage included.
                        let raw_path = match &entry {
                            Entry::CustomDomain { mapping_key } if !mapping_key.is_empty() => {
                                routed.clone()
                            }
                            _ => decoded.clone(),
                        };
                        let peer_ip = peer.ip().to_string();
                        let incoming = event::Incoming {
                            method: &request.method,
                            path,
                            query,
                            protocol: "HTTP/1.1",
                            headers: &request.headers,
                            body: &request.body,
                            source_ip: &peer_ip,
                            port: self.port,
                        };
                        let routed = event::Routed {
                            route_key: &route.key,
                            raw_path: &raw_path,
                            path_parameters: &selection.path_parameters,
                        };
                        let context = event::Context {
                            account_id: "000000000000",
                            api_id: "local",
                            domain_name: &self.host,
                            stage: &env.stage,
                            request_id: &request_id,
                            time_epoch_ms: now_ms,
                        };
                        tracing::debug!(
                            method = %request.method,
                            path = %decoded,
                            route = %route.key,
                            backend = %route.backend,
                            "routed"
                        );
                        self.play(&route.backend, &incoming, &routed, &context)
                    }
                }
            }
        };
        answer.headers.push(("apigw-requestid".into(), request_id));
        (answer, taken)
    }

    fn play(
        &self,
        backend: &str,
        incoming: &event::Incoming,
        routed: &event::Routed,
        context: &event::Context,
    ) -> Answer {
        match self.players.get(backend) {
            Some(Player::StandIn(stand_in)) => Answer {
                status: stand_in.status,
                headers: vec![("content-type".into(), stand_in.content_type.clone())],
                body: stand_in.body.clone().into_bytes(),
            },
            Some(Player::Function(runtime)) => {
                let event = event::build(incoming, routed, context).to_string().into_bytes();
                match runtime.invoke(context.request_id, event) {
                    Outcome::Response(payload) => event::read_response(&payload),
                    Outcome::TimedOut => Answer::gateway(503, "Service Unavailable"),
                    Outcome::Error(detail) => {
                        tracing::warn!(
                            function = runtime.arn(),
                            error = %String::from_utf8_lossy(&detail),
                            "function error"
                        );
                        Answer::gateway(500, "Internal Server Error")
                    }
                    Outcome::Exited(why) => {
                        tracing::warn!("{why}; starting it again");
                        if let Err(e) = runtime.restart() {
                            tracing::warn!(function = runtime.arn(), error = %e, "restart failed");
                        }
                        Answer::gateway(500, "Internal Server Error")
                    }
                }
            }
            // Start-up refuses a routed backend that nothing plays.
            None => Answer::gateway(500, "Internal Server Error"),
        }
    }
}

/// Whether the binary holds `digest`, which a generated router keeps as its identity.
fn built_from(binary: &Path, digest: &str) -> bool {
    let Ok(bytes) = std::fs::read(binary) else { return false };
    bytes.windows(digest.len()).any(|window| window == digest.as_bytes())
}

/// One line on stdout per request: what was asked, the route that took it and its backend, and
/// what was answered. A test reads it to tell which backend answered a request, and a person
/// running `serve` sees, for example, a discovery request that fell through to `$default`.
fn access_log(method: &str, target: &str, route: Option<&RouteModel>, answer: &Answer) {
    let content_type = answer
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map_or("-", |(_, value)| value.as_str());
    let taken = match route {
        Some(route) => format!("{} ({})", route.key, route.backend),
        None => "no route".to_owned(),
    };
    // The method and target come from the network, and the content type from a function or
    // the spec: escaped, so none can forge a second line, and the content type is quoted last,
    // so nothing in it reads as the route or the status. A closed stdout must not stop the
    // gateway, so a failed write is ignored.
    let _ = writeln!(
        io::stdout().lock(),
        "{} {} -> {taken} {} {content_type:?}",
        method.escape_debug(),
        target.escape_debug(),
        answer.status,
    );
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

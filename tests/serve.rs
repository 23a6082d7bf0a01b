//! `specgen serve` as a client sees it: the binary serves a local environment on a free loopback
//! port, and plain HTTP requests check the stand-ins, the gateway's 404 and that every request
//! lands where `engine::select` says. Each test stops the gateway it started by its process id
//! and waits for it, within a bounded time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use specgen::engine;
use specgen::run;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A spec with a local environment on `port`, three backends each played by a stand-in that
/// names it, and `routes` (YAML list items).
fn spec(dir: &Path, port: u16, routes: &str) -> PathBuf {
    let text = format!(
        "api:
  name: served
environments:
  - name: local
    local: true
    origin: http://127.0.0.1:{port}
  - name: dev
    origin: https://dev.served.example
    custom_domain:
      mapping_key: \"\"
backends:
  - name: wiki
    deploy: referenced
    local:
      body: <h1>wiki</h1>
  - name: pets
    deploy: referenced
    local:
      status: 201
      content_type: text/plain
      body: pets
  - name: mcp
    deploy: managed
    router: true
    local:
      status: 418
      content_type: application/json
      body: '{{\"backend\":\"mcp\"}}'
routes:
{routes}
oauth:
  issuer: https://issuer.example
  default_endpoints: true
  resources:
    - backend: mcp
      mount: /mcp
"
    );
    let path = dir.join("served.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const WITH_DEFAULT: &str = "  - key: $default
    backend: wiki
  - key: GET /pets/{id}
    backend: pets
";

const WITHOUT_DEFAULT: &str = "  - key: GET /Home
    backend: wiki
  - key: GET /pets/{id}
    backend: pets
  - key: GET /pets/dog/1
    backend: wiki
  - key: ANY /api/{proxy+}
    backend: pets
";

/// A running `specgen serve`, stopped by its process id when dropped.
struct Served {
    child: Child,
    url: String,
    /// The rest of serve's stdout: its access log.
    log: BufReader<ChildStdout>,
}

impl Served {
    fn start(spec: &Path, env: &str) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_specgen"))
            .args(["serve", spec.to_str().unwrap(), "--env", env])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut log = BufReader::new(child.stdout.take().unwrap());
        log.read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("serving on ").unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start: {line:?}")
        });
        Served { url: url.to_owned(), child, log }
    }

    /// The next line of the access log.
    fn logged(&mut self) -> String {
        let mut line = String::new();
        self.log.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Sends SIGTERM and waits at most 10 s for a clean exit.
    fn stop(mut self) -> Option<i32> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill sends a signal to the process this test started, by its id.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Status, content type and body of `method url`.
fn send(method: &str, url: &str) -> (u16, String, String) {
    let request = ureq::http::Request::builder().method(method).uri(url).body(()).unwrap();
    let mut response = agent().run(request).unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), content_type, body)
}

#[test]
fn the_stand_in_answers_default_and_the_gateway_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&spec(dir.path(), free_port(), WITH_DEFAULT), "local");

    let (status, content_type, body) = send("GET", &format!("{}/Home", served.url));
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (200, "text/html; charset=utf-8", "<h1>wiki</h1>")
    );
    let (status, _, body) = send("GET", &format!("{}/pets/7", served.url));
    assert_eq!((status, body.as_str()), (201, "pets"));
    // The derived MCP routes reach the mcp backend, played here by its stand-in.
    let (status, _, body) = send("POST", &format!("{}/mcp", served.url));
    assert_eq!((status, body.as_str()), (418, r#"{"backend":"mcp"}"#));

    assert_eq!(served.stop(), Some(0));
}

#[test]
fn unmatched_requests_get_the_gateway_404() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&spec(dir.path(), free_port(), WITHOUT_DEFAULT), "local");
    for (method, path) in
        [("GET", "/nothing"), ("POST", "/Home"), ("GET", "/api"), ("GET", "/Home/")]
    {
        let (status, content_type, body) = send(method, &format!("{}{path}", served.url));
        assert_eq!(
            (status, content_type.as_str(), body.as_str()),
            (404, "application/json", r#"{"message":"Not Found"}"#),
            "{method} {path}"
        );
    }
    assert_eq!(served.stop(), Some(0));
}

#[test]
fn every_request_lands_where_the_engine_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), free_port(), WITHOUT_DEFAULT);
    let model = run::compile(&path).model.unwrap();
    let env = model.environments.iter().find(|e| e.name == "local").unwrap();
    let keys: Vec<engine::RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
    let served = Served::start(&path, "local");

    let table = [
        ("GET", "/Home"),
        ("HEAD", "/Home"),
        ("GET", "/pets/dog/1"),
        ("GET", "/pets/dog/2"),
        ("GET", "/pets/cat"),
        ("DELETE", "/pets/cat"),
        ("PUT", "/api/x/y"),
        ("GET", "/api/"),
        ("GET", "/mcp"),
        ("OPTIONS", "/mcp/sub"),
        ("GET", "/.well-known/oauth-protected-resource/mcp"),
        ("GET", "/.well-known/security.txt"),
        ("GET", "/pets/a%20b"),
    ];
    for (method, request_path) in table {
        let routed = engine::strip_entry(&env.entry(), &request_path.replace("%20", " ")).unwrap();
        let selection = engine::select(&keys, method, &routed);
        let expected = match selection.winner.map(|i| model.routes[i].backend.as_str()) {
            None => (404, r#"{"message":"Not Found"}"#),
            Some("wiki") => (200, "<h1>wiki</h1>"),
            Some("pets") => (201, "pets"),
            Some(_) => (418, r#"{"backend":"mcp"}"#),
        };
        let (status, _, body) = send(method, &format!("{}{request_path}", served.url));
        let expected_body = if method == "HEAD" { "" } else { expected.1 };
        assert_eq!((status, body.as_str()), (expected.0, expected_body), "{method} {request_path}");
    }
    assert_eq!(served.stop(), Some(0));
}

fn specgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_specgen")).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn a_busy_port_is_refused_with_exit_74() {
    let dir = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let path = spec(dir.path(), port, WITH_DEFAULT);
    let output = specgen(&["serve", path.to_str().unwrap(), "--env", "local"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(74), "{stderr}");
    assert!(stderr.contains(&format!("port {port} on 127.0.0.1 is busy")), "{stderr}");
}

#[test]
fn only_local_environments_with_every_backend_played_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), free_port(), WITH_DEFAULT);
    let output = specgen(&["serve", path.to_str().unwrap(), "--env", "dev"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("environment `dev` is not local"));

    let output = specgen(&[
        "serve",
        path.to_str().unwrap(),
        "--env",
        "local",
        "--backend",
        "nope=/bin/true",
    ]);
    assert_eq!(output.status.code(), Some(64));

    let bare = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    local:\n      body: <h1>wiki</h1>\n", "");
    std::fs::write(&path, bare).unwrap();
    let output = specgen(&["serve", path.to_str().unwrap(), "--env", "local"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("nothing plays backend `wiki`"), "{stderr}");
}

#[test]
fn the_access_log_names_the_route_and_backend_that_took_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(&spec(dir.path(), free_port(), WITH_DEFAULT), "local");
    send("GET", &format!("{}/pets/7?x=1", served.url));
    assert_eq!(served.logged(), "GET /pets/7?x=1 -> GET /pets/{id} (pets) 201 \"text/plain\"");
    send("GET", &format!("{}/.well-known/oauth-protected-resource/mcp", served.url));
    assert_eq!(
        served.logged(),
        "GET /.well-known/oauth-protected-resource/mcp -> \
         ANY /.well-known/oauth-protected-resource/mcp (mcp) 418 \"application/json\""
    );
    send("GET", &format!("{}/Home", served.url));
    let line = served.logged();
    assert!(line.starts_with("GET /Home -> $default (wiki) 200 \"text/html"), "{line}");
    // A request that cannot be read is logged too, without a method or target to show.
    let address = served.url.trim_start_matches("http://").to_owned();
    let mut raw = std::net::TcpStream::connect(address).unwrap();
    raw.write_all(b"G(ET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(served.logged(), "- - -> no route 400 \"application/json\"");
    assert_eq!(served.stop(), Some(0));
}

#[test]
fn the_gateway_listens_on_the_origins_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = spec(dir.path(), port, WITH_DEFAULT);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("http://127.0.0.1:", "http://127.0.0.2:")).unwrap();
    let served = Served::start(&path, "local");
    assert_eq!(served.url, format!("http://127.0.0.2:{port}"));
    let (status, _, body) = send("GET", &format!("{}/Home", served.url));
    assert_eq!((status, body.as_str()), (200, "<h1>wiki</h1>"));
    // Nothing listens on 127.0.0.1 instead.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(served.stop(), Some(0));
}

#[test]
fn a_localhost_origin_is_refused_as_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), free_port(), WITH_DEFAULT);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("http://127.0.0.1:", "http://localhost:")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_specgen"))
        .args(["serve", path.to_str().unwrap(), "--env", "local"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not name one loopback address"), "{stderr}");
}

#[test]
fn a_backend_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), free_port(), WITH_DEFAULT);
    let output = Command::new(env!("CARGO_BIN_EXE_specgen"))
        .args(["serve", path.to_str().unwrap(), "--env", "local"])
        .args(["--backend", "pets=/bin/true", "--backend", "pets=/bin/false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("names `pets` twice"));
}

#[test]
fn a_request_not_sent_within_the_deadline_gets_408_and_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(&spec(dir.path(), free_port(), WITH_DEFAULT), "local");
    let address = served.url.trim_start_matches("http://").to_owned();
    let mut raw = std::net::TcpStream::connect(address).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Half a request, then nothing: the gateway's deadline, not this test, ends it.
    raw.write_all(b"GET /Home HTTP/1.1\r\nX-Slow: a").unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(served.logged(), "- - -> no route 408 \"application/json\"");
    assert_eq!(served.stop(), Some(0));
}

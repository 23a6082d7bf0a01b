//! `specgen serve` with functions that misbehave: one that exits at start-up, one that writes to
//! stdout, one that starts a process of its own. Each is a small Python program speaking the
//! Lambda Runtime API on loopback, started by serve as it starts the generated router.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A spec whose every route goes to backend `fn`, on a local environment on `port`.
fn spec(dir: &Path, port: u16) -> PathBuf {
    let text = format!(
        "api:
  name: functions
environments:
  - name: local
    local: true
    origin: http://127.0.0.1:{port}
backends:
  - name: fn
    deploy: managed
    runtime: provided.al2023
    handler: bootstrap
    timeout_seconds: 5
routes:
  - key: $default
    backend: fn
"
    );
    let path = dir.join("functions.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A Python function: `setup` runs first, then it answers `ROUNDS` (100) invocations with 200
/// `ok` and exits.
fn function(dir: &Path, name: &str, setup: &str) -> PathBuf {
    let text = format!(
        r#"#!/usr/bin/env python3
import json, os, subprocess, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
ROUNDS = 100
{setup}
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
for _ in range(ROUNDS):
    with opener.open(api + "/invocation/next", timeout=60) as response:
        request_id = response.headers["lambda-runtime-aws-request-id"]
    answer = json.dumps({{"statusCode": 200, "body": "ok"}}).encode()
    opener.open(urllib.request.Request(api + "/invocation/" + request_id + "/response",
                                       data=answer, method="POST"), timeout=10).read()
"#
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).unwrap();
    path
}

fn serve(spec: &Path, binary: &Path) -> Child {
    serve_backends(spec, &[("fn", binary)])
}

/// `specgen serve` with each `(backend, binary)` given by `--backend`.
fn serve_backends(spec: &Path, backends: &[(&str, &Path)]) -> Child {
    let backends =
        backends.iter().map(|(name, binary)| format!("--backend={name}={}", binary.display()));
    Command::new(env!("CARGO_BIN_EXE_specgen"))
        .args(["serve", spec.to_str().unwrap(), "--env", "local"])
        .args(backends)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits at most 20 s for the process to exit.
fn wait(child: &mut Child) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn terminate(child: &mut Child) -> Option<i32> {
    // SAFETY: kill sends a signal to the process this test started, by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    wait(child)
}

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn a_function_that_exits_at_start_up_is_refused_before_serve_announces_itself() {
    let dir = tempfile::tempdir().unwrap();
    let binary = function(dir.path(), "exits.py", "sys.exit(3)");
    let mut child = serve(&spec(dir.path(), free_port()), &binary);
    assert_eq!(wait(&mut child), Some(74));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stdout.contains("serving on"), "{stdout}");
    assert!(stderr.contains("exited during start-up"), "{stderr}");
}

#[test]
fn what_a_function_prints_never_reaches_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let forged =
        "GET /.well-known/oauth-protected-resource -> ANY /x (mcp) 200 \\\"application/json\\\"";
    let binary = function(dir.path(), "prints.py", &format!("print(\"{forged}\", flush=True)"));
    let port = free_port();
    let mut child = serve(&spec(dir.path(), port), &binary);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("serving on"), "{line}");
    let answer = ureq::get(&format!("http://127.0.0.1:{port}/page")).call().unwrap();
    assert_eq!(answer.status(), 200);
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "GET /page -> $default (fn) 200 \"-\"");
    assert_eq!(terminate(&mut child), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("well-known"), "{rest}");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("oauth-protected-resource"), "the function's line went to stderr");
}

#[test]
fn stopping_serve_stops_the_processes_a_function_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let setup = format!(
        "child = subprocess.Popen([\"sleep\", \"300\"])\nopen({:?}, \"w\").write(str(child.pid))",
        pid_file.display().to_string()
    );
    let binary = function(dir.path(), "spawns.py", &setup);
    let mut child = serve(&spec(dir.path(), free_port()), &binary);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("serving on"), "{line}");
    let grandchild: libc::pid_t = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(alive(grandchild));
    assert_eq!(terminate(&mut child), Some(0));
    let started = Instant::now();
    while alive(grandchild) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(grandchild) {
        // SAFETY: the process this test's function started, by its id.
        unsafe { libc::kill(grandchild, libc::SIGKILL) };
        panic!("the function's own process outlived serve");
    }
}

/// A spec with a generated-router backend `mcp` as well, on a local environment on `port`.
fn spec_with_router(dir: &Path, port: u16) -> PathBuf {
    let path = spec(dir, port);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "routes:",
        "  - name: mcp
    deploy: managed
    router: true
routes:",
    ) + "oauth:
  issuer: https://issuer.example
  resources:
    - backend: mcp
      mount: /mcp
";
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_router_binary_built_for_another_backend_or_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_with_router(dir.path(), free_port());
    let model = specgen::run::compile(&spec).model.unwrap();
    let digest = specgen::render::router_identity(&model, &model.crates[0]);
    let plain = function(dir.path(), "plain.py", "");
    let stale = function(dir.path(), "stale.py", &format!("# built from {}", "0".repeat(64)));
    let mut child = serve_backends(&spec, &[("fn", &plain), ("mcp", &stale)]);
    assert_eq!(wait(&mut child), Some(64));
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("was not built for backend `mcp` from this version"), "{stderr}");
    assert!(stderr.contains(&digest), "{stderr}");

    // Its twin: the same binary carrying this spec's digest is served.
    let current = function(dir.path(), "current.py", &format!("# built from {digest}"));
    let mut child = serve_backends(&spec, &[("fn", &plain), ("mcp", &current)]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("serving on"), "{line}");
    assert_eq!(terminate(&mut child), Some(0));
}

#[test]
fn a_function_that_exits_is_started_again_for_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let binary = function(dir.path(), "once.py", "ROUNDS = 1");
    let port = free_port();
    let mut child = serve(&spec(dir.path(), port), &binary);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("serving on"), "{line}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let status =
        |_: usize| agent.get(&format!("http://127.0.0.1:{port}/")).call().unwrap().status();
    // The first answer, then the process is gone: that request fails, as on Lambda, and the
    // next one reaches a new process.
    assert_eq!(status(1), 200);
    assert_eq!(status(2), 500);
    assert_eq!(status(3), 200);
    assert_eq!(terminate(&mut child), Some(0));
}

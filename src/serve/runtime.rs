//! An emulated Lambda Runtime API on loopback, and the function process that polls it.
//!
//! A backend run from its own binary is started as Lambda starts a custom runtime: with
//! `AWS_LAMBDA_RUNTIME_API` pointing at this module's server and the usual `AWS_LAMBDA_*`
//! variables. The binary runs its ordinary runtime loop (`lambda_http::run` for the generated
//! router): it long-polls `GET /2018-06-01/runtime/invocation/next`, gets one event with its
//! `Lambda-Runtime-*` headers, and posts the answer to `.../invocation/{id}/response`, or a
//! failure to `.../invocation/{id}/error`. Like one Lambda instance, the function takes one
//! invocation at a time; the others wait in line. The process is stopped by its id.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{self, ReadError};

const PREFIX: &str = "/2018-06-01/runtime";

/// The largest answer a function may post: Lambda's limit on a synchronous response.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Connections the runtime API serves at once; a runtime client needs one or two.
const MAX_CONNECTIONS: usize = 16;

/// How one invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function's answer, as posted.
    Response(Vec<u8>),
    /// The function reported an error (or failed to start): the posted error document.
    Error(Vec<u8>),
    /// No answer within the function's timeout.
    TimedOut,
    /// The function process is gone.
    Exited(String),
}

/// How the function process is started.
#[derive(Debug, Clone)]
pub struct Function<'a> {
    pub name: &'a str,
    pub binary: &'a Path,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// Variables of the function's configuration, set after the runtime's own.
    pub variables: Vec<(String, String)>,
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline_ms: u64,
    reply: Sender<Outcome>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Invocation>>,
    arrived: Condvar,
    pending: Mutex<HashMap<String, Sender<Outcome>>>,
    init_error: Mutex<Option<Vec<u8>>>,
    connections: AtomicUsize,
}

/// A running function and the runtime API it polls.
pub struct Runtime {
    name: String,
    arn: String,
    timeout: Duration,
    child: Mutex<Child>,
    shared: Arc<Shared>,
}

impl Runtime {
    /// Binds the runtime API on a free loopback port and starts the function's process.
    pub fn start(function: &Function) -> io::Result<Runtime> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{}", function.name);
        {
            let shared = Arc::clone(&shared);
            let arn = arn.clone();
            thread::spawn(move || accept(listener, shared, arn));
        }

        let mut command = Command::new(function.binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", function.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "specgen-serve")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .envs(function.variables.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        stop_with_parent(&mut command);
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start {}: {e}", function.binary.display()))
        })?;
        tracing::debug!(function = function.name, pid = child.id(), %address, "function started");

        Ok(Runtime {
            name: function.name.to_owned(),
            arn,
            timeout: function.timeout,
            child: Mutex::new(child),
            shared,
        })
    }

    /// Invokes the function with `event` and waits for its outcome, at most the function's
    /// timeout.
    pub fn invoke(&self, id: &str, event: Vec<u8>) -> Outcome {
        let (reply, outcome) = mpsc::channel();
        let deadline_ms = epoch_ms() + self.timeout.as_millis() as u64;
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push_back(Invocation { id: id.to_owned(), event, deadline_ms, reply });
        }
        self.shared.arrived.notify_all();
        let result = self.wait(&outcome);
        // An invocation that timed out must not be answered later or handed out still.
        self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).retain(|i| i.id != id);
        result
    }

    fn wait(&self, outcome: &Receiver<Outcome>) -> Outcome {
        let started = Instant::now();
        loop {
            let left = self.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Outcome::TimedOut;
            }
            match outcome.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Disconnected) => return Outcome::TimedOut,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(error) =
                self.shared.init_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
            {
                return Outcome::Error(error);
            }
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(Some(status)) = child.try_wait() {
                return Outcome::Exited(format!("function `{}` exited: {status}", self.name));
            }
        }
    }

    /// The function's ARN, as the runtime API reports it.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Stops the function's process by its id and reaps it.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            tracing::debug!(function = %self.name, pid = child.id(), "stopping function");
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks the kernel to stop the function when serve dies without cleaning up (killed by
/// `SIGKILL`), so no function outlives its gateway.
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_: &mut Command) {}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn accept(listener: TcpListener, shared: Arc<Shared>, arn: String) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let shared = Arc::clone(&shared);
        let arn = arn.clone();
        thread::spawn(move || {
            let _ = serve_connection(stream, &shared, &arn);
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Serves runtime API requests on one kept-alive connection until the client closes it.
fn serve_connection(stream: TcpStream, shared: &Shared, arn: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let request = match http::read_request(&mut reader, MAX_PAYLOAD) {
            Ok(request) => request,
            Err(ReadError::TooLarge(status, why)) => {
                let body = error_body("RequestTooLarge", why);
                return http::write_response(&mut writer, status, &json(), &body, false, true);
            }
            Err(_) => return Ok(()),
        };
        let close = request.wants_close();
        let (status, headers, body) = answer(&request, shared, arn);
        http::write_response(&mut writer, status, &headers, &body, false, close)?;
        if close {
            return Ok(());
        }
    }
}

fn json() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

fn error_body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "errorMessage": message, "errorType": kind }).to_string().into_bytes()
}

fn answer(
    request: &http::Request,
    shared: &Shared,
    arn: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let accepted = (202, json(), br#"{"status":"OK"}"#.to_vec());
    let path = request.target.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return (404, json(), error_body("NotFound", "not a runtime API path"));
    };

    match (request.method.as_str(), rest) {
        ("GET", "/invocation/next") => {
            let invocation = next(shared);
            let mut headers = json();
            headers.push(("lambda-runtime-aws-request-id".into(), invocation.id.clone()));
            headers.push(("lambda-runtime-deadline-ms".into(), invocation.deadline_ms.to_string()));
            headers.push(("lambda-runtime-invoked-function-arn".into(), arn.to_owned()));
            headers.push((
                "lambda-runtime-trace-id".into(),
                super::event::trace_id(epoch_ms(), &invocation.id),
            ));
            shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(invocation.id.clone(), invocation.reply);
            (200, headers, invocation.event)
        }
        ("POST", "/init/error") => {
            tracing::debug!("function reported an init error");
            *shared.init_error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(request.body.clone());
            accepted
        }
        ("POST", rest) => {
            let Some((id, kind)) =
                rest.strip_prefix("/invocation/").and_then(|r| r.rsplit_once('/'))
            else {
                return (404, json(), error_body("NotFound", "not a runtime API path"));
            };
            let reply = shared.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            let Some(reply) = reply else {
                return (
                    400,
                    json(),
                    error_body("InvalidRequestID", "unknown or finished request id"),
                );
            };
            let outcome = match kind {
                "response" => Outcome::Response(request.body.clone()),
                "error" => Outcome::Error(request.body.clone()),
                _ => return (404, json(), error_body("NotFound", "not a runtime API path")),
            };
            let _ = reply.send(outcome);
            accepted
        }
        _ => (405, json(), error_body("MethodNotAllowed", "method not allowed")),
    }
}

/// The next invocation, waiting as long as it takes: the runtime's long poll.
fn next(shared: &Shared) -> Invocation {
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(invocation) = queue.pop_front() {
            return invocation;
        }
        queue = shared.arrived.wait(queue).unwrap_or_else(|e| e.into_inner());
    }
}

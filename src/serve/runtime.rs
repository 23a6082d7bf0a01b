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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// How long a function may take to start before its first poll: Lambda's own limit on the init
/// phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a waiting long poll checks that its client is still there.
const POLL_CHECK: Duration = Duration::from_millis(500);

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
    /// Set by the function's first long poll: its start-up is over.
    polled: AtomicBool,
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
    binary: PathBuf,
    /// Starts the function's processes, the first and any after an exit.
    spawner: Sender<SpawnRequest>,
    child: Mutex<Child>,
    /// Set once the process was reaped by [`Runtime::stop`].
    reaped: AtomicBool,
    shared: Arc<Shared>,
}

impl Runtime {
    /// Binds the runtime API on a free loopback port, starts the function's process and waits
    /// for its first poll. A function that exits, reports an init error or does not poll within
    /// Lambda's init timeout is stopped and refused, so serve never announces a gateway whose
    /// function cannot answer.
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
            // The function's own output goes to stderr: serve's stdout is its access log, and
            // a function (Lambda code logs to stdout) must not be able to write lines into it.
            .stdout(stderr_for_child()?)
            .stderr(Stdio::inherit());
        stop_with_parent(&mut command);
        // Its own process group, so stopping it also stops what it started.
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let spawner = spawner(command);
        let child = spawn_with(&spawner).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start {}: {e}", function.binary.display()))
        })?;
        tracing::debug!(function = function.name, pid = child.id(), %address, "function started");

        let runtime = Runtime {
            name: function.name.to_owned(),
            arn,
            timeout: function.timeout,
            binary: function.binary.to_path_buf(),
            spawner,
            child: Mutex::new(child),
            reaped: AtomicBool::new(false),
            shared,
        };
        runtime.wait_for_first_poll()?;
        Ok(runtime)
    }

    /// Starts a new process after the function's process exited, as Lambda starts a new
    /// execution environment: the invocation that saw the exit failed, the next ones go to the
    /// new process. Does nothing while the process runs, so requests that saw the same exit
    /// start one new process between them.
    pub fn restart(&self) -> io::Result<()> {
        {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            let stopped = self.reaped.load(Ordering::SeqCst);
            if !stopped && peek_exit(child.id()).is_none() {
                return Ok(());
            }
            if !stopped {
                self.stop_locked(&mut child);
            }
            self.shared.polled.store(false, Ordering::SeqCst);
            *self.shared.init_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *child = spawn_with(&self.spawner)?;
            self.reaped.store(false, Ordering::SeqCst);
            tracing::debug!(function = %self.name, pid = child.id(), "function restarted");
        }
        self.wait_for_first_poll()
    }

    fn wait_for_first_poll(&self) -> io::Result<()> {
        let binary = &self.binary;
        let started = Instant::now();
        let refuse = |why: String| {
            self.stop();
            Err(io::Error::other(format!("{}: {why}", binary.display())))
        };
        while !self.shared.polled.load(Ordering::SeqCst) {
            if let Some(error) =
                self.shared.init_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
            {
                return refuse(format!(
                    "the function reported an init error: {}",
                    String::from_utf8_lossy(&error)
                ));
            }
            if let Some(status) = self.exited() {
                return refuse(format!("the function exited during start-up ({status})"));
            }
            if started.elapsed() > INIT_TIMEOUT {
                return refuse(format!(
                    "the function did not poll the Runtime API within {} s",
                    INIT_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        tracing::debug!(
            function = %self.name,
            ms = started.elapsed().as_millis() as u64,
            "function ready"
        );
        Ok(())
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
            if let Some(status) = self.exited() {
                return Outcome::Exited(format!("function `{}` exited: {status}", self.name));
            }
        }
    }

    /// The function's ARN, as the runtime API reports it.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// How the function's process ended, if it has, without reaping it: until [`Self::stop`]
    /// reaps it, its process id, and so its process group's id, cannot be reused, and stopping
    /// the group cannot reach anyone else's processes.
    fn exited(&self) -> Option<String> {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if self.reaped.load(Ordering::SeqCst) {
            return Some("stopped".into());
        }
        peek_exit(child.id())
    }

    /// Stops the function's process group by its id, then reaps the process. Only the first
    /// call signals: after the reaping, the id may belong to someone else.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_locked(&mut child);
    }

    fn stop_locked(&self, child: &mut Child) {
        if self.reaped.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!(function = %self.name, pid = child.id(), "stopping function");
        if let Ok(group) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill signals the process group this gateway started; its id is the
            // child's pid (process_group(0) at spawn), which is not reaped yet, so still ours.
            unsafe { libc::kill(-group, libc::SIGKILL) };
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

/// How process `pid`, a child of this process, ended, if it has, leaving it to be reaped.
#[cfg(target_os = "linux")]
fn peek_exit(pid: u32) -> Option<String> {
    let pid = libc::id_t::try_from(pid).ok()?;
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: a zeroed siginfo_t is a valid value; waitid writes only into it, and WNOWAIT
    // leaves the child to be reaped later. After a successful call, si_pid is 0 when the child
    // has not changed state, and si_status holds its exit code or signal otherwise.
    let (exited_pid, status, code) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::waitid(libc::P_PID, pid, &mut info, flags) != 0 {
            return None;
        }
        (info.si_pid(), info.si_status(), info.si_code)
    };
    match (exited_pid, code) {
        (0, _) => None,
        (_, libc::CLD_EXITED) => Some(format!("exit status: {status}")),
        _ => Some(format!("killed by signal {status}")),
    }
}

/// Elsewhere an exit is not seen before the function stops answering: start-up then waits out
/// the init timeout, and an invocation its own timeout.
#[cfg(not(target_os = "linux"))]
fn peek_exit(_: u32) -> Option<String> {
    None
}

/// A request to the spawner thread: the channel its answer goes to.
type SpawnRequest = Sender<io::Result<Child>>;

/// Starts the function's processes from one thread that lives as long as the runtime. The
/// kernel sends the parent-death signal (see [`stop_with_parent`]) when the *thread* that
/// spawned a child ends, so a process started again from a request's thread would be stopped as
/// soon as that request was answered.
fn spawner(mut command: Command) -> Sender<SpawnRequest> {
    let (requests, incoming) = mpsc::channel::<SpawnRequest>();
    thread::spawn(move || {
        for reply in incoming {
            let _ = reply.send(command.spawn());
        }
    });
    requests
}

fn spawn_with(spawner: &Sender<SpawnRequest>) -> io::Result<Child> {
    let gone = || io::Error::other("the thread that starts functions is gone");
    let (reply, answer) = mpsc::channel();
    spawner.send(reply).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// A handle on serve's own stderr for a child's stdout.
fn stderr_for_child() -> io::Result<Stdio> {
    use std::os::fd::AsFd;
    Ok(Stdio::from(io::stderr().as_fd().try_clone_to_owned()?))
}

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
        let Some((status, headers, body)) = answer(&request, shared, arn, &writer) else {
            return Ok(());
        };
        http::write_response(&mut writer, status, &headers, &body, false, close)?;
        if close {
            return Ok(());
        }
    }
}

/// A runtime API answer: status, headers and body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn json() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

fn error_body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "errorMessage": message, "errorType": kind }).to_string().into_bytes()
}

/// The answer to one runtime API request; `None` when a long poll's client went away.
fn answer(
    request: &http::Request,
    shared: &Shared,
    arn: &str,
    client: &TcpStream,
) -> Option<Reply> {
    let accepted = (202, json(), br#"{"status":"OK"}"#.to_vec());
    let path = request.target.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Some((404, json(), error_body("NotFound", "not a runtime API path")));
    };

    Some(match (request.method.as_str(), rest) {
        ("GET", "/invocation/next") => {
            shared.polled.store(true, Ordering::SeqCst);
            let invocation = next(shared, client)?;
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
                return Some((404, json(), error_body("NotFound", "not a runtime API path")));
            };
            let reply = shared.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            let Some(reply) = reply else {
                return Some((
                    400,
                    json(),
                    error_body("InvalidRequestID", "unknown or finished request id"),
                ));
            };
            let outcome = match kind {
                "response" => Outcome::Response(request.body.clone()),
                "error" => Outcome::Error(request.body.clone()),
                _ => return Some((404, json(), error_body("NotFound", "not a runtime API path"))),
            };
            let _ = reply.send(outcome);
            accepted
        }
        _ => (405, json(), error_body("MethodNotAllowed", "method not allowed")),
    })
}

/// The next invocation, waiting as long as it takes: the runtime's long poll. Returns `None`
/// when the client closed its connection while waiting, so the next invocation goes to a poll
/// that can still take it instead of to a socket nobody reads.
fn next(shared: &Shared, client: &TcpStream) -> Option<Invocation> {
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(invocation) = queue.pop_front() {
            return Some(invocation);
        }
        queue = shared.arrived.wait_timeout(queue, POLL_CHECK).unwrap_or_else(|e| e.into_inner()).0;
        if queue.is_empty() && client_gone(client) {
            return None;
        }
    }
}

/// Whether the peer closed the connection: a read would see the end of the stream (or fail)
/// instead of blocking.
fn client_gone(client: &TcpStream) -> bool {
    if client.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let gone = match client.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    gone || client.set_nonblocking(false).is_err()
}

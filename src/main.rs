//! The `specgen` command line: parses arguments, calls the library, prints the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use specgen::run::{self, Mode, Request, exit};
use specgen::{diag, explain, probe, serve};

#[derive(Parser)]
#[command(name = "specgen", version, about = "Compile routing specs for API Gateway HTTP APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How diagnostics are printed.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Log decisions (specs loaded, routes derived, files written) to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs and write their outputs under the output directory.
    Build {
        /// Spec files. Without any, every specs/*.yaml.
        specs: Vec<PathBuf>,
        /// Where generated files go.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
    },
    /// Run every check and compare the output directory with what `build` would write.
    Check {
        /// Spec files. Without any, every specs/*.yaml, and orphaned files are reported too.
        specs: Vec<PathBuf>,
        /// Where generated files are.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
    },
    /// Show which route API Gateway picks for one request, why, and who answers it.
    ///
    /// Prints the environment and entry (stage or API mapping, and the path the route table
    /// sees), the winning route with the rules behind it (each with its reference row and tag;
    /// `[?]` rows are assumptions), the routes it beat, the backend and its auth, and for a
    /// backend served by the generated router, the arm that answers and what it answers a
    /// request without a token. Disagreements between the gateway and the router are listed
    /// last. API Gateway's own 404 is an answer too (exit 0). The spec may fail `check`: only
    /// a spec that does not parse or resolve is refused (exit 1). A bad method, URL or
    /// environment is a usage error (exit 64). `--format json` prints one object with the
    /// stable fields spec, request, environment, entry, route, steps, runners_up, assumptions,
    /// ambiguous, path_parameters, backend, auth, router, answer and disagreements, described
    /// in the module documentation of src/explain.rs.
    Explain {
        /// The spec file.
        spec: PathBuf,
        /// The request's method, uppercase: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
        method: String,
        /// An absolute URL, whose origin picks the environment, or a path on the origin of the
        /// environment given with --env (by default the first deployed environment, else the
        /// first one). Stage or mapping key included, as a client sends it.
        url: String,
        /// The environment to explain the request on.
        #[arg(long)]
        env: Option<String>,
    },
    /// Check a running deployment after `pulumi up`: discovery, the 401 challenge, CORS, the
    /// MCP endpoint and the pages the spec names.
    ///
    /// Sends the discovery sequence of an MCP client and the seed's verification requests to
    /// the environment's origin and prints one line per check: pass, fail or skipped. Discovery
    /// answers must be JSON objects readable from any origin (Access-Control-Allow-Origin),
    /// never HTML; the PRM's `resource` and `authorization_servers` and the metadata's
    /// `issuer` must equal the environment's URLs byte for byte; a POST to the MCP endpoint
    /// without a token must get a 401 with `WWW-Authenticate: Bearer resource_metadata="..."`,
    /// and its CORS preflight a 2xx; each backend's `pages` must be 200 HTML. An MCP
    /// `initialize` with a token needs --token or SPECGEN_PROBE_TOKEN, and is skipped without
    /// one. No redirect is followed; each request times out after 10 s. Exit 0 when no check
    /// failed, 1 when one did, 64 on a usage error, 74 when the deployment does not answer.
    /// `--format json` prints one object with spec, environment, origin, target, token,
    /// reached, checks and summary.
    Probe {
        /// The spec file.
        spec: PathBuf,
        /// The environment to probe.
        #[arg(long)]
        env: String,
        /// Send the requests to this http(s) origin instead of the environment's (a proxy, a
        /// tunnel, a local gateway). Answers are still compared with the environment's URLs.
        /// Plain http only on loopback.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// The bearer token for the MCP initialize request, sent only to the probed MCP
        /// endpoint. Prefer the SPECGEN_PROBE_TOKEN variable: a command line is visible to
        /// other users of the machine.
        #[arg(long)]
        token: Option<String>,
    },
    /// Serve a local environment as API Gateway would, on 127.0.0.1, until interrupted.
    ///
    /// Listens on the origin of a `local: true` environment. Each request goes through the same
    /// stage and route selection as `check` and `explain`; a request no route takes gets API
    /// Gateway's `404 {"message":"Not Found"}`. A backend given with --backend runs as a Lambda
    /// function behind an emulated Lambda Runtime API on loopback, and receives API Gateway's
    /// payload format 2.0 event; any other backend is played by the `local` stand-in the spec
    /// gives it. Prints the gateway's URL on stdout once it listens. Exit 0 after SIGINT or
    /// SIGTERM (functions are stopped first), 1 for an invalid spec, 64 on a usage error
    /// (an environment that is not local, a backend nothing plays), 74 when the port is busy or
    /// a binary cannot be started.
    Serve {
        /// The spec file.
        spec: PathBuf,
        /// The local environment to serve.
        #[arg(long)]
        env: String,
        /// Run a backend from a binary that speaks the Lambda Runtime API, such as the
        /// generated router crate's example: NAME=PATH. Repeatable.
        #[arg(long = "backend", value_name = "NAME=PATH", value_parser = serve::parse_backend)]
        backends: Vec<(String, PathBuf)>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() { exit::USAGE } else { exit::CLEAN };
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);

    let request = match cli.command {
        Command::Build { specs, out } => Request { mode: Mode::Build, specs, out },
        Command::Check { specs, out } => Request { mode: Mode::Check, specs, out },
        Command::Explain { spec, method, url, env } => {
            let report = explain::run(&explain::Request { spec, method, url, env });
            print_explanation(&report, cli.format);
            return ExitCode::from(report.exit);
        }
        Command::Probe { spec, env, base_url, token } => {
            let token =
                token.or_else(|| std::env::var(probe::TOKEN_VAR).ok()).and_then(probe::Token::new);
            let report = probe::run(&probe::Request { spec, env, base_url, token });
            print_probe(&report, cli.format);
            return ExitCode::from(report.exit);
        }
        Command::Serve { spec, env, backends } => {
            let report = serve::run(&serve::Request { spec, env, backends }, |url| {
                println!("serving on {url}");
            });
            print_serve(&report, cli.format);
            return ExitCode::from(report.exit);
        }
    };
    let report = run::run(&request);
    print_report(&report, cli.format, request.mode);
    ExitCode::from(report.exit)
}

fn init_logging(verbose: u8) {
    // The HTTP client's own debug log prints headers as received, which can hold a token a
    // deployment echoed back, so it stays at info even at -vv.
    let level = match verbose {
        0 => "warn",
        1 => "specgen=debug",
        _ => "debug,ureq=info,ureq_proto=info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}

fn print_report(report: &run::Report, format: Format, mode: Mode) {
    match format {
        Format::Json => print!("{}", diag::render_json(&report.diagnostics)),
        Format::Human => {
            let source_of = |path: &Path| {
                report.sources.iter().find(|(p, _)| p == path).map(|(_, s)| s.clone())
            };
            eprint!("{}", diag::render_human(&report.diagnostics, &source_of));
        }
    }
    if let Some(error) = &report.error {
        eprintln!("error: {error}");
    }
    for (path, why) in &report.stale {
        eprintln!("{}: {why}", path.display());
    }
    for path in &report.orphans {
        match mode {
            Mode::Check => eprintln!("{}: orphaned (no spec produces it now)", path.display()),
            Mode::Build => eprintln!("{}: removed (no spec produces it now)", path.display()),
        }
    }
    if mode == Mode::Check && report.exit == exit::STALE {
        eprintln!("generated files are out of date; run `{}`", report.fix_command);
    }
    if mode == Mode::Build && report.exit == exit::CLEAN {
        for line in &report.referenced_env {
            println!("{line}");
        }
        eprintln!("{} file(s) written", report.written.len());
    }
}

fn print_explanation(report: &explain::Report, format: Format) {
    print_diagnostics(&report.diagnostics, &report.source, format);
    if let Some(explanation) = &report.explanation {
        match format {
            Format::Json => print!("{}", explain::render_json(explanation)),
            Format::Human => print!("{}", explain::render_human(explanation)),
        }
    }
    print_error(&report.error);
}

fn print_probe(report: &probe::Report, format: Format) {
    print_diagnostics(&report.diagnostics, &report.source, format);
    if let Some(probed) = &report.probed {
        match format {
            Format::Json => print!("{}", probe::render_json(probed)),
            Format::Human => print!("{}", probe::render_human(probed)),
        }
    }
    print_error(&report.error);
}

fn print_serve(report: &serve::Report, format: Format) {
    print_diagnostics(&report.diagnostics, &report.source, format);
    print_error(&report.error);
}

/// The diagnostics of the one spec a command read: JSON on stdout, or the human form with
/// source lines on stderr.
fn print_diagnostics(diagnostics: &[diag::Diagnostic], source: &Option<String>, format: Format) {
    match format {
        Format::Json if !diagnostics.is_empty() => print!("{}", diag::render_json(diagnostics)),
        Format::Json => {}
        Format::Human => {
            let source_of = |_: &Path| source.clone();
            eprint!("{}", diag::render_human(diagnostics, &source_of));
        }
    }
}

fn print_error(error: &Option<(String, String)>) {
    if let Some((error, help)) = error {
        eprintln!("error: {error}");
        eprintln!("  = help: {help}");
    }
}

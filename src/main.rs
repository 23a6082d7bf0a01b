//! The `specgen` command line: parses arguments, calls the library, prints the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use specgen::diag;
use specgen::run::{self, Mode, Request, exit};

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
    };
    let report = run::run(&request);
    print_report(&report, cli.format, request.mode);
    ExitCode::from(report.exit)
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "specgen=debug",
        _ => "debug",
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

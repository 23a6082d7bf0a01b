//! Test-only: renders or serves a valid spec with one of the outage's mistakes put back and the
//! guarantees skipped, so the end-to-end tests can show real MCP clients failing on it.
//!
//!     cargo run --features unchecked --example seed_mistake -- \
//!         render doubled-resource tests/fixtures/valid/local-serve.yaml OUT_DIR
//!     cargo run --features unchecked --example seed_mistake -- \
//!         serve shadowed-discovery tests/fixtures/valid/local-serve.yaml --env local \
//!         --backend mcp=PATH
//!
//! `render` writes into a directory that must not exist yet, so it never touches another file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use specgen::run::exit;
use specgen::unchecked::{self, SeedMistake};
use specgen::{diag, serve};

#[derive(Parser)]
#[command(about = "Renders or serves a spec with one of the outage's mistakes (test only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes every output of the spec, with the mistake, into a new directory.
    Render { mistake: SeedMistake, spec: PathBuf, out: PathBuf },
    /// Serves the spec's local environment, with the mistake, as `specgen serve` does.
    Serve {
        mistake: SeedMistake,
        spec: PathBuf,
        #[arg(long)]
        env: String,
        #[arg(long = "backend", value_name = "NAME=PATH", value_parser = serve::parse_backend)]
        backends: Vec<(String, PathBuf)>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mistake, spec) = match &cli.command {
        Command::Render { mistake, spec, .. } | Command::Serve { mistake, spec, .. } => {
            (*mistake, spec)
        }
    };
    let mut model = match unchecked::resolve(spec) {
        Ok(model) => model,
        Err(diagnostics) => {
            let source = std::fs::read_to_string(spec).ok();
            eprint!("{}", diag::render_human(&diagnostics, &|_| source.clone()));
            eprintln!("error: the spec must pass every check before a mistake is put into it");
            return ExitCode::from(exit::INVALID);
        }
    };
    if let Err(why) = unchecked::apply(&mut model, mistake) {
        eprintln!("error: {why}");
        return ExitCode::from(exit::USAGE);
    }

    match cli.command {
        Command::Render { out, .. } => render(&model, &out),
        Command::Serve { spec, env, backends, .. } => {
            let request = serve::Request { spec, env, backends };
            let report = unchecked::serve(model, &request, |url| {
                println!("serving on {url} with the mistake {mistake:?}");
            });
            if let Some((error, help)) = &report.error {
                eprintln!("error: {error}");
                eprintln!("  = help: {help}");
            }
            ExitCode::from(report.exit)
        }
    }
}

fn render(model: &specgen::model::Model, out: &std::path::Path) -> ExitCode {
    if out.exists() {
        eprintln!("error: `{}` exists; give a directory that does not", out.display());
        return ExitCode::from(exit::USAGE);
    }
    let files = match unchecked::render(model) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    for file in files {
        let path = out.join(&file.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &file.bytes));
        if let Err(e) = written {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(exit::IO);
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

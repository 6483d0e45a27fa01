//! `faultline`: test distributed systems the way Jepsen does.
//!
//! Each subcommand lives in its own module and returns the process exit code, which follows
//! Jepsen's convention: 0 valid, 1 invalid, 2 unknown or harness error.

mod check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the `faultline` binary.
#[derive(Parser, Debug)]
#[command(name = "faultline", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Subcommand, Debug)]
enum Command {
    /// Check a recorded history (JSONL or Jepsen EDN) for linearizability.
    Check(check::CheckArgs),
}

/// Exit code for "unknown, or the harness itself failed" (Jepsen's convention).
const EXIT_UNKNOWN_OR_ERROR: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => check::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("faultline: error: {err:#}");
            ExitCode::from(EXIT_UNKNOWN_OR_ERROR)
        }
    }
}

//! `faultline`: test distributed systems the way Jepsen does.
//!
//! Each subcommand lives in its own module and returns the process exit code, which follows
//! Jepsen's convention: 0 valid, 1 invalid, 2 unknown or harness error.
//!
//! - `test` ([`test`]): start a kvd cluster, drive clients, inject faults, check, report.
//! - `replay`: re-run a stored run's configuration, seed and fault schedule.
//! - `check` ([`check`]): re-check a stored run or an imported history.
//! - `model` ([`model`]): model-check the Raft core with stateright.
//! - `bench` ([`bench`](mod@bench)): measure kvd's throughput and latency against etcd's reference figures.
//! - `serve` ([`serve`]): browse the run store over HTTP.
//! - `kvd` ([`kvd`], hidden): this binary acting as a server node, so `test` needs nothing else built.

mod bench;
mod check;
mod junit;
mod kvd;
mod model;
mod report;
mod serve;
mod test;

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
    /// Run a cluster under faults, record the history, check it and write a report.
    Test(test::config::TestArgs),
    /// Re-run a stored run (its configuration, seed and fault schedule) on a fresh cluster.
    Replay(ReplayArgs),
    /// Check a recorded history (JSONL or Jepsen EDN) for linearizability.
    Check(check::CheckArgs),
    /// Model-check a protocol with stateright.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Measure a fresh kvd cluster's throughput and latency over client counts, beside etcd's.
    Bench(bench::BenchArgs),
    /// Browse the run store in a web browser: every run with its verdict, report and files.
    Serve(serve::ServeArgs),
    /// Run as a kvd server node (used by `faultline test`; takes kvd's flags).
    #[command(hide = true)]
    Kvd(server::KvdArgs),
}

/// Arguments of `faultline replay`.
#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// A run directory of the store (e.g. `store/latest`).
    store_dir: std::path::PathBuf,
    /// Store root for the new run [default: the stored run's own root].
    #[arg(long)]
    store: Option<std::path::PathBuf>,
}

/// Exit code for "unknown, or the harness itself failed" (Jepsen's convention).
const EXIT_UNKNOWN_OR_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server node sets up its own logging.
    if !matches!(cli.command, Command::Kvd(_)) {
        init_tracing();
    }
    let outcome = match cli.command {
        Command::Test(args) => test::run(args),
        Command::Replay(args) => test::replay(&args.store_dir, args.store.as_deref()),
        Command::Check(args) => check::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Kvd(args) => Ok(kvd::run(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("faultline: error: {err:#}");
            ExitCode::from(EXIT_UNKNOWN_OR_ERROR)
        }
    }
}

/// Logs of the harness itself go to stderr, `warn` and up unless `RUST_LOG`
/// says otherwise.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

//! `kvd`: one node of a Raft-replicated key/value group. See `kvd --help`
//! and the `server` crate docs.
//!
//! Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 when the node
//! fails (unusable data directory, address in use, storage error), 2 for a
//! bad configuration.

use std::process::ExitCode;

use clap::Parser;
use server::{KvdArgs, KvdConfig};

fn main() -> ExitCode {
    let config = match KvdConfig::load(KvdArgs::parse()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kvd: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: KvdConfig) -> anyhow::Result<()> {
    server::init_logging(config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvd")
        .build()?;
    runtime.block_on(server::run(config, termination()))
}

/// Resolves at the first SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot watch for SIGTERM/SIGINT; stop kvd with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

//! The whole life of a kvd process, shared by the `kvd` binary and
//! `faultline kvd` (the harness running itself as a server).

use std::process::ExitCode;

use crate::{KvdArgs, KvdConfig};

/// Loads the configuration, serves until SIGTERM or SIGINT, and returns the
/// exit code: 0 after a graceful shutdown, 1 when the node fails (unusable
/// data directory, address in use, storage error), 2 for a bad
/// configuration. Errors are printed to stderr, prefixed `kvd:`.
pub fn main(args: KvdArgs) -> ExitCode {
    let config = match KvdConfig::load(args) {
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
    crate::init_logging(config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvd")
        .build()?;
    runtime.block_on(crate::run(config, termination()))
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

//! `faultline serve`: browse the run store over HTTP.
//!
//! Every `faultline test` run leaves a folder of files behind (the report,
//! the history, the nemesis log, node logs); `serve` puts an index over
//! them, newest first with their verdicts, so a person can find the run
//! that failed and open its report without walking the store by hand. It
//! reads the store afresh on every page, so runs appear as they are made,
//! and never serves a byte from outside the store.
//!
//! - [`scan`]: what the store holds, read leniently (a crashed run is
//!   listed as incomplete, with the reason).
//! - [`paths`]: which requested paths lie inside the store.
//! - [`pages`]: the index and run pages (minijinja, auto-escaped).
//! - [`files`]: store files, streamed with their content types.
//! - [`routes`]: the URLs, on axum.

mod files;
mod pages;
mod paths;
mod routes;
mod scan;
#[cfg(test)]
mod testing;

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use self::pages::Pages;
use self::paths::StoreRoot;
use self::routes::AppState;

/// How long open connections may take to finish once a stop is asked for;
/// after that they are dropped (a browser can hold a download open).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Arguments of `faultline serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Root of the run store to browse.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to listen on; the default is reachable from this machine
    /// only. Port 0 picks a free port (the URL printed says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
}

/// Runs `faultline serve` until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let root = StoreRoot::open(&args.store)?;
    let pages = Pages::new()?;
    let runtime = crate::test::runtime()?;
    runtime.block_on(serve(AppState { root, pages }, args.addr))?;
    Ok(ExitCode::SUCCESS)
}

/// Listens on `addr` and answers requests until a stop signal.
async fn serve(state: AppState, addr: SocketAddr) -> Result<()> {
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot listen for SIGINT (Ctrl-C)")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    println!(
        "faultline: browsing the store {} at http://{local}/ (Ctrl-C stops)",
        state.root.path().display()
    );
    // Scripts (and the tests) wait for this line.
    let _ = std::io::stdout().flush();

    let stopping = Arc::new(Notify::new());
    let stop_asked = {
        let stopping = Arc::clone(&stopping);
        async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("faultline: stopping the server");
            stopping.notify_one();
        }
    };
    let server = axum::serve(listener, routes::router(Arc::new(state)))
        .with_graceful_shutdown(stop_asked)
        .into_future();
    tokio::select! {
        result = server => result.context("the server failed")?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; dropping them");
        }
    }
    Ok(())
}

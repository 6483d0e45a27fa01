//! Cooperative shutdown: one watch channel that flips to `true` once, seen by
//! every task (listeners, connections, peer links, the driver).

use tokio::sync::watch;

/// Sets off a shutdown.
pub(crate) type ShutdownTx = watch::Sender<bool>;
/// Watches for a shutdown.
pub(crate) type ShutdownRx = watch::Receiver<bool>;

/// A new shutdown switch, off.
pub(crate) fn channel() -> (ShutdownTx, ShutdownRx) {
    watch::channel(false)
}

/// Resolves once shutdown has begun (or its sender is gone). Cancel-safe, so
/// it can sit in a `select!`.
pub(crate) async fn stopped(rx: &mut ShutdownRx) {
    // An error means the sender was dropped: treat it as a shutdown too.
    let _ = rx.wait_for(|&stop| stop).await;
}

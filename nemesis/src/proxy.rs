//! A userspace TCP relay for one directed link, with faults switchable at
//! runtime.
//!
//! A [`LinkProxy`] listens on a loopback port and relays every connection to
//! one target address. Node A is told to dial the proxy instead of node B, so
//! everything A sends to B crosses it, and the proxy can:
//!
//! - **cut** the link, in one of two ways ([`CutMode`]): `Reset` closes every
//!   relayed connection and turns new ones away at once (what a dead host or
//!   an iptables `REJECT` looks like); `Stall` delivers nothing in either
//!   direction but keeps connections open, so bytes pile up and flow again on
//!   heal (an iptables `DROP` shorter than TCP's give-up time). A new
//!   connection made during a stall is held, not dialed, until the heal.
//! - **delay** every chunk of bytes by a fixed time, keeping their order.
//! - **drop** with a probability: TCP cannot lose bytes in the middle of a
//!   stream, so a lossy link is modelled as one whose connections die at
//!   random. Each new connection is refused, and each relayed chunk kills its
//!   connection, with probability `p`; the endpoints must notice, reconnect
//!   and resend, which is what a lossy network asks of them.
//!
//! Works unprivileged on any OS tokio supports. Random choices come from a
//! seeded ChaCha8 generator; which chunk a drop hits still depends on timing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the proxy waits to reach the target before giving up on a
/// relayed connection (closing the dialer's side too).
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Chunks in flight per direction; beyond it the reader waits, so a slow or
/// delayed link pushes back on the sender as a real one does.
const DELAY_LINE_CHUNKS: usize = 256;
const READ_CHUNK: usize = 16 * 1024;

/// Errors of proxy control.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A probability outside `[0, 1]` (or NaN).
    #[error("drop probability must be within [0, 1], got {0}")]
    BadProbability(f64),
}

/// How a cut link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Close relayed connections now and close new ones on arrival.
    Reset,
    /// Deliver nothing, keep connections open; traffic resumes on heal.
    Stall,
}

/// The faults currently applied to a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// Whether and how the link is cut.
    pub cut: Option<CutMode>,
    /// Added to the delivery time of every chunk.
    pub delay: Duration,
    /// Chance that a new connection is refused, and that a relayed chunk
    /// kills its connection.
    pub drop_probability: f64,
}

impl LinkFaults {
    /// A healthy link.
    pub const HEALTHY: LinkFaults = LinkFaults {
        cut: None,
        delay: Duration::ZERO,
        drop_probability: 0.0,
    };
}

/// Counters of what a link did, for test diagnostics and nemesis logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections relayed to the target.
    pub relayed: u64,
    /// Connections turned away (cut or random drop) or whose target could
    /// not be reached.
    pub refused: u64,
    /// Relayed connections killed by a cut or a random drop.
    pub killed: u64,
    /// Bytes delivered, both directions.
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    relayed: AtomicU64,
    refused: AtomicU64,
    killed: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    target: SocketAddr,
    faults: watch::Sender<LinkFaults>,
    rng: Mutex<ChaCha8Rng>,
    counters: Counters,
    /// Cancelled when the proxy is dropped: every relay ends.
    shutdown: CancellationToken,
}

impl Shared {
    /// One draw against `p`.
    fn roll(&self, p: f64) -> bool {
        p > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .random_bool(p)
    }
}

/// A relay for one directed link; see the module docs. Dropping it stops the
/// listener and closes every relayed connection.
pub struct LinkProxy {
    listen_addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl LinkProxy {
    /// Listens on a fresh loopback port and relays to `target`.
    pub async fn start(target: SocketAddr, seed: u64) -> Result<LinkProxy, ProxyError> {
        LinkProxy::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), target, seed).await
    }

    /// Listens on `listen` (port 0 for any) and relays to `target`.
    pub async fn start_on(
        listen: SocketAddr,
        target: SocketAddr,
        seed: u64,
    ) -> Result<LinkProxy, ProxyError> {
        let bind_error = |source| ProxyError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let listen_addr = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared {
            target,
            faults: watch::Sender::new(LinkFaults::HEALTHY),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            counters: Counters::default(),
            shutdown: CancellationToken::new(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(LinkProxy {
            listen_addr,
            shared,
            accept_task,
        })
    }

    /// Where the link's source must dial.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Where the link leads.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// The faults in force.
    pub fn faults(&self) -> LinkFaults {
        *self.shared.faults.borrow()
    }

    /// Cuts the link (see [`CutMode`]).
    pub fn cut(&self, mode: CutMode) {
        self.shared.faults.send_modify(|f| f.cut = Some(mode));
    }

    /// Lifts a cut; delay and drop probability stay as they are.
    pub fn heal(&self) {
        self.shared.faults.send_modify(|f| f.cut = None);
    }

    /// Delays every chunk by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.send_modify(|f| f.delay = delay);
    }

    /// Sets the chance that a new connection is refused and that a relayed
    /// chunk kills its connection.
    pub fn set_drop_probability(&self, p: f64) -> Result<(), ProxyError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(ProxyError::BadProbability(p));
        }
        self.shared.faults.send_modify(|f| f.drop_probability = p);
        Ok(())
    }

    /// Replaces all faults at once.
    pub fn set_faults(&self, faults: LinkFaults) -> Result<(), ProxyError> {
        if !(0.0..=1.0).contains(&faults.drop_probability) {
            return Err(ProxyError::BadProbability(faults.drop_probability));
        }
        self.shared.faults.send_replace(faults);
        Ok(())
    }

    /// What the link has done so far.
    pub fn stats(&self) -> LinkStats {
        let c = &self.shared.counters;
        LinkStats {
            relayed: c.relayed.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            killed: c.killed.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        let inbound = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically out of file descriptors; back off rather than spin.
                tracing::warn!(target_addr = %shared.target, error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let faults = *shared.faults.borrow();
        if faults.cut == Some(CutMode::Reset) || shared.roll(faults.drop_probability) {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(inbound);
            continue;
        }
        tokio::spawn(relay(inbound, shared.clone()));
    }
}

/// Relays one connection until both directions end or the link kills it.
async fn relay(inbound: TcpStream, shared: Arc<Shared>) {
    let mut faults = shared.faults.subscribe();
    let kill = shared.shutdown.child_token();
    if !wait_while_stalled(&mut faults, &kill).await || is_reset(&faults) {
        shared.counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let outbound = match tokio::time::timeout(
        TARGET_CONNECT_TIMEOUT,
        TcpStream::connect(shared.target),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(target_addr = %shared.target, error = %e, "proxy cannot reach its target");
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.counters.relayed.fetch_add(1, Ordering::Relaxed);
    // Latency faults are ours to add; Nagle would add its own.
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let (forward_tx, forward_rx) = mpsc::channel(DELAY_LINE_CHUNKS);
    let (backward_tx, backward_rx) = mpsc::channel(DELAY_LINE_CHUNKS);
    tokio::join!(
        pump(
            in_read,
            forward_tx,
            &shared,
            shared.faults.subscribe(),
            &kill
        ),
        deliver(
            out_write,
            forward_rx,
            &shared,
            shared.faults.subscribe(),
            &kill
        ),
        pump(
            out_read,
            backward_tx,
            &shared,
            shared.faults.subscribe(),
            &kill
        ),
        deliver(
            in_write,
            backward_rx,
            &shared,
            shared.faults.subscribe(),
            &kill
        ),
    );
}

fn is_reset(faults: &watch::Receiver<LinkFaults>) -> bool {
    faults.borrow().cut == Some(CutMode::Reset)
}

/// Waits until the link is not stalled. `false` if the relay must end
/// instead (killed, or the proxy is gone).
async fn wait_while_stalled(
    faults: &mut watch::Receiver<LinkFaults>,
    kill: &CancellationToken,
) -> bool {
    while faults.borrow_and_update().cut == Some(CutMode::Stall) {
        tokio::select! {
            changed = faults.changed() => if changed.is_err() { return false },
            () = kill.cancelled() => return false,
        }
    }
    !kill.is_cancelled()
}

/// Something travelling down a delay line.
enum Chunk {
    /// Bytes to deliver at `due`.
    Data { due: Instant, bytes: Bytes },
    /// The source finished sending: close the destination's write side.
    End,
}

/// Reads from one side and queues the bytes, stamped with their delivery
/// time, for [`deliver`]. Applies cuts and random drops.
async fn pump(
    mut src: OwnedReadHalf,
    line: mpsc::Sender<Chunk>,
    shared: &Shared,
    mut faults: watch::Receiver<LinkFaults>,
    kill: &CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = src.read_buf(&mut buf) => read,
            changed = faults.changed() => {
                if changed.is_err() || is_reset(&faults) {
                    kill_relay(shared, kill);
                    return;
                }
                continue;
            }
            () = kill.cancelled() => return,
        };
        match read {
            Ok(0) => {
                let _ = line.send(Chunk::End).await;
                return;
            }
            Ok(_) => {}
            Err(_) => {
                // The source reset us: pass the failure on.
                kill_relay(shared, kill);
                return;
            }
        }
        let bytes = buf.split().freeze();
        if !wait_while_stalled(&mut faults, kill).await {
            return;
        }
        let now = *faults.borrow();
        if now.cut == Some(CutMode::Reset) || shared.roll(now.drop_probability) {
            kill_relay(shared, kill);
            return;
        }
        let chunk = Chunk::Data {
            due: Instant::now() + now.delay,
            bytes,
        };
        tokio::select! {
            sent = line.send(chunk) => if sent.is_err() { return },
            () = kill.cancelled() => return,
        }
    }
}

/// Writes queued chunks to the other side once they are due.
async fn deliver(
    mut dst: OwnedWriteHalf,
    mut line: mpsc::Receiver<Chunk>,
    shared: &Shared,
    mut faults: watch::Receiver<LinkFaults>,
    kill: &CancellationToken,
) {
    loop {
        let chunk = tokio::select! {
            chunk = line.recv() => chunk,
            () = kill.cancelled() => return,
        };
        match chunk {
            None => return,
            Some(Chunk::End) => {
                let _ = dst.shutdown().await;
                return;
            }
            Some(Chunk::Data { due, bytes }) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = kill.cancelled() => return,
                }
                // A cut that began while the bytes were on the line holds them too.
                if !wait_while_stalled(&mut faults, kill).await {
                    return;
                }
                let written = tokio::select! {
                    written = dst.write_all(&bytes) => written,
                    () = kill.cancelled() => return,
                };
                if written.is_err() {
                    kill_relay(shared, kill);
                    return;
                }
                shared
                    .counters
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

fn kill_relay(shared: &Shared, kill: &CancellationToken) {
    if !kill.is_cancelled() {
        kill.cancel();
        shared.counters.killed.fetch_add(1, Ordering::Relaxed);
    }
}

//! Peer transport: Raft messages over TCP.
//!
//! Each node dials every other member once and sends all its messages to it
//! over that one connection ([`spawn_link`]); it receives on the connections
//! the others dialed in ([`accept_peers`]). So every pair of nodes shares two
//! connections, one per direction, and a link only ever writes.
//!
//! The driver never waits on the network: it drops each message into the
//! link's bounded queue ([`PeerRouter::send`]), and when a queue is full (the
//! peer is slow, dead or partitioned away) the message is dropped, which Raft
//! tolerates by design. A link writes everything queued with one system call,
//! reconnects after failures with capped exponential backoff and seeded
//! jitter, and discards what is queued while it is down: those messages would
//! be stale by the time it is back.
//!
//! A peer that goes silent without closing its connection (a partition that
//! drops packets, a machine that vanished) is noticed by the kernel, not by
//! us: every peer socket gets a user timeout and keepalive probes
//! ([`tune_peer_socket`]). Without them, TCP keeps retransmitting into the
//! void with exponential backoff, and a connection cut for 7 s carries data
//! again only about 6 s after the cut heals; with them it is torn down
//! within seconds and redialled, so a healed node is back within about a
//! second. On the accepting side the probes also end connections whose
//! dialer is gone for good, which would otherwise hold a task and a file
//! descriptor each for ever.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use raft::{Message, NodeId};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{Instrument, Span, debug, error, info, warn};
use wire::{LocalNode, PeerConnection, PeerFrame, WireError};

use crate::shutdown::{ShutdownRx, stopped};

/// Messages a link may hold while its connection is busy.
const LINK_QUEUE: usize = 1024;
/// Time allowed to connect and complete the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A write that makes no progress for this long means the peer is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time an incoming connection has to send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// First and largest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Stop batching frames into one write past this many bytes.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Sent data unacknowledged for this long, or keepalive probes unanswered
/// for this long, make the kernel abort a peer connection (`TCP_USER_TIMEOUT`).
const PEER_SILENCE_LIMIT: Duration = Duration::from_secs(2);
/// An idle peer connection is probed after this long, then at this interval.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);

/// The driver's side of the outbound links.
#[derive(Debug, Default)]
pub(crate) struct PeerRouter {
    links: BTreeMap<NodeId, mpsc::Sender<Message>>,
    dropped: u64,
}

impl PeerRouter {
    /// Adds the queue of the link to `peer`.
    pub(crate) fn insert(&mut self, peer: NodeId, link: mpsc::Sender<Message>) {
        self.links.insert(peer, link);
    }

    /// Hands `msg` to its link without waiting; drops it if the link is
    /// backed up.
    pub(crate) fn send(&mut self, msg: Message) {
        let Some(link) = self.links.get(&msg.to) else {
            warn!(
                to = msg.to,
                kind = msg.body.kind(),
                "no link to the addressee; message dropped"
            );
            return;
        };
        if let Err(e) = link.try_send(msg) {
            self.dropped += 1;
            // Powers of two keep a long outage from flooding the log.
            if self.dropped.is_power_of_two() {
                let to = match &e {
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => {
                        m.to
                    }
                };
                debug!(
                    to,
                    total_dropped = self.dropped,
                    "peer link backed up; dropping messages"
                );
            }
        }
    }
}

/// Starts the outbound link to `peer` at `addr` and returns its queue.
/// Closing the queue (dropping every sender) ends the link with a goodbye.
pub(crate) fn spawn_link(
    peer: NodeId,
    addr: String,
    me: LocalNode,
    max_frame: usize,
    seed: u64,
    shutdown: ShutdownRx,
) -> mpsc::Sender<Message> {
    let (tx, rx) = mpsc::channel(LINK_QUEUE);
    let link = Link {
        peer,
        addr,
        me,
        max_frame,
        rng: ChaCha8Rng::seed_from_u64(seed),
        rx,
        shutdown,
    };
    tokio::spawn(link.run().instrument(Span::current()));
    tx
}

struct Link {
    peer: NodeId,
    addr: String,
    me: LocalNode,
    max_frame: usize,
    rng: ChaCha8Rng,
    rx: mpsc::Receiver<Message>,
    shutdown: ShutdownRx,
}

/// Why a connected link ended.
enum LinkEnd {
    /// Shutting down, or the driver closed the queue: stop for good.
    Stop,
    /// The connection failed: reconnect.
    Lost(String),
}

impl Link {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut failures = 0u64;
        let mut ever_connected = false;
        loop {
            let attempt = tokio::select! {
                r = timeout(CONNECT_TIMEOUT, dial(&self.addr, &self.me)) => r,
                () = stopped(&mut self.shutdown) => return,
            };
            match attempt {
                Ok(Ok(conn)) => {
                    info!(peer = self.peer, addr = %self.addr, after_failures = failures, "connected to peer");
                    failures = 0;
                    backoff = BACKOFF_MIN;
                    ever_connected = true;
                    match self.pump(conn).await {
                        LinkEnd::Stop => return,
                        LinkEnd::Lost(why) => {
                            info!(peer = self.peer, reason = %why, "lost the link to peer; reconnecting");
                            continue;
                        }
                    }
                }
                Ok(Err(e)) => self.note_failure(&mut failures, ever_connected, &e.to_string()),
                Err(_) => self.note_failure(&mut failures, ever_connected, "timed out connecting"),
            }
            let pause = backoff.mul_f64(self.rng.random_range(0.5..1.5));
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if !self.discard_for(pause).await {
                return;
            }
        }
    }

    /// Logs the first failure of a streak and the rest quietly. A peer not
    /// up yet at start is normal; one lost later is worth a warning.
    fn note_failure(&self, failures: &mut u64, ever_connected: bool, error: &str) {
        *failures += 1;
        if *failures == 1 && ever_connected {
            warn!(peer = self.peer, addr = %self.addr, %error, "cannot reach peer; retrying with backoff");
        } else if *failures == 1 {
            info!(peer = self.peer, addr = %self.addr, %error, "peer not reachable yet; retrying with backoff");
        } else {
            debug!(peer = self.peer, attempt = *failures, %error, "still cannot reach peer");
        }
    }

    /// Waits `pause`, dropping queued messages. Returns false if the link
    /// must stop.
    async fn discard_for(&mut self, pause: Duration) -> bool {
        let sleep = tokio::time::sleep(pause);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                m = self.rx.recv() => if m.is_none() { return false },
                () = stopped(&mut self.shutdown) => return false,
            }
        }
    }

    /// Sends queued messages until the connection fails or the link stops.
    async fn pump(&mut self, conn: PeerConnection<TcpStream, Message>) -> LinkEnd {
        let mut conn = conn;
        conn.set_max_frame_len(self.max_frame);
        let (mut reader, mut writer) = conn.into_split();
        loop {
            let first = tokio::select! {
                m = self.rx.recv() => m,
                // We never expect frames on this connection except a goodbye;
                // reading also notices at once when the peer goes away.
                r = reader.read_frame() => match r {
                    Ok(Some(PeerFrame::Goodbye { reason })) => {
                        return LinkEnd::Lost(format!("peer said goodbye: {reason}"));
                    }
                    Ok(Some(PeerFrame::Raft(_))) | Err(WireError::Malformed(_)) => continue,
                    Ok(None) => return LinkEnd::Lost("the peer closed the connection".into()),
                    Err(e) => return LinkEnd::Lost(e.to_string()),
                },
                () = stopped(&mut self.shutdown) => None,
            };
            let Some(first) = first else {
                let bye = PeerFrame::Goodbye {
                    reason: format!("node {} is shutting down", self.me.node_id),
                };
                if writer.queue_frame(&bye).is_ok() {
                    let _ = timeout(Duration::from_millis(200), writer.flush()).await;
                }
                return LinkEnd::Stop;
            };
            self.queue(&mut writer, first);
            while writer.queued_len() < MAX_BATCH_BYTES {
                match self.rx.try_recv() {
                    Ok(m) => self.queue(&mut writer, m),
                    Err(_) => break,
                }
            }
            match timeout(WRITE_TIMEOUT, writer.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return LinkEnd::Lost(e.to_string()),
                Err(_) => return LinkEnd::Lost("a write made no progress for 5s".into()),
            }
        }
    }

    fn queue<W>(&self, writer: &mut wire::FrameWriter<W, PeerFrame<Message>>, msg: Message)
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        let kind = msg.body.kind();
        let payload = msg.body.payload_len();
        if let Err(e) = writer.queue_frame(&PeerFrame::Raft(msg)) {
            // Only a message over the frame limit (a snapshot bigger than
            // --max-frame) gets here; Raft will retry it and fail again.
            error!(peer = self.peer, kind, payload, error = %e, "cannot send message to peer");
        }
    }
}

async fn dial(
    addr: &str,
    me: &LocalNode,
) -> Result<PeerConnection<TcpStream, Message>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    tune_peer_socket(&stream)?;
    let (_welcome, conn) = wire::connect_peer(stream, me).await?;
    Ok(conn)
}

/// Small messages go out at once, and a silent peer ends the connection:
/// sent data or keepalive probes left unacknowledged for
/// [`PEER_SILENCE_LIMIT`] abort it (see the module doc).
fn tune_peer_socket(stream: &TcpStream) -> std::io::Result<()> {
    use rustix::net::sockopt;
    stream.set_nodelay(true)?;
    let limit_ms = u32::try_from(PEER_SILENCE_LIMIT.as_millis()).unwrap_or(u32::MAX);
    sockopt::set_tcp_user_timeout(stream, limit_ms)?;
    sockopt::set_socket_keepalive(stream, true)?;
    sockopt::set_tcp_keepidle(stream, KEEPALIVE_IDLE)?;
    sockopt::set_tcp_keepintvl(stream, KEEPALIVE_IDLE)?;
    Ok(())
}

/// What every incoming peer connection needs.
#[derive(Debug, Clone)]
pub(crate) struct InboundContext {
    /// Our identity, checked against hellos.
    pub(crate) me: LocalNode,
    /// The members allowed to talk to us.
    pub(crate) known: BTreeSet<NodeId>,
    /// Frame limit after the handshake.
    pub(crate) max_frame: usize,
    /// Into the driver.
    pub(crate) inbound: mpsc::Sender<Message>,
}

/// Accepts peer connections until shutdown, each served by its own task.
pub(crate) async fn accept_peers(
    listener: TcpListener,
    ctx: InboundContext,
    mut shutdown: ShutdownRx,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut shutdown) => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let task = serve_peer(stream, addr, ctx.clone(), shutdown.clone());
                tokio::spawn(task.instrument(Span::current()));
            }
            Err(e) => {
                // Typically out of file descriptors: pause instead of spinning.
                warn!(error = %e, "cannot accept a peer connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_peer(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: InboundContext,
    mut shutdown: ShutdownRx,
) {
    if let Err(e) = tune_peer_socket(&stream) {
        warn!(%addr, error = %e, "cannot set the peer socket's options; a silent peer will be noticed late");
    }
    let handshake = tokio::select! {
        r = timeout(HANDSHAKE_TIMEOUT, wire::accept_peer::<_, Message>(stream, &ctx.me)) => r,
        () = stopped(&mut shutdown) => return,
    };
    let (node, mut conn) = match handshake {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(wire::HandshakeError::Closed)) => {
            debug!(%addr, "peer-port connection closed before its hello");
            return;
        }
        Ok(Err(e)) => {
            warn!(%addr, error = %e, "refused a connection on the peer port");
            return;
        }
        Err(_) => {
            warn!(%addr, "no hello within 5s on the peer port; closing");
            return;
        }
    };
    if !ctx.known.contains(&node) {
        warn!(%addr, node, "refused a peer that is not a member of this group");
        let bye = PeerFrame::Goodbye {
            reason: format!(
                "node {node} is not a member of node {}'s group",
                ctx.me.node_id
            ),
        };
        let _ = timeout(Duration::from_secs(1), conn.write_frame(&bye)).await;
        return;
    }
    conn.set_max_frame_len(ctx.max_frame);
    debug!(peer = node, %addr, "peer connected");
    let mut malformed = 0u64;
    let mut misaddressed = 0u64;
    loop {
        let frame = tokio::select! {
            r = conn.read_frame() => r,
            () = stopped(&mut shutdown) => return,
        };
        match frame {
            Ok(Some(PeerFrame::Raft(msg))) => {
                if msg.from != node {
                    misaddressed += 1;
                    if misaddressed == 1 {
                        warn!(
                            peer = node,
                            claimed = msg.from,
                            "dropping messages that claim another sender"
                        );
                    }
                    continue;
                }
                if ctx.inbound.send(msg).await.is_err() {
                    return;
                }
            }
            Ok(Some(PeerFrame::Goodbye { reason })) => {
                info!(peer = node, %reason, "peer closed its link");
                return;
            }
            Ok(None) => {
                debug!(peer = node, "peer link closed");
                return;
            }
            Err(WireError::Malformed(m)) => {
                malformed += 1;
                if malformed == 1 {
                    warn!(peer = node, error = %m, "skipping a malformed frame from peer (further ones logged at debug)");
                } else {
                    debug!(peer = node, error = %m, count = malformed, "skipping a malformed frame from peer");
                }
            }
            Err(e @ WireError::FrameTooLarge { .. }) => {
                warn!(peer = node, error = %e, "closing peer link");
                return;
            }
            Err(e) => {
                debug!(peer = node, error = %e, "peer link failed");
                return;
            }
        }
    }
}

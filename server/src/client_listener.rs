//! The client port: handshake, then requests in, responses out.
//!
//! Each connection gets a reader (this task) and a writer task. The reader
//! decodes requests and passes them to the driver without waiting for
//! answers, so a pipelining client has many requests in flight and gets the
//! responses in completion order; the writer sends whatever responses are
//! ready with one system call. A connection may have at most
//! [`MAX_IN_FLIGHT`] unanswered requests; past that the reader stops reading
//! until answers go out, so a client that never reads cannot make the node
//! buffer without bound.
//!
//! A frame the reader cannot decode is answered `bad_request` and the
//! connection goes on; an oversized frame is answered and the connection
//! closed. Each connection logs its first bad frame as a warning and later
//! ones at debug level.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{Instrument, Span, debug, warn};
use wire::{FrameWriter, LocalNode, Reply, Response, WireError};

use crate::responder::{ClientRequest, DriverRequest, Responder};
use crate::shutdown::{ShutdownRx, stopped};

/// Unanswered requests one connection may have.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;
/// Time a new connection has to send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time connections get after shutdown to deliver their last answers.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Stop batching responses into one write past this many bytes.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// What every client connection needs.
#[derive(Debug, Clone)]
pub(crate) struct ClientContext {
    /// Our identity, for the handshake.
    pub(crate) me: LocalNode,
    /// Frame limit after the handshake.
    pub(crate) max_frame: usize,
    /// Into the driver.
    pub(crate) requests: mpsc::Sender<DriverRequest>,
}

/// Accepts client connections until shutdown, then gives the open ones a
/// moment to deliver their last answers.
pub(crate) async fn accept_clients(
    listener: TcpListener,
    ctx: ClientContext,
    mut shutdown: ShutdownRx,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next() => continue,
            () = stopped(&mut shutdown) => break,
        };
        match accepted {
            Ok((stream, addr)) => {
                let task = serve_client(stream, addr, ctx.clone(), shutdown.clone());
                connections.spawn(task.instrument(Span::current()));
            }
            Err(e) => {
                warn!(error = %e, "cannot accept a client connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            left = connections.len(),
            "closing client connections that did not drain"
        );
        connections.shutdown().await;
    }
}

async fn serve_client(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: ClientContext,
    mut shutdown: ShutdownRx,
) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::select! {
        r = timeout(HANDSHAKE_TIMEOUT, wire::accept_client(stream, &ctx.me)) => r,
        () = stopped(&mut shutdown) => return,
    };
    let mut conn = match handshake {
        Ok(Ok(conn)) => conn,
        Ok(Err(wire::HandshakeError::Closed)) => {
            debug!(%addr, "client connection closed before its hello");
            return;
        }
        Ok(Err(e)) => {
            warn!(%addr, error = %e, "refused a connection on the client port");
            return;
        }
        Err(_) => {
            warn!(%addr, "no hello within 5s on the client port; closing");
            return;
        }
    };
    conn.set_max_frame_len(ctx.max_frame);
    debug!(%addr, "client connected");
    let (mut reader, writer) = conn.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_responses(writer, rx, addr).instrument(Span::current()));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut bad_frames = 0u64;
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            () = stopped(&mut shutdown) => break,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else { break };
        let frame = tokio::select! {
            r = reader.read_frame() => r,
            () = stopped(&mut shutdown) => break,
        };
        match frame {
            Ok(Some(request)) => {
                let responder = Responder::new(request.request_id, tx.clone(), slot);
                let request = DriverRequest::Client(ClientRequest {
                    op: request.op,
                    responder,
                });
                if ctx.requests.send(request).await.is_err() {
                    // The driver is gone; dropping the request answered it
                    // `shutting_down`.
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                bad_frames += 1;
                if bad_frames == 1 {
                    warn!(%addr, error = %e, "bad frame from client (further ones logged at debug)");
                } else {
                    debug!(%addr, error = %e, count = bad_frames, "bad frame from client");
                }
                if let Some(response) = Response::for_wire_error(&e) {
                    let _ = tx.send(response);
                }
                if e.is_fatal() {
                    break;
                }
            }
        }
    }
    // The writer ends once every request still in flight is answered.
    drop(tx);
    let _ = writer.await;
}

async fn write_responses<W: AsyncWrite + Unpin>(
    mut writer: FrameWriter<W, Response>,
    mut rx: mpsc::UnboundedReceiver<Response>,
    addr: SocketAddr,
) {
    while let Some(first) = rx.recv().await {
        queue(&mut writer, first);
        while writer.queued_len() < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(r) => queue(&mut writer, r),
                Err(_) => break,
            }
        }
        if let Err(e) = writer.flush().await {
            debug!(%addr, error = %e, "client connection failed while answering");
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// Queues a response; one too big for a frame becomes a `bad_request`.
fn queue<W: AsyncWrite + Unpin>(writer: &mut FrameWriter<W, Response>, response: Response) {
    let request_id = response.request_id;
    if let Err(e @ WireError::OutgoingFrameTooLarge { .. }) = writer.queue_frame(&response) {
        let reply = Reply::BadRequest {
            reason: format!("the answer does not fit in one frame: {e}"),
        };
        let _ = writer.queue_frame(&Response { request_id, reply });
    }
}

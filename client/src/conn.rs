//! One pipelined connection to one server.
//!
//! Many callers share a connection. Each call registers a oneshot under a
//! fresh request id, hands the request to a writer task and waits; a reader
//! task matches responses to waiters by id, in whatever order they come
//! back. The writer drains everything queued before flushing, so a burst of
//! concurrent calls costs one system call.
//!
//! When the connection dies, waiters learn how far their request got: still
//! queued (certainly not sent) or possibly written (outcome unknown). That
//! distinction flows up into [`crate::ClerkError::is_definite`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wire::{FrameReader, FrameWriter, Op, Reply, Request, Response, WireError};

use crate::error::AttemptError;

/// Flush once this much is queued even if more requests are waiting, so one
/// huge burst does not sit in memory.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// How a request ended without a reply, as told to its waiter.
enum Undelivered {
    /// Never written to the socket.
    NotSent(String),
    /// Refused by the encoder; nothing written.
    TooLarge(String),
    /// The reply frame could not be decoded.
    Garbled(String),
}

type Waiter = oneshot::Sender<Result<Reply, Undelivered>>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, Waiter>,
    /// Set once the connection is dead, with the reason.
    closed: Option<String>,
}

struct Shared {
    addr: String,
    pending: Mutex<Pending>,
    dead: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves only a map behind; keep going.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection dead and drops every waiter, which tells each one
    /// its request may have been sent.
    fn close(&self, reason: String) {
        self.dead.store(true, Ordering::Release);
        let waiters = {
            let mut pending = self.lock();
            if pending.closed.is_none() {
                pending.closed = Some(reason);
            }
            std::mem::take(&mut pending.waiters)
        };
        drop(waiters);
    }

    fn take_waiter(&self, id: u64) -> Option<Waiter> {
        self.lock().waiters.remove(&id)
    }
}

/// A live (or dead) pipelined connection to one server.
pub(crate) struct Conn {
    shared: Arc<Shared>,
    outbox: mpsc::UnboundedSender<Request>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl Conn {
    /// Dials `addr`, completes the client handshake, and starts the reader and
    /// writer tasks. Everything, handshake included, must finish within
    /// `timeout`.
    pub(crate) async fn open(addr: &str, timeout: Duration) -> Result<Conn, AttemptError> {
        let connect_error = |reason: String| AttemptError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let handshake = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| connect_error(e.to_string()))?;
            stream
                .set_nodelay(true)
                .map_err(|e| connect_error(e.to_string()))?;
            let (_welcome, conn) = wire::connect_client(stream)
                .await
                .map_err(|e| connect_error(e.to_string()))?;
            Ok(conn)
        };
        let conn = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| connect_error(format!("no handshake within {timeout:?}")))??;
        let (reader, writer) = conn.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(Pending::default()),
            dead: AtomicBool::new(false),
        });
        let (outbox, inbox) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_responses(reader, shared.clone()));
        tokio::spawn(write_requests(writer, inbox, shared.clone()));
        Ok(Conn {
            shared,
            outbox,
            next_id: AtomicU64::new(1),
            reader,
        })
    }

    /// Whether the connection has failed; a dead connection must be replaced.
    pub(crate) fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::Acquire)
    }

    /// Sends one request and waits up to `timeout` for its reply.
    pub(crate) async fn call(&self, op: Op, timeout: Duration) -> Result<Reply, AttemptError> {
        let addr = &self.shared.addr;
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.lock();
            if let Some(reason) = &pending.closed {
                return Err(AttemptError::NotSent {
                    addr: addr.clone(),
                    reason: reason.clone(),
                });
            }
            pending.waiters.insert(request_id, tx);
        }
        // From here on the waiter must not outlive this call, even if the
        // caller's future is dropped mid-wait.
        let _guard = WaiterGuard {
            shared: &self.shared,
            request_id,
        };
        if self.outbox.send(Request { request_id, op }).is_err() {
            return Err(AttemptError::NotSent {
                addr: addr.clone(),
                reason: "the connection's writer has stopped".to_string(),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(Undelivered::NotSent(reason)))) => Err(AttemptError::NotSent {
                addr: addr.clone(),
                reason,
            }),
            Ok(Ok(Err(Undelivered::TooLarge(reason)))) => Err(AttemptError::TooLarge { reason }),
            Ok(Ok(Err(Undelivered::Garbled(reason)))) => Err(AttemptError::ConnectionLost {
                addr: addr.clone(),
                reason,
            }),
            Ok(Err(_dropped)) => Err(AttemptError::ConnectionLost {
                addr: addr.clone(),
                reason: self
                    .shared
                    .lock()
                    .closed
                    .clone()
                    .unwrap_or_else(|| "connection closed".to_string()),
            }),
            Err(_elapsed) => Err(AttemptError::NoReply {
                addr: addr.clone(),
                waited: timeout,
            }),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The writer stops when `outbox` is dropped; the reader may be parked
        // on a silent socket, so stop it explicitly.
        self.reader.abort();
        self.shared
            .close("connection dropped by the client".to_string());
    }
}

/// Removes a call's waiter when the call ends, however it ends.
struct WaiterGuard<'a> {
    shared: &'a Shared,
    request_id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.shared.take_waiter(self.request_id);
    }
}

async fn read_responses(
    mut reader: FrameReader<ReadHalf<TcpStream>, Response>,
    shared: Arc<Shared>,
) {
    let reason = loop {
        match reader.read_frame().await {
            Ok(Some(response)) => {
                if let Some(waiter) = shared.take_waiter(response.request_id) {
                    // The caller may have given up in the meantime.
                    let _ = waiter.send(Ok(response.reply));
                }
            }
            Ok(None) => break "the server closed the connection".to_string(),
            Err(WireError::Malformed(bad)) => {
                tracing::warn!(addr = %shared.addr, error = %bad, "undecodable response");
                if let Some(waiter) = bad.request_id.and_then(|id| shared.take_waiter(id)) {
                    let _ = waiter.send(Err(Undelivered::Garbled(bad.to_string())));
                }
            }
            Err(e) => break e.to_string(),
        }
    };
    tracing::debug!(addr = %shared.addr, %reason, "connection closed");
    shared.close(reason);
}

async fn write_requests(
    mut writer: FrameWriter<WriteHalf<TcpStream>, Request>,
    mut inbox: mpsc::UnboundedReceiver<Request>,
    shared: Arc<Shared>,
) {
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            if let Err(e) = writer.queue_frame(&request)
                && let Some(waiter) = shared.take_waiter(request.request_id)
            {
                let _ = waiter.send(Err(Undelivered::TooLarge(e.to_string())));
            }
            if writer.queued_len() < MAX_BATCH_BYTES {
                next = inbox.try_recv().ok();
            }
        }
        if let Err(e) = writer.flush().await {
            let reason = format!("write failed: {e}");
            // Requests still queued were never written: tell their callers so.
            inbox.close();
            while let Ok(request) = inbox.try_recv() {
                if let Some(waiter) = shared.take_waiter(request.request_id) {
                    let _ = waiter.send(Err(Undelivered::NotSent(reason.clone())));
                }
            }
            shared.close(reason);
            return;
        }
        if shared.dead.load(Ordering::Acquire) {
            break;
        }
    }
    // Either the client dropped the connection or the reader saw it die;
    // closing our half tells the server we are done.
    let _ = writer.shutdown().await;
}

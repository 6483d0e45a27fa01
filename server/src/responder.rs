//! The way back to whoever asked: one [`Responder`] per request.
//!
//! A client connection's reader turns each request into a
//! [`ClientRequest`] carrying a responder; whoever finishes the request (the
//! driver, usually much later) calls [`Responder::reply`], which queues the
//! response for the connection's writer. A responder dropped without an
//! answer (the node is stopping and its queues are being torn down) answers
//! `shutting_down` on its own, so no accepted request goes unanswered while
//! the connection lives.
//!
//! Tasks inside the node (a shard group's migration worker) ask the driver
//! the same way, through [`DriverRequest::Propose`] and a local responder
//! that answers into a oneshot channel.

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use wire::{Op, Reply, Response};

/// Something for the driver to do.
#[derive(Debug)]
pub(crate) enum DriverRequest {
    /// A request from a client connection (or a local task asking as one).
    Client(ClientRequest),
    /// A log entry built inside the node (never from the network), proposed
    /// as is and answered with what the state machine returns for it.
    Propose {
        /// The entry payload.
        entry: Bytes,
        /// Where the answer goes.
        responder: Responder,
    },
}

/// A decoded request on its way to the driver.
#[derive(Debug)]
pub(crate) struct ClientRequest {
    /// What the client asked for.
    pub(crate) op: Op,
    /// Where the answer goes.
    pub(crate) responder: Responder,
}

/// Answers one request.
#[derive(Debug)]
pub(crate) struct Responder {
    sink: Option<Sink>,
}

#[derive(Debug)]
enum Sink {
    /// A client connection's writer queue, and one of its in-flight slots,
    /// freed with the answer.
    Connection {
        request_id: u64,
        tx: UnboundedSender<Response>,
        _slot: OwnedSemaphorePermit,
    },
    /// A task inside this node.
    Local(oneshot::Sender<Reply>),
}

impl Responder {
    /// A responder for request `request_id`, answering into `tx`.
    pub(crate) fn new(
        request_id: u64,
        tx: UnboundedSender<Response>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Responder {
            sink: Some(Sink::Connection {
                request_id,
                tx,
                _slot: slot,
            }),
        }
    }

    /// A responder for a task inside the node, and where its answer arrives.
    pub(crate) fn local() -> (Self, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let responder = Responder {
            sink: Some(Sink::Local(tx)),
        };
        (responder, rx)
    }

    /// Sends the answer. A client that has gone away simply misses it.
    pub(crate) fn reply(mut self, reply: Reply) {
        self.send(reply);
    }

    fn send(&mut self, reply: Reply) {
        // An error means the asker is gone: nobody to tell.
        match self.sink.take() {
            Some(Sink::Connection { request_id, tx, .. }) => {
                let _ = tx.send(Response { request_id, reply });
            }
            Some(Sink::Local(tx)) => {
                let _ = tx.send(reply);
            }
            None => {}
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.send(Reply::ShuttingDown);
    }
}

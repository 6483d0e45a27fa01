//! The way back to a client: one [`Responder`] per request.
//!
//! A client connection's reader turns each request into a
//! [`ClientRequest`] carrying a responder; whoever finishes the request (the
//! driver, usually much later) calls [`Responder::reply`], which queues the
//! response for the connection's writer. A responder dropped without an
//! answer (the node is stopping and its queues are being torn down) answers
//! `shutting_down` on its own, so no accepted request goes unanswered while
//! the connection lives.

use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;
use wire::{Op, Reply, Response};

/// A decoded request on its way to the driver.
#[derive(Debug)]
pub(crate) struct ClientRequest {
    /// What the client asked for.
    pub(crate) op: Op,
    /// Where the answer goes.
    pub(crate) responder: Responder,
}

/// Answers one request on its connection.
#[derive(Debug)]
pub(crate) struct Responder {
    request_id: u64,
    tx: Option<UnboundedSender<Response>>,
    /// One of the connection's in-flight slots, freed with the answer.
    _slot: OwnedSemaphorePermit,
}

impl Responder {
    /// A responder for request `request_id`, answering into `tx`.
    pub(crate) fn new(
        request_id: u64,
        tx: UnboundedSender<Response>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Responder {
            request_id,
            tx: Some(tx),
            _slot: slot,
        }
    }

    /// Sends the answer. A client that has gone away simply misses it.
    pub(crate) fn reply(mut self, reply: Reply) {
        self.send(reply);
    }

    fn send(&mut self, reply: Reply) {
        if let Some(tx) = self.tx.take() {
            // An error means the connection is closed: nobody to tell.
            let _ = tx.send(Response {
                request_id: self.request_id,
                reply,
            });
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.send(Reply::ShuttingDown);
    }
}

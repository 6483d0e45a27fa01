//! The peer protocol: what Raft nodes of one group send each other.
//!
//! Peers listen on their own port, separate from clients, and open each
//! connection with a `peer` hello (see [`crate::handshake`]). After it, every
//! frame is a [`PeerFrame`]. The Raft message type is a parameter so that this
//! crate stays free of the `raft` dependency; the server instantiates it with
//! `raft::Message`.

use serde::{Deserialize, Serialize};

/// One frame on a peer connection after the handshake.
///
/// Encoded adjacently tagged, `{"type": "raft", "body": <message>}`, so that
/// the (possibly large) message decodes straight into its type without being
/// buffered first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
pub enum PeerFrame<M> {
    /// A Raft message for the receiving node.
    Raft(M),
    /// The sender is closing this link on purpose (shutting down, or refusing a
    /// node it does not know), so the receiver can log why instead of seeing a
    /// bare end of stream.
    Goodbye {
        /// Why the link is being closed.
        reason: String,
    },
}

//! Errors returned by the node's public operations.

use thiserror::Error;

use crate::types::NodeId;

/// Why a message was refused. Stale messages (older terms, duplicate or
/// reordered responses) are not errors: they are dropped and `step` returns
/// `Ok`. Errors mean the message could not have come from a correct peer of
/// this group; the node's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    /// The message is addressed to another node.
    #[error("message for node {to} delivered to node {id}")]
    WrongRecipient {
        /// This node.
        id: NodeId,
        /// The addressee.
        to: NodeId,
    },
    /// The sender is not a voter of this group (or is this node itself).
    #[error("message from node {from}, which is not a peer in this group")]
    UnknownPeer {
        /// The claimed sender.
        from: NodeId,
    },
    /// The message contradicts the protocol (non-contiguous entries, terms
    /// from the future, indices past the end of the log, ...).
    #[error("malformed {kind} from node {from}: {reason}")]
    Malformed {
        /// The sender.
        from: NodeId,
        /// Message kind.
        kind: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a proposal was not appended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// Only the leader appends; retry at `leader_hint` if known.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node believes in, if any.
        leader_hint: Option<NodeId>,
    },
    /// Leadership is being handed to another node; proposals made now would
    /// delay the transfer, so retry at the new leader.
    #[error("leadership is being transferred to node {to}")]
    TransferInProgress {
        /// The transfer target.
        to: NodeId,
    },
    /// Empty entries are the leader's no-ops; commands must carry data.
    #[error("a proposal must not be empty (empty entries are leader no-ops)")]
    EmptyProposal,
}

/// Why a linearizable read could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadIndexError {
    /// Only the leader serves ReadIndex; retry at `leader_hint` if known.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node believes in, if any.
        leader_hint: Option<NodeId>,
    },
}

/// Why a leadership transfer could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransferError {
    /// Only the leader can hand over leadership.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node believes in, if any.
        leader_hint: Option<NodeId>,
    },
    /// The target is not a voter of this group.
    #[error("node {0} is not a voter of this group")]
    UnknownNode(NodeId),
}

//! What can go wrong talking to kvd, sorted by what it means for the
//! operation: certainly not applied, or outcome unknown.
//!
//! A test harness records a given-up operation as `fail` only when it
//! certainly did not take effect, and as `info` otherwise; getting this wrong
//! either hides bugs (`info` everywhere) or reports false ones (`fail` for a
//! write that was in fact applied). So every error here answers one question:
//! could the server have applied it?

use std::time::Duration;

use wire::{LeaderHint, ShardId};

/// Why one attempt — one request sent (or meant to be sent) to one server —
/// did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// No connection could be opened; nothing was sent.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Server address.
        addr: String,
        /// What the socket or the handshake said.
        reason: String,
    },
    /// The connection was already closed when the request was queued, so it
    /// never left this process.
    #[error("the connection to {addr} closed before the request was sent: {reason}")]
    NotSent {
        /// Server address.
        addr: String,
        /// Why the connection closed.
        reason: String,
    },
    /// The connection failed after the request may have been written.
    #[error("the connection to {addr} was lost while the request was in flight: {reason}")]
    ConnectionLost {
        /// Server address.
        addr: String,
        /// Why the connection failed.
        reason: String,
    },
    /// No reply arrived within the per-request timeout (or the overall
    /// deadline, whichever came first).
    #[error("no reply from {addr} within {waited:?}")]
    NoReply {
        /// Server address.
        addr: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The server is not the leader and did not propose the operation.
    #[error("{addr} is not the leader{}", hint_suffix(.hint))]
    WrongLeader {
        /// Server address.
        addr: String,
        /// The leader it knows of, if any.
        hint: Option<LeaderHint>,
    },
    /// The server is not ready for this request (a shard group asked for a
    /// shard by a peer before reaching the configuration it names); it did
    /// not apply anything.
    #[error("{addr} does not serve this request right now: {reply}")]
    NotServed {
        /// Server address.
        addr: String,
        /// The reply, for the log.
        reply: String,
    },
    /// The server's group does not serve the key's shard in its current
    /// configuration (or the shard is still migrating in); it did not apply
    /// anything. Another server of the same group will say the same, so this
    /// ends one group's retry loop at once: only a sharded client, which can
    /// refresh its configuration and go to the right group, retries it.
    #[error("{addr} does not serve shard {shard} in its configuration {config_num}")]
    WrongGroup {
        /// Server address.
        addr: String,
        /// The key's shard.
        shard: ShardId,
        /// The configuration the server's group has applied.
        config_num: u64,
    },
    /// The shard configuration the client holds assigns the key's shard to
    /// no group it can reach (no group has joined, or the group has no
    /// servers); nothing was sent. A sharded client refreshes its
    /// configuration and tries again.
    #[error("configuration {config_num} assigns shard {shard} to no group with servers")]
    NoGroup {
        /// The key's shard.
        shard: ShardId,
        /// The configuration consulted.
        config_num: u64,
    },
    /// The leader proposed the operation but did not see it commit in time.
    #[error("{addr} timed out committing the request; it may still take effect")]
    ServerTimeout {
        /// Server address.
        addr: String,
    },
    /// The server is stopping; what it had proposed may still take effect.
    #[error("{addr} is shutting down")]
    ShuttingDown {
        /// Server address.
        addr: String,
    },
    /// The server could not read or does not serve the request. Resending the
    /// same bytes cannot help, so this ends the operation at once.
    #[error("{addr} rejected the request: {reason}")]
    BadRequest {
        /// Server address.
        addr: String,
        /// The server's explanation.
        reason: String,
    },
    /// The request is too large for a frame; nothing was sent.
    #[error("the request is too large to send: {reason}")]
    TooLarge {
        /// The encoder's explanation.
        reason: String,
    },
    /// The server answered with a reply that makes no sense for the request
    /// (a protocol bug on one side). Not retried, outcome unknown.
    #[error("{addr} answered {reply} to a {op} request")]
    UnexpectedReply {
        /// Server address.
        addr: String,
        /// The request kind.
        op: &'static str,
        /// The reply, for the log.
        reply: String,
    },
}

fn hint_suffix(hint: &Option<LeaderHint>) -> String {
    match hint {
        Some(h) => format!(" (leader is node {} at {})", h.node_id, h.client_addr),
        None => " and knows no leader".to_string(),
    }
}

impl AttemptError {
    /// Whether this attempt certainly did not make the operation take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            AttemptError::Connect { .. }
            | AttemptError::NotSent { .. }
            | AttemptError::WrongLeader { .. }
            | AttemptError::NotServed { .. }
            | AttemptError::WrongGroup { .. }
            | AttemptError::NoGroup { .. }
            | AttemptError::BadRequest { .. }
            | AttemptError::TooLarge { .. } => true,
            AttemptError::ConnectionLost { .. }
            | AttemptError::NoReply { .. }
            | AttemptError::ServerTimeout { .. }
            | AttemptError::ShuttingDown { .. }
            | AttemptError::UnexpectedReply { .. } => false,
        }
    }

    /// Whether trying again within the same group (at another server, or
    /// later) can succeed. `WrongGroup` and `NoGroup` cannot: they need a
    /// newer shard configuration first ([`AttemptError::needs_new_config`]).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AttemptError::BadRequest { .. }
                | AttemptError::TooLarge { .. }
                | AttemptError::UnexpectedReply { .. }
                | AttemptError::WrongGroup { .. }
                | AttemptError::NoGroup { .. }
        )
    }

    /// Whether the request went to (or would have gone to) a group that
    /// does not serve the key's shard, so that a sharded client should
    /// refresh its configuration and retry, possibly at another group.
    pub fn needs_new_config(&self) -> bool {
        matches!(
            self,
            AttemptError::WrongGroup { .. } | AttemptError::NoGroup { .. }
        )
    }

    /// Whether the cluster is likely busy electing or recovering, so the next
    /// attempt should wait a little instead of going out at once.
    pub(crate) fn suggests_pause(&self) -> bool {
        matches!(
            self,
            AttemptError::ServerTimeout { .. }
                | AttemptError::NoReply { .. }
                | AttemptError::ConnectionLost { .. }
                | AttemptError::NotServed { .. }
        )
    }
}

/// Why a [`crate::Clerk`] call (or an admin call of
/// [`crate::ClusterClient`]) gave up.
///
/// The two main variants are the two answers a history needs: `NotApplied`
/// is a `fail`, `Unknown` an `info`. Every attempt counts: a write whose
/// first attempt timed out and whose retry met a `wrong_leader` is still
/// `Unknown`, because the first attempt may yet commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// The operation certainly did not take effect.
    #[error(
        "{op} failed after {attempts} attempt(s) in {elapsed:?} and certainly did not take effect; last error: {last}"
    )]
    NotApplied {
        /// The request kind (`get`, `put`, ...).
        op: &'static str,
        /// Requests sent or tried.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's error.
        last: AttemptError,
    },
    /// The client gave up (deadline, or a reply it cannot interpret) while
    /// some attempt's outcome is unknown: the operation may have taken effect,
    /// or may still.
    #[error(
        "{op} gave up after {attempts} attempt(s) in {elapsed:?} with its outcome unknown (it may take effect); last error: {last}"
    )]
    Unknown {
        /// The request kind (`get`, `put`, ...).
        op: &'static str,
        /// Requests sent or tried.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's error.
        last: AttemptError,
    },
    /// A client was built with an empty server list.
    #[error("no server addresses given")]
    NoServers,
}

impl ClerkError {
    /// The error of a call that gives up after `attempts` in `elapsed`, the
    /// last failing with `last`: [`ClerkError::Unknown`] if any attempt
    /// might have applied the operation, else [`ClerkError::NotApplied`].
    pub(crate) fn gave_up(
        op: &'static str,
        attempts: u32,
        elapsed: std::time::Duration,
        maybe_applied: bool,
        last: AttemptError,
    ) -> ClerkError {
        if maybe_applied {
            ClerkError::Unknown {
                op,
                attempts,
                elapsed,
                last,
            }
        } else {
            ClerkError::NotApplied {
                op,
                attempts,
                elapsed,
                last,
            }
        }
    }

    /// Whether the operation certainly did not take effect (record `fail`);
    /// `false` means its outcome is unknown (record `info`).
    pub fn is_definite(&self) -> bool {
        matches!(self, ClerkError::NotApplied { .. } | ClerkError::NoServers)
    }

    /// The last attempt's error, if any attempt was made.
    pub fn last_attempt(&self) -> Option<&AttemptError> {
        match self {
            ClerkError::NotApplied { last, .. } | ClerkError::Unknown { last, .. } => Some(last),
            ClerkError::NoServers => None,
        }
    }
}

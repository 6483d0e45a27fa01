//! What the Raft driver needs from the service it replicates.
//!
//! A kvd node runs one of several services over the same Raft machinery: the
//! key/value store (`--role kv`) or the shard controller (`--role ctrler`).
//! The driver does not care which: it asks the service to sort each client
//! operation into a write (proposed, applied on every replica, answered with
//! what [`StateMachine::apply`] returns), a read (served after a ReadIndex
//! round by [`StateMachine::read`]) or a refusal, and it snapshots and
//! restores the service as an opaque image. Every client write carries an
//! exactly-once session, which the service remembers and snapshots.
//!
//! A service may need facts from its node that are not in the log (a shard
//! group's gid): that is its [`StateMachine::Env`], given at creation and
//! at every snapshot restore.

use std::fmt::Debug;

use bytes::Bytes;
use wire::{ClientId, Op, Reply};

/// How the driver should handle one client operation.
#[derive(Debug)]
pub(crate) enum Admission<Q> {
    /// Propose `entry`; answer when it is applied.
    Write {
        /// The log entry payload (never empty).
        entry: Bytes,
        /// The operation's `(client_id, seq)`, when the driver may answer a
        /// retry from [`StateMachine::duplicate`] without proposing it.
        session: Option<(ClientId, u64)>,
        /// Bytes of user payload, checked against the frame limit.
        payload_bytes: usize,
    },
    /// Serve `Q` through ReadIndex.
    Read(Q),
    /// Answer this at once; nothing is proposed.
    Refuse(Reply),
}

/// A service replicated through the Raft log. Implementations must be
/// deterministic: the same entries applied in the same order give the same
/// state and replies on every replica.
pub(crate) trait StateMachine: Send + Sized + 'static {
    /// A read, as remembered while its ReadIndex round is confirmed.
    type Query: Debug + Send + 'static;

    /// What the node tells the service beyond the log (`()` for most).
    type Env: Clone + Debug + Send + 'static;

    /// The empty state a new group starts from.
    fn new(env: &Self::Env) -> Self;

    /// The service's name in `--role`, errors and logs.
    const SERVICE: &'static str;

    /// Sorts a client operation. `status` and `transfer_leader` never get
    /// here: the driver answers them for every service.
    fn admit(op: Op) -> Admission<Self::Query>;

    /// Applies one committed entry and returns the answer for its proposer.
    /// An entry that does not decode is answered `bad_request` and changes
    /// nothing (every replica sees the same bytes, so all agree).
    fn apply(&mut self, entry: &[u8]) -> Reply;

    /// The answer to a write whose session shows it was already applied, or
    /// `None` if it was not: a retry is answered without a second proposal.
    fn duplicate(&self, client_id: ClientId, seq: u64) -> Option<Reply>;

    /// Answers a read from the current state.
    fn read(&self, query: &Self::Query) -> Reply;

    /// The whole state, sessions included, for a snapshot.
    fn snapshot(&self) -> Bytes;

    /// Rebuilds the state from [`StateMachine::snapshot`] output.
    fn restore(image: &[u8], env: &Self::Env) -> Result<Self, SnapshotDecodeError>;

    /// A size for log lines (keys, configurations).
    fn size(&self) -> usize;

    /// What a shard group holds, for `status`; `None` for other services.
    fn shard_group_status(&self) -> Option<wire::ShardGroupStatus> {
        None
    }
}

/// Why a snapshot image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotDecodeError {
    /// The bytes are not this service's image.
    #[error("snapshot image is not a {service} state machine: {source}")]
    Decode {
        /// The service that tried to read it.
        service: &'static str,
        /// What the decoder said.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// The image decodes but belongs to another deployment (another gid).
    #[error("snapshot image belongs elsewhere: {0}")]
    Foreign(String),
}

/// The name of an operation as the protocol spells it, for error messages.
pub(crate) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Get { .. } => "get",
        Op::Put { .. } => "put",
        Op::Append { .. } => "append",
        Op::Status => "status",
        Op::TransferLeader { .. } => "transfer_leader",
        Op::Join { .. } => "join",
        Op::Leave { .. } => "leave",
        Op::Move { .. } => "move",
        Op::Query { .. } => "query",
        Op::PullShard { .. } => "pull_shard",
        Op::DeleteShard { .. } => "delete_shard",
    }
}

/// The `bad_request` for an operation another service serves.
pub(crate) fn not_served(service: &'static str, serves: &str, op: &Op) -> Reply {
    Reply::BadRequest {
        reason: format!(
            "this is a {service} node; it serves {serves}, status and transfer_leader; `{}` is not served here",
            op_name(op)
        ),
    }
}

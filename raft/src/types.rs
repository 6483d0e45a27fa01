//! The plain data that Raft persists, replicates and hands to the application.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a Raft node within its group. Any value is allowed; ids only
/// need to be distinct within one `Config::voters` list.
pub type NodeId = u64;

/// A Raft term: a logical clock that increases with every election.
pub type Term = u64;

/// A position in the replicated log. The first entry has index 1; index 0 is
/// the empty prefix (term 0) that every log starts from.
pub type Index = u64;

/// One slot of the replicated log.
///
/// An entry with empty `data` is a leader's no-op, appended when it takes
/// office so that it can commit something in its own term (Raft §5.4.2).
/// The application skips no-ops when applying; `RawNode::propose` therefore
/// refuses empty payloads so the two can never be confused.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position of the entry in the log.
    pub index: Index,
    /// Opaque command for the application's state machine; empty for a no-op.
    pub data: Bytes,
}

impl Entry {
    /// Whether this is a leader's no-op rather than an application command.
    pub fn is_noop(&self) -> bool {
        self.data.is_empty()
    }
}

/// The part of a node's state that must be durable before any message that
/// depends on it is sent (Raft Figure 2, "persistent state").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// Candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// Highest log index known to be committed. Persisting it is not required
    /// for safety, but lets a restarted node re-apply without waiting for a
    /// leader.
    pub commit: Index,
}

/// Where a snapshot sits in the log: it replaces every entry up to and
/// including `index`, the last of which had term `term`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers.
    pub index: Index,
    /// Term of that entry, needed to check log matching right after it.
    pub term: Term,
}

/// A state-machine snapshot together with its position in the log. Raft keeps
/// the latest one to bring far-behind followers up to date (InstallSnapshot).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Position in the log.
    pub meta: SnapshotMeta,
    /// The application's serialized state machine, opaque to Raft.
    pub data: Bytes,
}

/// The role a node currently plays.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Role {
    /// Replicates the leader's log and votes in elections.
    Follower,
    /// Asking peers whether it could win an election, without bumping its
    /// term yet (pre-vote), so a node cut off from the group cannot disrupt
    /// it when it returns.
    PreCandidate,
    /// Has started an election in a new term and is collecting votes.
    Candidate,
    /// Accepts proposals and replicates them.
    Leader,
}

/// Volatile state the driver may want to react to (route clients, fail
/// pending reads after losing leadership). Reported in `Ready` when it changes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SoftState {
    /// This node's role.
    pub role: Role,
    /// The leader this node currently follows (itself when leader).
    pub leader: Option<NodeId>,
}

/// A confirmed linearizable read: once the application has applied the log up
/// to `index`, it may answer the read identified by `ctx` from its state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ReadState {
    /// The identifier the caller passed to `RawNode::read_index`.
    pub ctx: u64,
    /// The commit index the read must observe.
    pub index: Index,
}

//! The messages Raft nodes exchange. The driver moves them between nodes
//! verbatim; every type here is serde-friendly so it can go over any wire.

use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, Snapshot, Term};

/// A message between two nodes of one Raft group.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The sender's term, except for pre-votes, which carry the term the
    /// pre-candidate would campaign in (and granted pre-vote responses, which
    /// echo it back).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// Why a follower refused an AppendEntries, and where the leader should
/// probe next (fast log backtracking, as in etcd's `findConflictByTerm`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct RejectHint {
    /// The largest index at or below the probed one whose term in the
    /// follower's log is no greater than the probed term.
    pub index: Index,
    /// The follower's term at `index`.
    pub term: Term,
}

/// The kinds of message, each with its payload.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `Message::term`?" Sent before a real
    /// election; granting it changes nothing at the voter.
    PreVote {
        /// Index of the pre-candidate's last log entry.
        last_log_index: Index,
        /// Term of that entry.
        last_log_term: Term,
    },
    /// Answer to `PreVote`.
    PreVoteResponse {
        /// Whether the voter would grant the vote.
        granted: bool,
    },
    /// A candidate's request for a vote in `Message::term`.
    RequestVote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of that entry.
        last_log_term: Term,
        /// Set when the election was started by a leadership transfer: voters
        /// then ignore their check-quorum lease on the current leader.
        transfer: bool,
    },
    /// Answer to `RequestVote`.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Replicates entries that follow `prev_index` in the leader's log.
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Term of that entry in the leader's log.
        prev_term: Term,
        /// Consecutive entries starting at `prev_index + 1` (may be empty).
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// Answer to `AppendEntries` and to `InstallSnapshot`.
    AppendEntriesResponse {
        /// On success, the highest index known to match the leader's log; on
        /// rejection, the `prev_index` that did not match.
        index: Index,
        /// `Some` when the append was rejected.
        reject: Option<RejectHint>,
    },
    /// Leader liveness, commit propagation and read-index confirmation.
    Heartbeat {
        /// The leader's commit index, capped at what this follower is known
        /// to have.
        commit: Index,
        /// The latest read-index round the leader has started.
        read_seq: u64,
    },
    /// Answer to `Heartbeat`.
    HeartbeatResponse {
        /// Echo of `Heartbeat::read_seq`.
        read_seq: u64,
    },
    /// Replaces a far-behind follower's log with the leader's snapshot.
    InstallSnapshot {
        /// The snapshot to install.
        snapshot: Snapshot,
    },
    /// Tells the leadership-transfer target to start an election now.
    TimeoutNow,
}

impl MessageBody {
    /// Number of bytes of application payload (entry and snapshot data) the
    /// message carries; used for size caps and traffic accounting.
    pub fn payload_len(&self) -> u64 {
        match self {
            MessageBody::AppendEntries { entries, .. } => {
                entries.iter().map(|e| e.data.len() as u64).sum()
            }
            MessageBody::InstallSnapshot { snapshot } => snapshot.data.len() as u64,
            _ => 0,
        }
    }

    /// Short name of the message kind, for logs and per-kind counters.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }
}

//! What the storage persists: log entries, the Raft hard state, snapshots.
//!
//! These mirror the `raft` crate's `Entry`, `HardState` and `Snapshot` field
//! for field, so the driver converts with a struct literal; keeping our own
//! types lets the on-disk format stand still while the Raft core evolves.

use bytes::Bytes;

/// One Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Term of the leader that created it.
    pub term: u64,
    /// Position in the log, from 1.
    pub index: u64,
    /// Opaque command bytes.
    pub data: Bytes,
}

/// The Raft state that must survive a crash besides the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Candidate voted for in `term`, if any.
    pub vote: Option<u64>,
    /// Highest index known committed.
    pub commit: u64,
}

/// A state-machine snapshot covering the log up to `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Last log index the snapshot includes.
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// Opaque image: the state machine, client sessions, and any membership the
    /// driver needs to restore.
    pub data: Bytes,
}

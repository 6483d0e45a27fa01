//! The batch of work a node hands to its driver.

use crate::message::Message;
use crate::types::{Entry, HardState, ReadState, Snapshot, SoftState};

/// Everything the driver must do after the node's state changed, in this
/// order:
///
/// 1. persist `snapshot` (replacing the stored log: discard every stored
///    entry), then `entries` (deleting any stored entry whose index is at or
///    after `entries[0].index` first), then `hard_state`, and make them
///    durable (fsync);
/// 2. send `messages`, which may depend on everything persisted in step 1;
/// 3. if `snapshot` is set, restore the state machine from it; then apply
///    `committed_entries` in order, skipping no-ops (empty data);
/// 4. answer each read in `read_states` once the state machine has applied
///    `index` (after step 3 that is already true);
/// 5. call `RawNode::advance`.
///
/// `soft_state` is informational (role or leader changed) and needs no
/// persistence. Committed entries may include entries from `entries` of the
/// same `Ready`; step 1 before step 3 keeps that safe.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Ready {
    /// New role or leader, if either changed since the last `Ready`.
    pub soft_state: Option<SoftState>,
    /// New durable state, if it changed since the last `Ready`.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader that replaces the log.
    pub snapshot: Option<Snapshot>,
    /// Log entries to append durably (overwriting from the first index).
    pub entries: Vec<Entry>,
    /// Messages to send once the above is durable.
    pub messages: Vec<Message>,
    /// Newly committed entries to apply, in log order.
    pub committed_entries: Vec<Entry>,
    /// Linearizable reads confirmed since the last `Ready`.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }
}

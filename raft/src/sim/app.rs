//! What each simulated node keeps besides its `RawNode`: the durable state
//! it persisted from `Ready`s (survives crashes) and a tiny state machine
//! (lost on crash, rebuilt from the snapshot and the log).

use bytes::Bytes;

use crate::types::{Entry, HardState, Index, Snapshot};

/// Everything a node has made durable; the only thing a crash leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// Last persisted hard state.
    pub hard_state: HardState,
    /// Last persisted snapshot.
    pub snapshot: Option<Snapshot>,
    /// Persisted log entries after the snapshot.
    pub entries: Vec<Entry>,
}

impl DurableState {
    /// Applies the persistence part of a `Ready`, in the documented order.
    pub(crate) fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    ) {
        if let Some(snapshot) = snapshot {
            self.snapshot = Some(snapshot.clone());
            self.entries.clear();
        }
        if let Some(first) = entries.first() {
            let keep = self.entries.partition_point(|e| e.index < first.index);
            self.entries.truncate(keep);
            self.entries.extend(entries);
        }
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
    }

    /// Records an application snapshot and drops the entries it covers.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) {
        let covered = self
            .entries
            .partition_point(|e| e.index <= snapshot.meta.index);
        self.entries.drain(..covered);
        self.snapshot = Some(snapshot);
    }
}

/// The simulated application: it remembers how far it has applied and a
/// digest of every command so far, which is all the state two replicas need
/// to compare to prove they applied the same sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// Index of the last applied entry.
    pub applied: Index,
    /// Rolling hash of all commands applied so far (no-ops excluded).
    pub digest: u64,
}

impl StateMachine {
    /// A state machine as restored from `snapshot`, or empty. `None` if the
    /// snapshot data is not one this simulator wrote.
    pub fn from_snapshot(snapshot: Option<&Snapshot>) -> Option<Self> {
        let Some(snapshot) = snapshot else {
            return Some(StateMachine::default());
        };
        let data: &[u8] = &snapshot.data;
        let (applied, digest) = (data.get(..8)?, data.get(8..16)?);
        Some(StateMachine {
            applied: u64::from_le_bytes(applied.try_into().ok()?),
            digest: u64::from_le_bytes(digest.try_into().ok()?),
        })
    }

    /// The state machine serialized as snapshot data.
    pub fn snapshot_data(&self) -> Bytes {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.digest.to_le_bytes());
        Bytes::from(out)
    }

    /// Applies the next entry. Returns false (and changes nothing) if it is
    /// not the next one.
    pub fn apply(&mut self, entry: &Entry) -> bool {
        if entry.index != self.applied + 1 {
            return false;
        }
        self.applied = entry.index;
        if !entry.is_noop() {
            self.digest = fnv1a(self.digest, &entry.data);
        }
        true
    }
}

/// FNV-1a over `data`, continuing from `seed`.
pub(crate) fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

//! The in-memory Raft log: the latest snapshot followed by the entries after
//! it, plus the bookkeeping that tells `Ready` what is new.
//!
//! Indices: the snapshot covers `1..=snapshot.index`; `entries[k]` has index
//! `snapshot.index + 1 + k`. Three cursors move forward through the log:
//! `committed` (known durable on a majority), `applying` (handed to the
//! application in a `Ready`) and `applied` (acknowledged by `advance`).
//! `unstable_from` marks the first entry not yet handed out for persistence.

use bytes::Bytes;
use thiserror::Error;

use crate::types::{Entry, Index, Snapshot, SnapshotMeta, Term};

/// Why the application's compaction request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompactError {
    /// The application may only snapshot what it has applied.
    #[error("cannot compact to index {index}: only applied up to {applied}")]
    NotApplied {
        /// Requested snapshot index.
        index: Index,
        /// Highest index acknowledged as applied.
        applied: Index,
    },
    /// A snapshot at or beyond this index already exists.
    #[error("cannot compact to index {index}: already compacted up to {snapshot_index}")]
    AlreadyCompacted {
        /// Requested snapshot index.
        index: Index,
        /// Index of the existing snapshot.
        snapshot_index: Index,
    },
}

/// Why persisted state could not be loaded into a node.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Persisted entries skip or repeat an index.
    #[error("persisted entries are not contiguous: expected index {expected}, found {found}")]
    NotContiguous {
        /// The index that should have come next.
        expected: Index,
        /// The index that did.
        found: Index,
    },
    /// Persisted entries' terms go backwards or exceed the persisted term.
    #[error("persisted entry {index} has term {term}, which is out of order")]
    TermOutOfOrder {
        /// The offending entry.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A persisted index or term is too large to be real.
    #[error("persisted {what} {value} is out of range")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The persisted commit index points past the end of the log.
    #[error("persisted commit index {commit} is beyond the last log index {last}")]
    CommitBeyondLog {
        /// Persisted commit index.
        commit: Index,
        /// Last index of the restored log.
        last: Index,
    },
}

#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct RaftLog {
    snapshot: Snapshot,
    entries: Vec<Entry>,
    committed: Index,
    applying: Index,
    applied: Index,
    unstable_from: Index,
}

impl RaftLog {
    pub(crate) fn new() -> Self {
        RaftLog {
            unstable_from: 1,
            ..RaftLog::default()
        }
    }

    /// Rebuilds the log from durable state. Entries at or below the snapshot
    /// are skipped (a WAL may lag behind compaction). Nothing restored is
    /// reported as unstable: it is already durable.
    pub(crate) fn restore(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: Index,
        max_term: Term,
    ) -> Result<Self, RestoreError> {
        let snapshot = snapshot.unwrap_or_default();
        let limit = crate::node::MAX_INDEX_OR_TERM;
        let out_of_range = [
            ("term", max_term),
            ("commit index", commit),
            ("snapshot index", snapshot.meta.index),
            ("snapshot term", snapshot.meta.term),
        ]
        .into_iter()
        .chain(entries.iter().map(|e| ("entry index", e.index)))
        .find(|&(_, value)| value > limit);
        if let Some((what, value)) = out_of_range {
            return Err(RestoreError::OutOfRange { what, value });
        }
        let mut log = RaftLog {
            committed: snapshot.meta.index,
            applying: snapshot.meta.index,
            applied: snapshot.meta.index,
            snapshot,
            ..RaftLog::default()
        };
        let mut prev_term = log.snapshot.meta.term;
        for entry in entries {
            if entry.index <= log.snapshot.meta.index {
                continue;
            }
            let expected = log.last_index() + 1;
            if entry.index != expected {
                return Err(RestoreError::NotContiguous {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term < prev_term || entry.term > max_term {
                return Err(RestoreError::TermOutOfOrder {
                    index: entry.index,
                    term: entry.term,
                });
            }
            prev_term = entry.term;
            log.entries.push(entry);
        }
        if commit > log.last_index() {
            return Err(RestoreError::CommitBeyondLog {
                commit,
                last: log.last_index(),
            });
        }
        log.committed = log.committed.max(commit);
        log.unstable_from = log.last_index() + 1;
        Ok(log)
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn first_index(&self) -> Index {
        self.snapshot.meta.index + 1
    }

    pub(crate) fn last_index(&self) -> Index {
        self.snapshot.meta.index + self.entries.len() as Index
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }

    pub(crate) fn committed(&self) -> Index {
        self.committed
    }

    pub(crate) fn applied(&self) -> Index {
        self.applied
    }

    /// Term of the entry at `index`, if the log still knows it (the snapshot
    /// remembers the term of its last entry only).
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        let snap = self.snapshot.meta;
        if index == snap.index {
            return Some(snap.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Raft's election restriction (§5.4.1): a log ending at
    /// (`last_index`, `last_term`) is at least as up to date as ours.
    pub(crate) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let our_term = self.last_term();
        last_term > our_term || (last_term == our_term && last_index >= self.last_index())
    }

    /// Appends an entry created by this node as leader.
    pub(crate) fn push(&mut self, term: Term, data: Bytes) -> Index {
        let index = self.last_index() + 1;
        self.entries.push(Entry { term, index, data });
        index
    }

    /// Entries from `from` on, at most `max_bytes` of payload but at least
    /// one entry. `None` when `from` has been compacted into the snapshot.
    pub(crate) fn entries_for_send(&self, from: Index, max_bytes: u64) -> Option<Vec<Entry>> {
        if from < self.first_index() {
            return None;
        }
        let start = usize::try_from(from - self.first_index()).ok()?;
        let tail = self.entries.get(start..).unwrap_or(&[]);
        let mut size = 0u64;
        let mut count = 0;
        for entry in tail {
            size += entry.data.len() as u64;
            if count > 0 && size > max_bytes {
                break;
            }
            count += 1;
        }
        Some(tail[..count].to_vec())
    }

    /// The first entry of `entries` (contiguous, starting right after a
    /// matching prefix) that our log lacks or holds with another term.
    pub(crate) fn find_conflict(&self, entries: &[Entry]) -> Option<usize> {
        entries
            .iter()
            .position(|e| self.term_at(e.index) != Some(e.term))
    }

    /// Replaces everything from `entries[0].index` on with `entries`.
    /// `entries` must start within `first_index()..=last_index() + 1`.
    pub(crate) fn truncate_and_append(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else {
            return;
        };
        let keep = usize::try_from(first.index.saturating_sub(self.first_index()))
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let from = self.first_index() + keep as Index;
        self.entries.truncate(keep);
        self.unstable_from = self.unstable_from.min(from);
        self.entries.extend(entries);
    }

    /// Moves the commit index forward (never back, never past the log).
    pub(crate) fn commit_to(&mut self, index: Index) -> bool {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// The largest index at or below `index` whose term is at most `term`:
    /// where a leader should probe next after a rejection. Stops at the
    /// snapshot, below which terms are unknown.
    pub(crate) fn find_conflict_by_term(&self, index: Index, term: Term) -> Index {
        let mut i = index.min(self.last_index());
        while i > self.snapshot.meta.index {
            match self.term_at(i) {
                Some(t) if t > term => i -= 1,
                _ => return i,
            }
        }
        i
    }

    /// Replaces the whole log with a snapshot received from the leader.
    pub(crate) fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        self.entries.clear();
        self.snapshot = snapshot;
        self.committed = index;
        self.applying = index;
        self.unstable_from = index + 1;
    }

    /// Drops entries up to `index`, which the application has captured in
    /// `data`.
    pub(crate) fn compact(&mut self, index: Index, data: Bytes) -> Result<(), CompactError> {
        if index <= self.snapshot.meta.index {
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: self.snapshot.meta.index,
            });
        }
        if index > self.applied {
            return Err(CompactError::NotApplied {
                index,
                applied: self.applied,
            });
        }
        let term = self.term_at(index).unwrap_or_default();
        let drop = usize::try_from(index - self.snapshot.meta.index).unwrap_or(usize::MAX);
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data,
        };
        self.unstable_from = self.unstable_from.max(index + 1);
        Ok(())
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Entries not yet handed out for persistence; marks them handed out.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self.unstable_from.max(self.first_index());
        let start = usize::try_from(from - self.first_index()).unwrap_or(usize::MAX);
        let out = self.entries.get(start..).unwrap_or(&[]).to_vec();
        self.unstable_from = self.last_index() + 1;
        out
    }

    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.committed > self.applying
    }

    /// Committed entries not yet handed to the application; marks them
    /// handed out.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let from = (self.applying + 1).max(self.first_index());
        let to = self.committed.min(self.last_index());
        if from > to {
            return Vec::new();
        }
        let start = usize::try_from(from - self.first_index()).unwrap_or(usize::MAX);
        let end = usize::try_from(to - self.first_index() + 1).unwrap_or(usize::MAX);
        let out = self.entries.get(start..end).unwrap_or(&[]).to_vec();
        self.applying = to;
        out
    }

    /// The application has applied everything handed out so far.
    pub(crate) fn advance_applied(&mut self) {
        self.applied = self.applying;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            data: Bytes::from_static(b"x"),
        }
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let mut log = RaftLog::new();
        for &t in terms {
            log.push(t, Bytes::from_static(b"x"));
        }
        log
    }

    #[test]
    fn term_lookup_covers_snapshot_boundary_only() {
        let mut log = log_with_terms(&[1, 1, 2, 3]);
        log.commit_to(3);
        log.take_committed();
        log.advance_applied();
        log.compact(2, Bytes::new()).unwrap();
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(4), Some(3));
        assert_eq!(log.term_at(5), None);
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 4);
    }

    #[test]
    fn truncation_marks_overwritten_entries_unstable() {
        let mut log = log_with_terms(&[1, 1, 1]);
        assert_eq!(log.take_unstable().len(), 3);
        assert!(!log.has_unstable());
        log.truncate_and_append(vec![entry(2, 2), entry(3, 2), entry(4, 2)]);
        let unstable = log.take_unstable();
        assert_eq!(unstable.first().map(|e| e.index), Some(2));
        assert_eq!(unstable.len(), 3);
        assert_eq!(log.term_at(1), Some(1));
        assert_eq!(log.term_at(2), Some(2));
    }

    #[test]
    fn conflict_by_term_skips_whole_terms() {
        let log = log_with_terms(&[1, 1, 4, 4, 5, 5]);
        assert_eq!(log.find_conflict_by_term(6, 3), 2);
        assert_eq!(log.find_conflict_by_term(6, 4), 4);
        assert_eq!(log.find_conflict_by_term(100, 9), 6);
        assert_eq!(log.find_conflict_by_term(6, 0), 0);
    }

    #[test]
    fn send_batches_respect_size_but_carry_one_entry() {
        let log = log_with_terms(&[1, 1, 1, 1]);
        assert_eq!(log.entries_for_send(1, 0).unwrap().len(), 1);
        assert_eq!(log.entries_for_send(1, 2).unwrap().len(), 2);
        assert_eq!(log.entries_for_send(2, u64::MAX).unwrap().len(), 3);
        assert!(log.entries_for_send(5, 10).unwrap().is_empty());
    }

    #[test]
    fn compaction_needs_applied_entries() {
        let mut log = log_with_terms(&[1, 1]);
        log.commit_to(2);
        assert_eq!(
            log.compact(1, Bytes::new()),
            Err(CompactError::NotApplied {
                index: 1,
                applied: 0
            })
        );
        log.take_committed();
        log.advance_applied();
        log.compact(2, Bytes::new()).unwrap();
        assert!(matches!(
            log.compact(2, Bytes::new()),
            Err(CompactError::AlreadyCompacted { .. })
        ));
    }

    #[test]
    fn restore_rejects_gaps_and_commit_past_end() {
        assert!(matches!(
            RaftLog::restore(None, vec![entry(1, 1), entry(3, 1)], 0, 1),
            Err(RestoreError::NotContiguous {
                expected: 2,
                found: 3
            })
        ));
        assert!(matches!(
            RaftLog::restore(None, vec![entry(1, 1)], 2, 1),
            Err(RestoreError::CommitBeyondLog { .. })
        ));
        let snap = Snapshot {
            meta: SnapshotMeta { index: 2, term: 1 },
            data: Bytes::new(),
        };
        let log = RaftLog::restore(
            Some(snap),
            vec![entry(1, 1), entry(2, 1), entry(3, 1)],
            1,
            1,
        )
        .unwrap();
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.committed(), 2);
        assert!(!log.has_unstable());
    }
}

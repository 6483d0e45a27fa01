//! Rebuilding the log from records.
//!
//! Replay gives each record one meaning, independent of what came before it:
//!
//! - entries starting at `i`: entries from `i` on are replaced by these;
//! - truncate from `i`: entries from `i` on are discarded;
//! - snapshot `(i, t)`: entries up to `i` are covered by the snapshot;
//! - hard state: replaces the previous one.
//!
//! The writer ([`super::plan`]) spells out every decision in these terms (for
//! instance it writes an explicit truncate when a snapshot conflicts with the
//! log), so replay never has to re-derive one from state it may not have: after
//! compaction the oldest surviving segment can begin in the middle of the log.
//! That is also why entries may start above the snapshot while replaying; the
//! final log must not have such a hole, which [`ReplayLog::finish`] checks.

use std::collections::VecDeque;

use super::record::Record;
use super::types::{Entry, HardState};

/// The log as rebuilt so far.
#[derive(Debug, Default)]
pub(crate) struct ReplayLog {
    pub(crate) hard_state: HardState,
    /// `(index, term)` of the latest snapshot marker, `(0, 0)` if none.
    pub(crate) snapshot: (u64, u64),
    /// Consecutive entries, all above `snapshot.0`.
    pub(crate) entries: VecDeque<Entry>,
}

impl ReplayLog {
    fn next_index(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.snapshot.0 + 1, |e| e.index + 1)
    }

    /// Applies one record; an error describes a record that cannot have been
    /// written by a correct writer at this point.
    pub(crate) fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::HardState(hs) => self.hard_state = hs,
            Record::Snapshot { index, term } => {
                if index < self.snapshot.0 {
                    return Err(format!(
                        "snapshot marker at index {index} is older than the earlier one at {}",
                        self.snapshot.0
                    ));
                }
                self.snapshot = (index, term);
                while self.entries.front().is_some_and(|e| e.index <= index) {
                    self.entries.pop_front();
                }
            }
            Record::Truncate { from } => {
                if from <= self.snapshot.0 {
                    return Err(format!(
                        "truncation from index {from} reaches into the snapshot at {}",
                        self.snapshot.0
                    ));
                }
                self.truncate_from(from);
            }
            Record::Entries(new) => {
                let Some(first) = new.first().map(|e| e.index) else {
                    return Ok(());
                };
                if first <= self.snapshot.0 {
                    return Err(format!(
                        "entries from index {first} overwrite the snapshot at {}",
                        self.snapshot.0
                    ));
                }
                // With nothing held (as after a compacted hole) the entries
                // may start anywhere above the snapshot; `finish` checks holes.
                if !self.entries.is_empty() && first > self.next_index() {
                    return Err(format!(
                        "entries jump from index {} to {first}",
                        self.next_index() - 1
                    ));
                }
                self.truncate_from(first);
                self.entries.extend(new);
            }
        }
        Ok(())
    }

    fn truncate_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.index >= from) {
            self.entries.pop_back();
        }
    }

    /// Checks that the rebuilt log starts right after the snapshot.
    pub(crate) fn finish(&self) -> Result<(), String> {
        match self.entries.front() {
            Some(e) if e.index != self.snapshot.0 + 1 => Err(format!(
                "the log starts at index {} but the snapshot only covers up to {}: entries {}..={} are missing",
                e.index,
                self.snapshot.0,
                self.snapshot.0 + 1,
                e.index - 1
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entries(first: u64, terms: &[u64]) -> Record {
        Record::Entries(
            terms
                .iter()
                .zip(first..)
                .map(|(&term, index)| Entry {
                    term,
                    index,
                    data: Bytes::from(format!("{index}@{term}")),
                })
                .collect(),
        )
    }

    fn shape(log: &ReplayLog) -> Vec<(u64, u64)> {
        log.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn a_later_append_at_a_lower_index_overwrites_the_suffix() {
        let mut log = ReplayLog::default();
        log.apply(entries(1, &[1, 1, 1, 1])).unwrap();
        log.apply(entries(3, &[2])).unwrap();
        assert_eq!(shape(&log), [(1, 1), (2, 1), (3, 2)]);
        log.finish().unwrap();
    }

    #[test]
    fn snapshot_marker_compacts_the_prefix_and_keeps_the_suffix() {
        let mut log = ReplayLog::default();
        log.apply(entries(1, &[1, 1, 1, 1])).unwrap();
        log.apply(Record::Snapshot { index: 2, term: 1 }).unwrap();
        assert_eq!(shape(&log), [(3, 1), (4, 1)]);
        log.finish().unwrap();
    }

    #[test]
    fn replay_may_start_mid_log_when_a_snapshot_covers_the_hole() {
        // The oldest surviving segment after compaction: an old marker, then
        // entries from 50 on (segments holding 11..=49 were deleted).
        let mut log = ReplayLog::default();
        log.apply(Record::Snapshot { index: 10, term: 1 }).unwrap();
        log.apply(entries(50, &[2, 2, 2])).unwrap();
        assert!(log.finish().is_err(), "hole 11..=49 is not covered yet");
        log.apply(Record::Snapshot { index: 50, term: 2 }).unwrap();
        assert_eq!(shape(&log), [(51, 2), (52, 2)]);
        log.finish().unwrap();
    }

    #[test]
    fn uncovered_hole_is_reported_with_the_missing_range() {
        let mut log = ReplayLog::default();
        log.apply(entries(5, &[1])).unwrap();
        let err = log.finish().unwrap_err();
        assert!(err.contains("1..=4"), "{err}");
    }

    #[test]
    fn a_gap_between_held_entries_and_new_ones_is_an_error() {
        let mut log = ReplayLog::default();
        log.apply(entries(1, &[1, 1])).unwrap();
        assert!(log.apply(entries(5, &[1])).is_err());
    }

    #[test]
    fn records_reaching_under_the_snapshot_are_errors() {
        let mut log = ReplayLog::default();
        log.apply(Record::Snapshot { index: 10, term: 2 }).unwrap();
        assert!(log.apply(entries(10, &[2])).is_err());
        assert!(log.apply(Record::Truncate { from: 10 }).is_err());
        assert!(log.apply(Record::Snapshot { index: 9, term: 2 }).is_err());
    }
}

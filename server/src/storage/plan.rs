//! Turning one write batch into WAL records.
//!
//! [`LiveLog`] tracks the shape of the persisted log (snapshot point and the
//! term of every entry after it, 8 bytes per entry) so that a batch can be
//! checked before anything is written, and so that installing a snapshot can
//! follow the Raft rule: if the log holds the snapshot's last entry with the
//! same term, the entries after it stay; otherwise the whole log goes, which
//! the WAL records with an explicit truncation (see [`super::replay`]).

use std::collections::VecDeque;

use super::Batch;
use super::record::BatchEncoder;

/// The persisted log's shape.
#[derive(Debug, Default)]
pub(crate) struct LiveLog {
    /// `(index, term)` of the snapshot, `(0, 0)` if none.
    snapshot: (u64, u64),
    /// Terms of entries `snapshot.0 + 1 ..= last_index()`.
    terms: VecDeque<u64>,
}

/// What a validated batch will do.
#[derive(Debug)]
pub(crate) struct Plan {
    snapshot: Option<SnapshotStep>,
}

#[derive(Debug)]
struct SnapshotStep {
    index: u64,
    term: u64,
    /// The log holds the snapshot's last entry with the snapshot's term, so the
    /// entries after it survive; otherwise every entry goes.
    keeps_log: bool,
}

/// Entry data and records are length-prefixed with u32.
const MAX_RECORD_PAYLOAD: u64 = u32::MAX as u64;

impl LiveLog {
    /// The shape after recovery.
    pub(crate) fn new(snapshot: (u64, u64), terms: impl IntoIterator<Item = u64>) -> Self {
        LiveLog {
            snapshot,
            terms: terms.into_iter().collect(),
        }
    }

    /// `(index, term)` of the snapshot.
    pub(crate) fn snapshot(&self) -> (u64, u64) {
        self.snapshot
    }

    /// Index of the last entry (the snapshot's index if the log is empty).
    pub(crate) fn last_index(&self) -> u64 {
        self.snapshot.0 + self.terms.len() as u64
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.0 {
            return Some(self.snapshot.1);
        }
        let offset = index.checked_sub(self.snapshot.0 + 1)?;
        self.terms.get(usize::try_from(offset).ok()?).copied()
    }

    /// Checks a batch against the log without changing anything.
    pub(crate) fn plan(&self, batch: &Batch<'_>) -> Result<Plan, String> {
        let (mut base, mut last) = (self.snapshot.0, self.last_index());
        let snapshot = match batch.snapshot {
            None => None,
            Some(s) => {
                if s.index == 0 {
                    return Err("a snapshot must cover at least index 1".to_owned());
                }
                if s.index < self.snapshot.0 {
                    return Err(format!(
                        "snapshot at index {} is older than the stored one at {}",
                        s.index, self.snapshot.0
                    ));
                }
                if s.index == self.snapshot.0 && s.index > 0 && s.term != self.snapshot.1 {
                    return Err(format!(
                        "snapshot at index {} has term {}, the stored one at that index has term {}",
                        s.index, s.term, self.snapshot.1
                    ));
                }
                let keeps_log = self.term_at(s.index) == Some(s.term);
                base = s.index;
                if !keeps_log {
                    last = s.index;
                }
                Some(SnapshotStep {
                    index: s.index,
                    term: s.term,
                    keeps_log,
                })
            }
        };
        if let Some(first) = batch.entries.first() {
            for pair in batch.entries.windows(2) {
                if pair[1].index != pair[0].index.wrapping_add(1) {
                    return Err(format!(
                        "entries are not consecutive: index {} follows {}",
                        pair[1].index, pair[0].index
                    ));
                }
            }
            let payload: u64 = 12
                + batch
                    .entries
                    .iter()
                    .map(|e| 12 + e.data.len() as u64)
                    .sum::<u64>();
            if payload > MAX_RECORD_PAYLOAD {
                return Err(format!(
                    "{} bytes of entries in one batch; the limit is {MAX_RECORD_PAYLOAD}",
                    payload
                ));
            }
            if first.index <= base {
                return Err(format!(
                    "entry {} is already covered by the snapshot at index {base}",
                    first.index
                ));
            }
            if first.index > last + 1 {
                return Err(format!(
                    "entries start at index {} but the log ends at {last}; that would leave a gap",
                    first.index
                ));
            }
        }
        Ok(Plan { snapshot })
    }

    /// Encodes a planned batch's records (snapshot marker, truncation, entries,
    /// hard state, in that order) and updates the shape to match.
    pub(crate) fn apply(&mut self, plan: Plan, batch: &Batch<'_>, out: &mut BatchEncoder<'_>) {
        if let Some(step) = plan.snapshot {
            out.snapshot(step.index, step.term);
            if step.keeps_log {
                let covered = (step.index - self.snapshot.0) as usize;
                self.terms.drain(..covered.min(self.terms.len()));
            } else {
                if self.last_index() > step.index {
                    out.truncate(step.index + 1);
                }
                self.terms.clear();
            }
            self.snapshot = (step.index, step.term);
        }
        if let Some(first) = batch.entries.first() {
            // Entries replace everything from their first index on.
            let keep = first.index - self.snapshot.0 - 1;
            self.terms.truncate(keep as usize);
            self.terms.extend(batch.entries.iter().map(|e| e.term));
            out.entries(batch.entries);
        }
        if let Some(hs) = batch.hard_state {
            out.hard_state(hs);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::record::{Record, decode, read_raw};
    use crate::storage::types::{Entry, Snapshot};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            data: Bytes::new(),
        }
    }

    fn records_of(log: &mut LiveLog, batch: &Batch<'_>) -> Vec<Record> {
        let plan = log.plan(batch).expect("valid batch");
        let mut buf = Vec::new();
        let mut enc = BatchEncoder::new(&mut buf);
        log.apply(plan, batch, &mut enc);
        enc.finish();
        let mut out = Vec::new();
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let raw = read_raw(rest).unwrap();
            out.push(decode(&raw).unwrap());
            rest = &rest[raw.total_len..];
        }
        out
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            index,
            term,
            data: Bytes::new(),
        }
    }

    #[test]
    fn matching_snapshot_keeps_the_suffix() {
        let mut log = LiveLog::new((0, 0), [1, 1, 2, 2]);
        let snap = snapshot(3, 2);
        let batch = Batch {
            snapshot: Some(&snap),
            ..Batch::default()
        };
        assert_eq!(
            records_of(&mut log, &batch),
            [Record::Snapshot { index: 3, term: 2 }]
        );
        assert_eq!((log.snapshot(), log.last_index()), ((3, 2), 4));
    }

    #[test]
    fn conflicting_snapshot_discards_the_log_explicitly() {
        let mut log = LiveLog::new((0, 0), [1, 1, 1, 1]);
        let snap = snapshot(3, 2);
        let batch = Batch {
            snapshot: Some(&snap),
            ..Batch::default()
        };
        assert_eq!(
            records_of(&mut log, &batch),
            [
                Record::Snapshot { index: 3, term: 2 },
                Record::Truncate { from: 4 }
            ]
        );
        assert_eq!(log.last_index(), 3);
    }

    #[test]
    fn snapshot_beyond_the_log_needs_no_truncation() {
        let mut log = LiveLog::new((0, 0), [1, 1]);
        let snap = snapshot(10, 3);
        let entries = [entry(11, 3)];
        let batch = Batch {
            snapshot: Some(&snap),
            entries: &entries,
            hard_state: None,
        };
        let records = records_of(&mut log, &batch);
        assert_eq!(records[0], Record::Snapshot { index: 10, term: 3 });
        assert!(matches!(records[1], Record::Entries(_)));
        assert_eq!(log.last_index(), 11);
    }

    #[test]
    fn shape_violations_are_refused() {
        let log = LiveLog::new((5, 2), [2, 2]);
        let cases: [(&[Entry], Option<Snapshot>, &str); 6] = [
            (&[entry(5, 2)], None, "covered by the snapshot"),
            (&[entry(9, 2)], None, "gap"),
            (&[entry(7, 2), entry(9, 2)], None, "not consecutive"),
            (&[], Some(snapshot(4, 2)), "older"),
            (&[], Some(snapshot(5, 3)), "has term 3"),
            (&[], Some(snapshot(0, 0)), "at least index 1"),
        ];
        for (entries, snap, expected) in cases {
            let batch = Batch {
                snapshot: snap.as_ref(),
                entries,
                hard_state: None,
            };
            let err = log.plan(&batch).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn appending_at_a_lower_index_replaces_the_suffix() {
        let mut log = LiveLog::new((0, 0), [1, 1, 1]);
        let entries = [entry(2, 2)];
        let batch = Batch {
            entries: &entries,
            ..Batch::default()
        };
        records_of(&mut log, &batch);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.term_at(2), Some(2));
    }
}

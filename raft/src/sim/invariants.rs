//! Raft's safety properties, checked against every `Ready` every node
//! produces (Raft Figure 3), plus the durability and read rules around them.
//!
//! - **Election safety**: at most one leader per term.
//! - **Log matching**: two logs with an entry of the same index and term
//!   agree on that entry and everything before it. Checked locally: every
//!   (index, term) ever written anywhere must always come with the same data
//!   and the same term before it, which by induction gives whole prefixes.
//! - **Leader completeness**: a new leader holds every entry committed in an
//!   earlier term.
//! - **State machine safety**: no two nodes apply different entries at one
//!   index, and a restored snapshot equals what was applied up to it.
//! - **Committed entries never change**: no node overwrites an entry it has
//!   committed, and nodes that commit an index commit the same entry.
//! - Durability: a node's term never goes back and its vote never changes
//!   within a term, even across crashes.
//! - Linearizable reads: a ReadIndex answer covers everything committed
//!   anywhere before the read was asked.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use thiserror::Error;

use super::app::StateMachine;
use crate::node::RawNode;
use crate::ready::Ready;
use crate::types::{Entry, HardState, Index, NodeId, ReadState, Role, Term};

/// A broken safety property, with enough detail to start debugging.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    /// Election safety.
    #[error("two leaders in term {term}: nodes {first} and {second}")]
    TwoLeaders {
        /// The term.
        term: Term,
        /// The leader seen first.
        first: NodeId,
        /// The other one.
        second: NodeId,
    },
    /// Log matching.
    #[error(
        "log matching broken: node {node} holds entry {index} of term {term} with a different payload or predecessor than another node"
    )]
    LogMismatch {
        /// The node whose log disagrees.
        node: NodeId,
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
    },
    /// Leader completeness.
    #[error("node {leader} became leader of term {term} without committed entry {index}")]
    LeaderIncomplete {
        /// The new leader.
        leader: NodeId,
        /// Its term.
        term: Term,
        /// The committed entry it lacks.
        index: Index,
    },
    /// Committed entries never change (on one node).
    #[error("node {node} overwrote committed entry {index}")]
    CommittedEntryOverwritten {
        /// The node.
        node: NodeId,
        /// The overwritten index.
        index: Index,
    },
    /// Committed entries never change (across nodes).
    #[error("node {node} committed an entry at {index} that differs from one committed before")]
    CommitMismatch {
        /// The node.
        node: NodeId,
        /// The index.
        index: Index,
    },
    /// A node's commit index went backwards.
    #[error("node {node} moved its commit index back from {from} to {to}")]
    CommitRegressed {
        /// The node.
        node: NodeId,
        /// Commit index before.
        from: Index,
        /// Commit index after.
        to: Index,
    },
    /// State machine safety.
    #[error("node {node} applied an entry at {index} that differs from the committed one")]
    ApplyMismatch {
        /// The node.
        node: NodeId,
        /// The index.
        index: Index,
    },
    /// Entries must be applied in order, without gaps.
    #[error("node {node} was handed entry {got} to apply after {applied}")]
    ApplyOutOfOrder {
        /// The node.
        node: NodeId,
        /// What it had applied.
        applied: Index,
        /// The entry it was given.
        got: Index,
    },
    /// A restored snapshot disagrees with what was applied.
    #[error("node {node} restored a snapshot at {index} whose state differs from the applied one")]
    SnapshotMismatch {
        /// The node.
        node: NodeId,
        /// Snapshot index.
        index: Index,
    },
    /// Durability of the term.
    #[error("node {node} persisted term {to} after term {from}")]
    TermRegressed {
        /// The node.
        node: NodeId,
        /// Earlier term.
        from: Term,
        /// Later, smaller term.
        to: Term,
    },
    /// One vote per term.
    #[error("node {node} changed its vote in term {term} from {from:?} to {to:?}")]
    VoteChanged {
        /// The node.
        node: NodeId,
        /// The term.
        term: Term,
        /// First vote.
        from: Option<NodeId>,
        /// Second vote.
        to: Option<NodeId>,
    },
    /// Linearizable reads.
    #[error(
        "node {node} answered read {ctx} at index {index}, but {required} was already committed"
    )]
    StaleRead {
        /// The leader that answered.
        node: NodeId,
        /// The read.
        ctx: u64,
        /// The index it answered at.
        index: Index,
        /// The commit index when the read was asked.
        required: Index,
    },
}

#[derive(Clone, Debug)]
struct CommittedEntry {
    term: Term,
    data: Bytes,
    /// Term of the leader that committed it.
    commit_term: Term,
}

#[derive(Default)]
pub(crate) struct InvariantChecker {
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) -> (term of the entry before it, payload).
    written: HashMap<(Index, Term), (Option<Term>, Bytes)>,
    /// Position `i` holds index `i + 1`.
    committed: Vec<Option<CommittedEntry>>,
    /// State-machine digest after applying index `i + 1`, as first seen.
    digests: Vec<Option<u64>>,
    /// Per node: commit index seen in this incarnation.
    commit: BTreeMap<NodeId, Index>,
    /// Per node: last persisted hard state (survives crashes like the disk).
    durable: BTreeMap<NodeId, HardState>,
    reads: HashMap<(NodeId, u64), Index>,
}

impl InvariantChecker {
    /// Highest index any node has committed.
    pub(crate) fn max_committed(&self) -> Index {
        self.committed.len() as Index
    }

    /// The committed command at `index`, if some node has committed it.
    pub(crate) fn committed_data(&self, index: Index) -> Option<&Bytes> {
        let slot = usize::try_from(index.checked_sub(1)?).ok()?;
        self.committed.get(slot)?.as_ref().map(|c| &c.data)
    }

    pub(crate) fn on_restart(&mut self, node: &RawNode) {
        self.commit.insert(node.id(), node.commit_index());
    }

    /// Checks a `Ready` just taken from `node` (whose state is as it was
    /// when the `Ready` was built).
    pub(crate) fn on_ready(&mut self, node: &RawNode, rd: &Ready) -> Result<(), Violation> {
        let id = node.id();
        if let Some(hs) = rd.hard_state {
            self.check_durable(id, hs)?;
        }
        let known_commit = self.commit.get(&id).copied().unwrap_or(0);
        self.check_written(node, &rd.entries, known_commit)?;
        self.check_commit(node, known_commit)?;
        if node.role() == Role::Leader {
            self.check_leader(node)?;
        }
        for rs in &rd.read_states {
            self.check_read(id, rs)?;
        }
        Ok(())
    }

    fn check_durable(&mut self, node: NodeId, hs: HardState) -> Result<(), Violation> {
        let before = self.durable.insert(node, hs).unwrap_or_default();
        if hs.term < before.term {
            return Err(Violation::TermRegressed {
                node,
                from: before.term,
                to: hs.term,
            });
        }
        if hs.term == before.term && before.vote.is_some() && hs.vote != before.vote {
            return Err(Violation::VoteChanged {
                node,
                term: hs.term,
                from: before.vote,
                to: hs.vote,
            });
        }
        Ok(())
    }

    fn check_written(
        &mut self,
        node: &RawNode,
        entries: &[Entry],
        known_commit: Index,
    ) -> Result<(), Violation> {
        let id = node.id();
        let mut prev_term = entries
            .first()
            .and_then(|e| node.term_at(e.index.saturating_sub(1)));
        for entry in entries {
            let slot = self
                .written
                .entry((entry.index, entry.term))
                .or_insert_with(|| (prev_term, entry.data.clone()));
            let prev_agrees = match (slot.0, prev_term) {
                (Some(a), Some(b)) => a == b,
                // Unknown on one side (a snapshot boundary): learn it.
                (None, known) => {
                    slot.0 = known;
                    true
                }
                (Some(_), None) => true,
            };
            if !prev_agrees || slot.1 != entry.data {
                return Err(Violation::LogMismatch {
                    node: id,
                    index: entry.index,
                    term: entry.term,
                });
            }
            if entry.index <= known_commit {
                let same = self
                    .committed_at(entry.index)
                    .is_none_or(|c| c.term == entry.term && c.data == entry.data);
                if !same {
                    return Err(Violation::CommittedEntryOverwritten {
                        node: id,
                        index: entry.index,
                    });
                }
            }
            prev_term = Some(entry.term);
        }
        Ok(())
    }

    fn committed_at(&self, index: Index) -> Option<&CommittedEntry> {
        let slot = usize::try_from(index.checked_sub(1)?).ok()?;
        self.committed.get(slot)?.as_ref()
    }

    fn check_commit(&mut self, node: &RawNode, known: Index) -> Result<(), Violation> {
        let id = node.id();
        let now = node.commit_index();
        if now < known {
            return Err(Violation::CommitRegressed {
                node: id,
                from: known,
                to: now,
            });
        }
        self.commit.insert(id, now);
        for index in (known + 1).max(node.first_index())..=now {
            let Some(entry) = node
                .log_entries()
                .get((index - node.first_index()) as usize)
            else {
                break;
            };
            let slot = (index - 1) as usize;
            if self.committed.len() <= slot {
                self.committed.resize(slot + 1, None);
            }
            match &self.committed[slot] {
                Some(c) if c.term != entry.term || c.data != entry.data => {
                    return Err(Violation::CommitMismatch { node: id, index });
                }
                Some(_) => {}
                None => {
                    self.committed[slot] = Some(CommittedEntry {
                        term: entry.term,
                        data: entry.data.clone(),
                        commit_term: node.term(),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_leader(&mut self, node: &RawNode) -> Result<(), Violation> {
        let (id, term) = (node.id(), node.term());
        match self.leaders.get(&term) {
            Some(&first) if first != id => {
                return Err(Violation::TwoLeaders {
                    term,
                    first,
                    second: id,
                });
            }
            Some(_) => return Ok(()),
            None => {
                self.leaders.insert(term, id);
            }
        }
        for (slot, committed) in self.committed.iter().enumerate() {
            let index = slot as Index + 1;
            let Some(c) = committed else { continue };
            if c.commit_term >= term || index < node.first_index() {
                continue;
            }
            if node.term_at(index) != Some(c.term) {
                return Err(Violation::LeaderIncomplete {
                    leader: id,
                    term,
                    index,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn on_apply(
        &mut self,
        node: NodeId,
        before: &StateMachine,
        entry: &Entry,
        after: &StateMachine,
    ) -> Result<(), Violation> {
        if entry.index != before.applied + 1 {
            return Err(Violation::ApplyOutOfOrder {
                node,
                applied: before.applied,
                got: entry.index,
            });
        }
        if let Some(c) = self.committed_at(entry.index)
            && (c.term != entry.term || c.data != entry.data)
        {
            return Err(Violation::ApplyMismatch {
                node,
                index: entry.index,
            });
        }
        self.check_digest(after)
            .map_err(|()| Violation::ApplyMismatch {
                node,
                index: entry.index,
            })
    }

    pub(crate) fn on_snapshot_restored(
        &mut self,
        node: NodeId,
        sm: &StateMachine,
    ) -> Result<(), Violation> {
        self.check_digest(sm)
            .map_err(|()| Violation::SnapshotMismatch {
                node,
                index: sm.applied,
            })
    }

    fn check_digest(&mut self, sm: &StateMachine) -> Result<(), ()> {
        let Some(slot) = sm.applied.checked_sub(1) else {
            return Ok(());
        };
        let slot = slot as usize;
        if self.digests.len() <= slot {
            self.digests.resize(slot + 1, None);
        }
        match self.digests[slot] {
            Some(d) if d != sm.digest => Err(()),
            Some(_) => Ok(()),
            None => {
                self.digests[slot] = Some(sm.digest);
                Ok(())
            }
        }
    }

    pub(crate) fn on_read_requested(&mut self, node: NodeId, ctx: u64) {
        let required = self.max_committed();
        self.reads.insert((node, ctx), required);
    }

    fn check_read(&mut self, node: NodeId, rs: &ReadState) -> Result<(), Violation> {
        let Some(required) = self.reads.remove(&(node, rs.ctx)) else {
            return Ok(());
        };
        if rs.index < required {
            return Err(Violation::StaleRead {
                node,
                ctx: rs.ctx,
                index: rs.index,
                required,
            });
        }
        Ok(())
    }
}

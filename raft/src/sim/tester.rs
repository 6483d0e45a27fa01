//! Helpers in the style of the MIT 6.824 Raft tester (`checkOneLeader`,
//! `one`, `nCommitted`, ...), so scenario tests read like the lab's.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Cluster, InvariantChecker, SimError};
use crate::types::{Index, NodeId, Role, Term};

impl Cluster {
    /// Leaders among connected nodes, by term.
    fn connected_leaders(&self) -> BTreeMap<Term, Vec<NodeId>> {
        let mut leaders: BTreeMap<Term, Vec<NodeId>> = BTreeMap::new();
        for id in self.ids() {
            if let Some(raft) = self.node(id)
                && self.is_connected(id)
                && raft.role() == Role::Leader
            {
                leaders.entry(raft.term()).or_default().push(id);
            }
        }
        leaders
    }

    /// Waits (up to ten election timeouts) until connected nodes agree on
    /// exactly one leader in the newest term, and returns it.
    pub fn check_one_leader(&mut self) -> Result<NodeId, SimError> {
        for _ in 0..10 {
            self.run_for(self.election_timeout())?;
            let leaders = self.connected_leaders();
            if let Some((term, ids)) = leaders.iter().find(|(_, ids)| ids.len() > 1) {
                return self.expectation(format!("term {term} has leaders {ids:?}"));
            }
            if let Some((_, ids)) = leaders.last_key_value() {
                return Ok(ids[0]);
            }
        }
        self.expectation("no leader elected".into())
    }

    /// Fails if any connected node believes it is the leader.
    pub fn check_no_leader(&self) -> Result<(), SimError> {
        match self.connected_leaders().into_iter().next() {
            Some((term, ids)) => {
                self.expectation(format!("expected no leader, but {ids:?} lead term {term}"))
            }
            None => Ok(()),
        }
    }

    /// The term every connected node agrees on.
    pub fn check_terms(&self) -> Result<Term, SimError> {
        let mut terms = self
            .ids()
            .filter(|&id| self.is_connected(id))
            .filter_map(|id| self.node(id).map(|r| r.term()));
        let first = terms.next().unwrap_or(0);
        match terms.find(|&t| t != first) {
            Some(other) => self.expectation(format!(
                "connected nodes disagree on term: {first} vs {other}"
            )),
            None => Ok(first),
        }
    }

    /// How many running nodes have applied `index`, and the command
    /// committed there.
    pub fn n_committed(&self, index: Index) -> (usize, Option<Bytes>) {
        let count = self
            .ids()
            .filter(|&id| self.is_up(id))
            .filter(|&id| self.state_machine(id).is_some_and(|sm| sm.applied >= index))
            .count();
        let data = self
            .checker
            .as_ref()
            .and_then(|c| c.committed_data(index))
            .cloned();
        (count, data)
    }

    /// Highest index committed anywhere (needs invariant checking on).
    pub fn max_committed(&self) -> Index {
        self.checker
            .as_ref()
            .map_or(0, InvariantChecker::max_committed)
    }

    /// The 6.824 `one()`: submits `cmd` to whichever node accepts it as
    /// leader, retrying for a while, and waits until at least `expected`
    /// nodes have applied it. With `retry`, a proposal that gets lost in a
    /// leader change is resubmitted. Returns the command's index.
    pub fn one(&mut self, cmd: Bytes, expected: usize, retry: bool) -> Result<Index, SimError> {
        let deadline = self.now + 10 * self.election_timeout();
        let mut start: NodeId = 1;
        while self.now < deadline {
            let mut proposed = None;
            for k in 0..self.nodes.len() as NodeId {
                let id = (start + k - 1) % self.nodes.len() as NodeId + 1;
                if !self.is_connected(id) {
                    continue;
                }
                if let Ok(index) = self.propose(id, cmd.clone())? {
                    proposed = Some(index);
                    start = id;
                    break;
                }
            }
            let Some(index) = proposed else {
                self.run_for(self.opts.tick_interval * 5)?;
                continue;
            };
            let committed = self.run_until(2 * self.election_timeout(), |c| {
                c.n_committed(index).0 >= expected
            })?;
            if committed {
                match self.n_committed(index).1 {
                    Some(data) if data == cmd => return Ok(index),
                    _ if !retry => {
                        return self
                            .expectation(format!("index {index} committed another command"));
                    }
                    _ => {}
                }
            } else if !retry {
                return self.expectation(format!(
                    "command at index {index} not applied by {expected} nodes"
                ));
            }
        }
        self.expectation(format!(
            "one() could not get a command committed on {expected} nodes"
        ))
    }

    /// Waits until `expected` nodes have applied `index`; returns the command
    /// there, or `None` if some node moved past `start_term` meanwhile (the
    /// entry may never commit).
    pub fn wait(
        &mut self,
        index: Index,
        expected: usize,
        start_term: Option<Term>,
    ) -> Result<Option<Bytes>, SimError> {
        let mut pause = self.opts.tick_interval;
        for _ in 0..30 {
            if self.n_committed(index).0 >= expected {
                break;
            }
            self.run_for(pause)?;
            pause = (pause * 2).min(self.election_timeout());
            if let Some(start) = start_term
                && self
                    .ids()
                    .filter_map(|id| self.node(id))
                    .any(|r| r.term() > start)
            {
                return Ok(None);
            }
        }
        let (count, data) = self.n_committed(index);
        if count < expected {
            return self.expectation(format!(
                "only {count} of {expected} nodes applied index {index}"
            ));
        }
        Ok(data)
    }

    /// The leader with the highest term among running nodes, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.ids()
            .filter_map(|id| self.node(id).map(|r| (r.term(), r.role(), id)))
            .filter(|(_, role, _)| *role == Role::Leader)
            .map(|(term, _, id)| (term, id))
            .max()
            .map(|(_, id)| id)
    }
}

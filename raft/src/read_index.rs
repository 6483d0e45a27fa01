//! Leader-side bookkeeping for linearizable reads without log writes
//! (ReadIndex, Raft thesis §6.4).
//!
//! A read is answered with the leader's commit index at the time it arrived,
//! but only after (1) the leader has committed an entry of its own term, so
//! its commit index is not stale, and (2) a majority has acknowledged a
//! heartbeat sent *after* the read arrived, proving no newer leader existed
//! at that moment. Reads are grouped into rounds, numbered by `seq`; a
//! heartbeat carries the latest round and a follower's answer confirms every
//! round up to it. Reads that arrive before the next heartbeat share a round.

use std::collections::{BTreeMap, VecDeque};

use crate::types::{Index, NodeId, ReadState};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct PendingRead {
    ctx: u64,
    index: Index,
    seq: u64,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct ReadIndexQueue {
    /// Latest round started.
    seq: u64,
    /// Latest round announced in a heartbeat.
    sent_seq: u64,
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before the leader committed in its own term.
    awaiting_commit: Vec<u64>,
    /// Highest round each follower has acknowledged.
    acked: BTreeMap<NodeId, u64>,
}

impl ReadIndexQueue {
    /// Forgets everything; pending reads are abandoned (leadership changed).
    pub(crate) fn reset(&mut self) {
        *self = ReadIndexQueue::default();
    }

    pub(crate) fn defer_until_commit(&mut self, ctx: u64) {
        self.awaiting_commit.push(ctx);
    }

    pub(crate) fn take_deferred(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.awaiting_commit)
    }

    /// Registers a read at `index`; it joins the round not yet announced.
    pub(crate) fn add(&mut self, ctx: u64, index: Index) {
        if self.seq == self.sent_seq {
            self.seq += 1;
        }
        self.pending.push_back(PendingRead {
            ctx,
            index,
            seq: self.seq,
        });
    }

    /// Whether a round is waiting for a heartbeat to announce it.
    pub(crate) fn needs_heartbeat(&self) -> bool {
        self.seq > self.sent_seq
    }

    /// The round to put in a heartbeat being sent now.
    pub(crate) fn announce(&mut self) -> u64 {
        self.sent_seq = self.seq;
        self.seq
    }

    pub(crate) fn ack(&mut self, from: NodeId, seq: u64) {
        // A follower cannot confirm a round that was never announced.
        if seq > self.sent_seq {
            return;
        }
        let acked = self.acked.entry(from).or_insert(0);
        *acked = (*acked).max(seq);
    }

    /// Moves every read confirmed by a majority (counting the leader) into
    /// `out`.
    pub(crate) fn release(&mut self, quorum: usize, out: &mut Vec<ReadState>) {
        while let Some(front) = self.pending.front() {
            let acks = 1 + self.acked.values().filter(|&&s| s >= front.seq).count();
            if acks < quorum {
                break;
            }
            out.push(ReadState {
                ctx: front.ctx,
                index: front.index,
            });
            self.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_a_majority_of_acks_after_they_arrive() {
        let mut q = ReadIndexQueue::default();
        q.add(1, 10);
        q.add(2, 10);
        assert!(q.needs_heartbeat());
        let seq = q.announce();
        q.add(3, 11);
        let mut out = Vec::new();
        q.release(2, &mut out);
        assert!(out.is_empty());
        q.ack(7, seq);
        q.release(2, &mut out);
        assert_eq!(out.len(), 2, "reads 1 and 2 share the announced round");
        q.ack(7, seq + 1);
        q.release(2, &mut out);
        assert_eq!(out.len(), 2, "an unannounced round cannot be confirmed");
        let seq = q.announce();
        q.ack(7, seq);
        q.release(2, &mut out);
        assert_eq!(out.last(), Some(&ReadState { ctx: 3, index: 11 }));
    }
}

//! What a leader knows about each follower's log, and how it paces
//! replication to it.
//!
//! A follower is in one of three states. **Probe**: the leader does not know
//! where the logs match, so it sends one AppendEntries at a time and waits
//! (or for the next heartbeat) before sending another. **Replicate**: the
//! follower is keeping up, so the leader pipelines appends optimistically, up
//! to `max_inflight_msgs` unacknowledged messages. **Snapshot**: the entries
//! the follower needs are compacted, a snapshot is on its way and nothing
//! else is sent until it is acknowledged (or presumed lost).

use std::collections::VecDeque;

use crate::types::Index;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ReplicationState {
    Probe,
    Replicate,
    Snapshot { index: Index },
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) matched: Index,
    /// Next index to send.
    pub(crate) next: Index,
    pub(crate) state: ReplicationState,
    /// In Probe: an append is outstanding, wait for an answer or heartbeat.
    pub(crate) probe_sent: bool,
    /// Last index of each unacknowledged append, oldest first (Replicate).
    pub(crate) inflight: VecDeque<Index>,
    /// Heard from since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// Ticks since a snapshot was sent; after an election timeout it is
    /// presumed lost and the follower is probed again.
    pub(crate) snapshot_ticks: u32,
    /// An acknowledgement arrived since the last heartbeat round.
    pub(crate) progressed: bool,
    /// Consecutive heartbeat rounds in which the follower was behind and
    /// acknowledged nothing: its appends were probably lost.
    pub(crate) stalled_rounds: u8,
    /// Something may be sendable; flushed when the next `Ready` is built so
    /// that many proposals and acknowledgements share one message.
    pub(crate) send_pending: bool,
}

impl Progress {
    pub(crate) fn new(next: Index) -> Self {
        Progress {
            matched: 0,
            next,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: true,
            snapshot_ticks: 0,
            progressed: false,
            stalled_rounds: 0,
            send_pending: true,
        }
    }

    /// Whether the leader must hold off sending appends.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() >= max_inflight,
            ReplicationState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ReplicationState::Probe;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.state = ReplicationState::Snapshot { index };
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot_ticks = 0;
    }

    /// Records that the follower's log matches up to `index`. Returns false
    /// for stale or duplicate acknowledgements.
    pub(crate) fn maybe_update(&mut self, index: Index) -> bool {
        if index <= self.matched {
            return false;
        }
        self.matched = index;
        self.progressed = true;
        self.next = self.next.max(index + 1);
        self.probe_sent = false;
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        true
    }

    /// Handles a rejection of the append that followed `rejected`; `probe`
    /// is where the leader's own log suggests probing next. Returns false if
    /// the rejection is stale.
    pub(crate) fn maybe_decrease(&mut self, rejected: Index, probe: Index) -> bool {
        match self.state {
            ReplicationState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                true
            }
            ReplicationState::Probe => {
                if self.next.checked_sub(1) != Some(rejected) {
                    return false;
                }
                self.next = rejected.min(probe + 1).max(self.matched + 1);
                self.probe_sent = false;
                true
            }
            ReplicationState::Snapshot { .. } => false,
        }
    }

    /// Called at every periodic heartbeat to track stalls.
    pub(crate) fn heartbeat_round(&mut self, last_index: Index) {
        if self.matched < last_index && !self.progressed {
            self.stalled_rounds = self.stalled_rounds.saturating_add(1);
        } else {
            self.stalled_rounds = 0;
        }
        self.progressed = false;
    }

    /// Records an append whose last entry is `last` (Replicate: optimistic).
    pub(crate) fn sent_entries(&mut self, last: Index) {
        match self.state {
            ReplicationState::Replicate => {
                self.next = last + 1;
                self.inflight.push_back(last);
            }
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Snapshot { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_append_at_a_time() {
        let mut pr = Progress::new(5);
        assert!(!pr.is_paused(4));
        pr.sent_entries(7);
        assert!(pr.is_paused(4));
        assert_eq!(pr.next, 5, "probing does not advance next optimistically");
    }

    #[test]
    fn replicate_pipelines_up_to_the_inflight_limit() {
        let mut pr = Progress::new(1);
        pr.become_replicate();
        pr.sent_entries(3);
        pr.sent_entries(6);
        assert_eq!(pr.next, 7);
        assert!(pr.is_paused(2));
        assert!(pr.maybe_update(3));
        assert!(!pr.is_paused(2));
        assert!(!pr.maybe_update(2), "stale ack");
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut pr = Progress::new(10);
        pr.matched = 4;
        assert!(!pr.maybe_decrease(5, 3), "probe was for 9, not 5");
        assert!(pr.maybe_decrease(9, 2));
        assert_eq!(pr.next, 5, "never below matched + 1");
    }
}

//! The leader's side: replicating the log (probe, pipeline, snapshot),
//! committing by counting replicas, heartbeats, check-quorum, ReadIndex and
//! leadership transfer (Raft §5.3, §5.4.2, thesis §3.10, §6.4).

use bytes::Bytes;
use tracing::debug;

use super::RawNode;
use crate::error::StepError;
use crate::message::{MessageBody, RejectHint};
use crate::progress::{Progress, ReplicationState};
use crate::types::{Index, NodeId, Role};

impl RawNode {
    pub(super) fn become_leader(&mut self) {
        debug!(id = self.config.id, term = self.term, "became leader");
        self.reset_volatile();
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        let next = self.log.last_index() + 1;
        for position in 0..self.config.voters.len() {
            if let Some(peer) = self.peer_at(position) {
                self.progress.insert(peer, Progress::new(next));
            }
        }
        // Commit something of our own term as soon as possible: only then
        // are earlier entries known committed, and only then can reads and
        // clients rely on our commit index.
        self.log.push(self.term, Bytes::new());
        self.append_pending = true;
        self.maybe_commit();
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed = self.heartbeat_elapsed.saturating_add(1);
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        let timeout = self.config.election_tick;
        for pr in self.progress.values_mut() {
            if let ReplicationState::Snapshot { .. } = pr.state {
                pr.snapshot_ticks += 1;
                if pr.snapshot_ticks >= timeout {
                    // No answer: presume the snapshot lost and probe again.
                    pr.become_probe();
                    pr.send_pending = true;
                }
            }
        }
        if self.election_elapsed >= timeout {
            self.election_elapsed = 0;
            if self.config.check_quorum {
                let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
                if active < self.config.quorum() {
                    debug!(
                        id = self.config.id,
                        term = self.term,
                        "lost contact with quorum"
                    );
                    self.become_follower(self.term, None);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
            }
            if let Some(to) = self.transferee.take() {
                debug!(id = self.config.id, to, "leadership transfer timed out");
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            let last_index = self.log.last_index();
            for pr in self.progress.values_mut() {
                pr.heartbeat_round(last_index);
            }
            self.broadcast_heartbeat();
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let read_seq = self.reads.announce();
        let committed = self.log.committed();
        for position in 0..self.config.voters.len() {
            let Some(peer) = self.peer_at(position) else {
                continue;
            };
            let matched = self.progress.get(&peer).map_or(0, |pr| pr.matched);
            // Never let a follower commit past what it is known to share
            // with us.
            let commit = committed.min(matched);
            self.send(peer, MessageBody::Heartbeat { commit, read_seq });
        }
    }

    /// Sends whatever each follower is due: batched new entries, probes
    /// after rejections, retries after lost snapshots.
    pub(super) fn flush_appends(&mut self) {
        let all = std::mem::take(&mut self.append_pending);
        for position in 0..self.config.voters.len() {
            let Some(peer) = self.peer_at(position) else {
                continue;
            };
            let due = self.progress.get_mut(&peer).is_some_and(|pr| {
                let due = all || pr.send_pending;
                pr.send_pending = false;
                due
            });
            if due {
                while self.send_append(peer, false) {}
            }
        }
    }

    /// Sends one AppendEntries (or InstallSnapshot) to `peer` if its
    /// progress allows. Returns whether more could be sent right away.
    pub(super) fn send_append(&mut self, peer: NodeId, allow_empty: bool) -> bool {
        let max_inflight = self.config.max_inflight_msgs;
        let Some(pr) = self.progress.get(&peer) else {
            return false;
        };
        if pr.is_paused(max_inflight) {
            return false;
        }
        let prev_index = pr.next - 1;
        let prev_term = self.log.term_at(prev_index);
        let entries = self
            .log
            .entries_for_send(pr.next, self.config.max_size_per_msg);
        let (Some(prev_term), Some(entries)) = (prev_term, entries) else {
            self.send_snapshot(peer);
            return false;
        };
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let Some(pr) = self.progress.get_mut(&peer) else {
            return false;
        };
        let more = match entries.last() {
            Some(last) => {
                pr.sent_entries(last.index);
                pr.state == ReplicationState::Replicate
            }
            None => {
                pr.probe_sent = pr.state == ReplicationState::Probe;
                false
            }
        };
        let commit = self.log.committed();
        self.send(
            peer,
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            },
        );
        more
    }

    fn send_snapshot(&mut self, peer: NodeId) {
        let snapshot = self.log.snapshot().clone();
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if snapshot.meta.index == 0 {
            // Nothing compacted, so the entries must exist: progress was
            // ahead of our log. Start over from what is known to match.
            pr.become_probe();
            return;
        }
        debug!(
            id = self.config.id,
            peer,
            index = snapshot.meta.index,
            "sending snapshot"
        );
        pr.become_snapshot(snapshot.meta.index);
        self.send(peer, MessageBody::InstallSnapshot { snapshot });
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: Option<RejectHint>,
    ) -> Result<(), StepError> {
        let last_index = self.log.last_index();
        if reject.is_none() && index > last_index {
            return Err(StepError::Malformed {
                from,
                kind: "AppendEntriesResponse",
                reason: "acknowledges entries beyond the leader's log",
            });
        }
        let probe = reject.map(|hint| self.log.find_conflict_by_term(hint.index, hint.term));
        let Some(pr) = self.progress.get_mut(&from) else {
            return Ok(());
        };
        pr.recent_active = true;
        if let Some(probe) = probe {
            if pr.maybe_decrease(index, probe) {
                debug!(
                    id = self.config.id,
                    from,
                    rejected = index,
                    next = pr.next,
                    "append rejected"
                );
                pr.send_pending = true;
            }
            return Ok(());
        }
        if !pr.maybe_update(index) {
            return Ok(());
        }
        match pr.state {
            ReplicationState::Probe => pr.become_replicate(),
            ReplicationState::Snapshot { index: snap } if pr.matched >= snap => {
                pr.become_replicate()
            }
            ReplicationState::Snapshot { .. } | ReplicationState::Replicate => {}
        }
        pr.send_pending = true;
        let caught_up = pr.matched == last_index;
        self.maybe_commit();
        if caught_up && self.transferee == Some(from) {
            self.send(from, MessageBody::TimeoutNow);
        }
        Ok(())
    }

    pub(super) fn on_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        let last_index = self.log.last_index();
        let resend = self.progress.get_mut(&from).is_some_and(|pr| {
            pr.recent_active = true;
            match pr.state {
                // The probe may have been lost: send it again.
                ReplicationState::Probe => {
                    pr.probe_sent = false;
                    pr.matched < last_index
                }
                // Appends went unanswered for two heartbeat rounds: presume
                // them lost and resend from what is known to match.
                ReplicationState::Replicate if pr.stalled_rounds >= 2 => {
                    pr.become_probe();
                    pr.stalled_rounds = 0;
                    true
                }
                ReplicationState::Replicate | ReplicationState::Snapshot { .. } => false,
            }
        });
        if resend {
            self.send_append(from, true);
        }
        self.reads.ack(from, read_seq);
        self.reads
            .release(self.config.quorum(), &mut self.read_states);
    }

    /// Commits the highest index stored on a majority, if it is from the
    /// current term (Figure 8: older entries commit only indirectly).
    pub(super) fn maybe_commit(&mut self) -> bool {
        let candidate = self.quorum_matched();
        if candidate <= self.log.committed() {
            return false;
        }
        let own_term = self.log.term_at(candidate) == Some(self.term);
        if !own_term && !self.bugs().commit_previous_term {
            return false;
        }
        let advanced = self.log.commit_to(candidate);
        if advanced {
            self.on_commit_advanced();
        }
        advanced
    }

    /// The highest index that a majority (counting ourselves) has stored.
    fn quorum_matched(&self) -> Index {
        let mut small = [0 as Index; 9];
        let mut large = Vec::new();
        let n = self.progress.len() + 1;
        let matched: &mut [Index] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        for (slot, pr) in matched.iter_mut().zip(self.progress.values()) {
            *slot = pr.matched;
        }
        // The driver persists our entries before sending the messages that
        // carry them, so no follower can acknowledge an entry we lack.
        matched[n - 1] = self.log.last_index();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[self.config.quorum() - 1]
    }

    fn on_commit_advanced(&mut self) {
        if !self.committed_in_current_term() {
            return;
        }
        let committed = self.log.committed();
        for ctx in self.reads.take_deferred() {
            self.reads.add(ctx, committed);
        }
        self.reads
            .release(self.config.quorum(), &mut self.read_states);
    }

    pub(super) fn start_transfer(&mut self, to: NodeId) {
        if to == self.config.id || self.transferee == Some(to) {
            return;
        }
        debug!(
            id = self.config.id,
            to,
            term = self.term,
            "transferring leadership"
        );
        self.transferee = Some(to);
        // The transfer must finish within one election timeout.
        self.election_elapsed = 0;
        let last_index = self.log.last_index();
        if let Some(pr) = self.progress.get_mut(&to) {
            if pr.matched == last_index {
                self.send(to, MessageBody::TimeoutNow);
            } else {
                pr.send_pending = true;
            }
        }
    }
}

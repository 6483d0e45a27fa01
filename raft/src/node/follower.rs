//! The follower's side of replication: appending the leader's entries after
//! the log-matching check, fast backtracking hints, commit propagation and
//! installing snapshots (Raft §5.3, §7).

use tracing::debug;

use super::RawNode;
use crate::message::{MessageBody, RejectHint};
use crate::types::{Entry, Index, NodeId, Snapshot, Term};

impl RawNode {
    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        mut entries: Vec<Entry>,
        commit: Index,
    ) {
        let committed = self.log.committed();
        if prev_index < committed {
            // Our committed prefix already matches any leader's log; say so
            // and let the leader continue from there.
            self.respond_append(from, committed, None);
            return;
        }
        if self.log.term_at(prev_index) != Some(prev_term) {
            let hint_index = self
                .log
                .find_conflict_by_term(prev_index.min(self.log.last_index()), prev_term);
            let hint = RejectHint {
                index: hint_index,
                term: self.log.term_at(hint_index).unwrap_or(0),
            };
            self.respond_append(from, prev_index, Some(hint));
            return;
        }
        let last_new = prev_index + entries.len() as Index;
        if let Some(position) = self.log.find_conflict(&entries) {
            let conflict = entries[position].index;
            if conflict <= committed {
                debug!(
                    id = self.config.id,
                    from, conflict, "append would overwrite committed entry"
                );
                return;
            }
            let mut fresh = entries.split_off(position);
            if self.bugs().no_truncate_on_conflict {
                let last = self.log.last_index();
                fresh.retain(|e| e.index > last);
            }
            self.log.truncate_and_append(fresh);
        }
        self.log.commit_to(commit.min(last_new));
        self.respond_append(from, last_new, None);
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, commit: Index, read_seq: u64) {
        // The leader caps `commit` at what we acknowledged, so it is within
        // our log; anything else cannot come from a correct leader.
        if commit <= self.log.last_index() {
            self.log.commit_to(commit);
        } else {
            debug!(
                id = self.config.id,
                from, commit, "heartbeat commit beyond our log ignored"
            );
        }
        self.send(from, MessageBody::HeartbeatResponse { read_seq });
    }

    pub(super) fn on_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let meta = snapshot.meta;
        let committed = self.log.committed();
        if meta.index <= committed {
            self.respond_append(from, committed, None);
            return;
        }
        if self.log.term_at(meta.index) == Some(meta.term) {
            // We already hold the entries: just learn that they committed.
            self.log.commit_to(meta.index);
        } else {
            debug!(
                id = self.config.id,
                from,
                index = meta.index,
                "installing snapshot"
            );
            self.log.install_snapshot(snapshot.clone());
            self.pending_snapshot = Some(snapshot);
        }
        self.respond_append(from, meta.index, None);
    }

    fn respond_append(&mut self, to: NodeId, index: Index, reject: Option<RejectHint>) {
        self.send(to, MessageBody::AppendEntriesResponse { index, reject });
    }
}

//! Elections: timers, pre-vote, vote granting and role changes (Raft §5.2,
//! thesis §9.6 for pre-vote, §6.2 for the check-quorum lease).

use tracing::debug;

use super::RawNode;
use crate::message::{Message, MessageBody};
use crate::types::{Index, NodeId, Role, Term};

/// How an election is started.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Campaign {
    /// Ask first whether we could win, without touching our term.
    PreVote,
    /// A real election in a new term.
    Election,
    /// A real election ordered by the leader (TimeoutNow): voters ignore
    /// their lease on that leader.
    Transfer,
}

impl RawNode {
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed >= self.randomized_timeout {
            self.start_election();
        }
    }

    pub(super) fn start_election(&mut self) {
        let kind = if self.config.pre_vote {
            Campaign::PreVote
        } else {
            Campaign::Election
        };
        self.campaign_now(kind);
    }

    pub(super) fn campaign_now(&mut self, kind: Campaign) {
        let request_term = match kind {
            Campaign::PreVote => {
                self.reset_volatile();
                self.role = Role::PreCandidate;
                self.leader = None;
                self.term + 1
            }
            Campaign::Election | Campaign::Transfer => {
                self.reset_volatile();
                self.term += 1;
                self.vote = Some(self.config.id);
                self.role = Role::Candidate;
                self.leader = None;
                self.term
            }
        };
        debug!(
            id = self.config.id,
            term = request_term,
            ?kind,
            "campaigning"
        );
        self.record_vote(self.config.id, true);
        if self.role != expected_role(kind) {
            // Won (or moved on) on our own vote alone: a single-voter group.
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for position in 0..self.config.voters.len() {
            let Some(peer) = self.peer_at(position) else {
                continue;
            };
            let body = match kind {
                Campaign::PreVote => MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                },
                Campaign::Election | Campaign::Transfer => MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                    transfer: kind == Campaign::Transfer,
                },
            };
            self.send_with_term(peer, request_term, body);
        }
    }

    /// Counts a vote and moves on if the outcome is decided.
    pub(super) fn record_vote(&mut self, from: NodeId, granted: bool) {
        self.votes.entry(from).or_insert(granted);
        let yes = self.votes.values().filter(|&&g| g).count();
        let no = self.votes.len() - yes;
        let quorum = self.config.quorum();
        if yes >= quorum {
            match self.role {
                Role::PreCandidate => self.campaign_now(Campaign::Election),
                Role::Candidate => self.become_leader(),
                Role::Follower | Role::Leader => {}
            }
        } else if no > self.config.voters.len() - quorum {
            debug!(id = self.config.id, term = self.term, "election lost");
            self.become_follower(self.term, None);
        }
    }

    /// A message from a newer term. Returns whether to go on processing it.
    pub(super) fn on_higher_term(&mut self, msg: &Message) -> bool {
        let vote_request = match &msg.body {
            MessageBody::PreVote { .. } => true,
            MessageBody::RequestVote { transfer, .. } => !transfer,
            _ => false,
        };
        if vote_request && self.in_lease() {
            // We hear from a live leader: the candidate is disrupting it.
            debug!(
                id = self.config.id,
                from = msg.from,
                "vote request ignored in lease"
            );
            return false;
        }
        match &msg.body {
            // A pre-vote does not change the voter's term, and a granted
            // pre-vote answer carries the term the pre-candidate asked for.
            MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { granted: true } => {}
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(msg.term, Some(msg.from));
            }
            _ => self.become_follower(msg.term, None),
        }
        true
    }

    /// A message from an older term: mostly ignored, but a stale leader or
    /// pre-candidate is told our term so it can catch up.
    pub(super) fn on_lower_term(&mut self, msg: &Message) {
        match msg.body {
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. }
                if self.config.check_quorum || self.config.pre_vote =>
            {
                // With pre-vote or check-quorum a node may sit at a higher
                // term without disrupting anyone; unless the old leader
                // learns that term, neither can make progress.
                self.send(
                    msg.from,
                    MessageBody::AppendEntriesResponse {
                        index: 0,
                        reject: None,
                    },
                );
            }
            MessageBody::PreVote { .. } => {
                self.send(msg.from, MessageBody::PreVoteResponse { granted: false });
            }
            _ => debug!(
                id = self.config.id,
                from = msg.from,
                kind = msg.body.kind(),
                "stale message dropped"
            ),
        }
    }

    pub(super) fn on_vote_request(
        &mut self,
        from: NodeId,
        msg_term: Term,
        last_log_index: Index,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && msg_term > self.term);
        let up_to_date = self.bugs().skip_up_to_date_check
            || self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = can_vote && up_to_date;
        if pre_vote {
            let term = if granted { msg_term } else { self.term };
            self.send_with_term(from, term, MessageBody::PreVoteResponse { granted });
        } else {
            if granted {
                self.vote = Some(from);
                self.election_elapsed = 0;
            }
            self.send(from, MessageBody::RequestVoteResponse { granted });
        }
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, msg_term: Term, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        // Grants echo the term we asked for; refusals carry the voter's term,
        // which here equals ours (higher ones already made us follow).
        let current = if granted {
            msg_term == self.term + 1
        } else {
            msg_term == self.term
        };
        if current {
            self.record_vote(from, granted);
        }
    }

    /// Whether we trust a live leader enough to refuse elections: with
    /// check-quorum, a follower that heard from its leader within an election
    /// timeout keeps it (and a leader keeps itself).
    fn in_lease(&self) -> bool {
        self.config.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.config.election_tick
    }

    /// Called for a leader's message in our term: follow it. Returns false if
    /// we are a leader ourselves, which only a faulty peer could cause.
    pub(super) fn accept_leader(&mut self, from: NodeId) -> bool {
        if self.role == Role::Leader {
            debug!(
                id = self.config.id,
                from,
                term = self.term,
                "second leader in our term"
            );
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.election_elapsed = 0;
        true
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term != self.term {
            self.term = term;
            self.vote = None;
        }
        self.reset_volatile();
        self.role = Role::Follower;
        self.leader = leader;
    }

    /// Clears everything tied to the current role and restarts the timers.
    pub(super) fn reset_volatile(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_timeout = self
            .rng
            .in_range(self.config.election_tick, self.config.election_tick);
        self.votes.clear();
        self.progress.clear();
        self.append_pending = false;
        self.transferee = None;
        self.reads.reset();
    }
}

fn expected_role(kind: Campaign) -> Role {
    match kind {
        Campaign::PreVote => Role::PreCandidate,
        Campaign::Election | Campaign::Transfer => Role::Candidate,
    }
}

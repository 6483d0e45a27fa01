//! `RawNode`: one member of a Raft group as a pure state machine.
//!
//! The public surface lives here; the protocol is split by concern:
//! `election` (timers, pre-vote, votes, role changes), `leader`
//! (replication, commit, ReadIndex, transfer), `follower` (accepting the
//! leader's appends, heartbeats and snapshots) and `validate` (refusing
//! messages no correct peer could send).

mod election;
mod follower;
mod leader;
mod validate;

pub(crate) use validate::MAX_INDEX_OR_TERM;

use std::collections::BTreeMap;

use bytes::Bytes;
use tracing::debug;

use crate::config::{Config, ConfigError};
use crate::error::{ProposeError, ReadIndexError, StepError, TransferError};
use crate::log::{CompactError, RaftLog, RestoreError};
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read_index::ReadIndexQueue;
use crate::ready::Ready;
use crate::rng::SplitMix64;
use crate::types::{Entry, HardState, Index, NodeId, ReadState, Role, Snapshot, SoftState, Term};

/// One Raft node, driven from outside: feed it time (`tick`), messages
/// (`step`) and requests (`propose`, `read_index`, `transfer_leader`), then
/// collect its output with `ready` and acknowledge it with `advance`.
///
/// The node never blocks, never reads a clock and never does IO. Its whole
/// state is a value: `Clone + Eq + Hash`, so a model checker can store and
/// compare nodes, and equal nodes given equal inputs produce equal outputs.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RawNode {
    config: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    rng: SplitMix64,
    /// Ticks since the last reset: for followers and candidates since they
    /// last heard from a leader or granted a vote, for leaders since the last
    /// check-quorum round.
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    /// This term's election timeout, in `[election_tick, 2 * election_tick)`.
    randomized_timeout: u32,
    /// Votes received in the current (pre-)election.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: replication state of every other voter.
    progress: BTreeMap<NodeId, Progress>,
    /// Leader only: new entries await a broadcast at the next `ready`.
    append_pending: bool,
    /// Leader only: the voter leadership is being handed to.
    transferee: Option<NodeId>,
    reads: ReadIndexQueue,
    msgs: Vec<Message>,
    read_states: Vec<ReadState>,
    pending_snapshot: Option<Snapshot>,
    /// What the driver was last told, to report only changes.
    reported_hard: HardState,
    reported_soft: SoftState,
}

impl RawNode {
    /// A brand-new node with an empty log, as a follower in term 0.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::from_parts(config, HardState::default(), RaftLog::new())
    }

    /// Restarts a node from what an earlier incarnation persisted: its last
    /// hard state, its latest snapshot and the log entries after it. Entries
    /// at or below the snapshot index are ignored. The application must
    /// restore its state machine from `snapshot`; committed entries after it
    /// are handed out again through `Ready::committed_entries`.
    pub fn restore(
        config: Config,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) -> Result<Self, RestoreError> {
        config.validate()?;
        let log = RaftLog::restore(snapshot, entries, hard_state.commit, hard_state.term)?;
        let hard_state = HardState {
            commit: log.committed(),
            ..hard_state
        };
        Ok(Self::from_parts(config, hard_state, log)?)
    }

    fn from_parts(config: Config, hard: HardState, log: RaftLog) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut config = config;
        config.voters.sort_unstable();
        let mut rng = SplitMix64::new(config.seed);
        let randomized_timeout = rng.in_range(config.election_tick, config.election_tick);
        let soft = SoftState {
            role: Role::Follower,
            leader: None,
        };
        Ok(RawNode {
            config,
            term: hard.term,
            vote: hard.vote,
            role: Role::Follower,
            leader: None,
            log,
            rng,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            append_pending: false,
            transferee: None,
            reads: ReadIndexQueue::default(),
            msgs: Vec::new(),
            read_states: Vec::new(),
            pending_snapshot: None,
            reported_hard: hard,
            reported_soft: soft,
        })
    }

    /// Advances the node's logical clock by one tick. Drive it from a timer;
    /// all timeouts in `Config` are counted in ticks.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Processes a message from a peer. Stale messages are dropped silently;
    /// messages no correct peer could send are refused with an error and
    /// leave the node unchanged.
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        if msg.to != self.config.id {
            return Err(StepError::WrongRecipient {
                id: self.config.id,
                to: msg.to,
            });
        }
        if msg.from == self.config.id || self.config.voters.binary_search(&msg.from).is_err() {
            return Err(StepError::UnknownPeer { from: msg.from });
        }
        validate::check(&msg)?;
        if msg.term > self.term {
            if !self.on_higher_term(&msg) {
                return Ok(());
            }
        } else if msg.term < self.term {
            self.on_lower_term(&msg);
            return Ok(());
        }
        self.dispatch(msg)
    }

    fn dispatch(&mut self, msg: Message) -> Result<(), StepError> {
        let Message {
            from, term, body, ..
        } = msg;
        match body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => self.on_vote_request(from, term, last_log_index, last_log_term, true),
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => self.on_vote_request(from, term, last_log_index, last_log_term, false),
            MessageBody::PreVoteResponse { granted } => {
                self.on_pre_vote_response(from, term, granted)
            }
            MessageBody::RequestVoteResponse { granted } => {
                if self.role == Role::Candidate {
                    self.record_vote(from, granted);
                }
            }
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if self.accept_leader(from) {
                    self.on_append(from, prev_index, prev_term, entries, commit);
                }
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                if self.accept_leader(from) {
                    self.on_heartbeat(from, commit, read_seq);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                if self.accept_leader(from) {
                    self.on_install_snapshot(from, snapshot);
                }
            }
            MessageBody::AppendEntriesResponse { index, reject } => {
                if self.role == Role::Leader {
                    return self.on_append_response(from, index, reject);
                }
            }
            MessageBody::HeartbeatResponse { read_seq } => {
                if self.role == Role::Leader {
                    self.on_heartbeat_response(from, read_seq);
                }
            }
            MessageBody::TimeoutNow => {
                if self.role == Role::Follower && self.leader == Some(from) {
                    debug!(
                        id = self.config.id,
                        term = self.term,
                        "leadership handed to us"
                    );
                    self.campaign_now(election::Campaign::Transfer);
                } else {
                    debug!(id = self.config.id, from, "ignoring TimeoutNow");
                }
            }
        }
        Ok(())
    }

    /// Appends `data` to the log if this node is the leader and returns the
    /// index it will have if committed. Proposals are batched: they leave
    /// the node in the next `Ready`, however many arrive before it.
    pub fn propose(&mut self, data: Bytes) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if let Some(to) = self.transferee {
            return Err(ProposeError::TransferInProgress { to });
        }
        if data.is_empty() {
            return Err(ProposeError::EmptyProposal);
        }
        let index = self.log.push(self.term, data);
        self.append_pending = true;
        if self.config.voters.len() == 1 {
            self.maybe_commit();
        }
        Ok(index)
    }

    /// Starts a linearizable read identified by `ctx`. When the leader has
    /// confirmed it still leads, `Ready::read_states` carries
    /// `ReadState { ctx, index }`: the read may be served once the state
    /// machine has applied `index`. Reads pending when the node loses
    /// leadership are dropped; the driver learns that from `soft_state` and
    /// should fail them.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        if self.role != Role::Leader {
            return Err(ReadIndexError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.committed_in_current_term() {
            self.reads.add(ctx, self.log.committed());
            self.reads
                .release(self.config.quorum(), &mut self.read_states);
        } else {
            self.reads.defer_until_commit(ctx);
        }
        Ok(())
    }

    /// Hands leadership to `to`: once its log is up to date the leader tells
    /// it to start an election at once, which it wins without waiting for
    /// timeouts. Proposals are refused meanwhile; the transfer is abandoned
    /// after an election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.config.voters.binary_search(&to).is_err() {
            return Err(TransferError::UnknownNode(to));
        }
        self.start_transfer(to);
        Ok(())
    }

    /// Starts an election now, as if the election timeout had fired (with a
    /// pre-vote round first when enabled). Does nothing on a leader.
    pub fn campaign(&mut self) {
        if self.role != Role::Leader {
            self.start_election();
        }
    }

    /// The application has snapshotted its state machine at `index` (which
    /// it has applied) into `data`. Raft keeps the snapshot to send to
    /// followers that fall behind and drops the log up to `index`. The driver
    /// persists its own snapshot; nothing about it appears in a `Ready`.
    pub fn compact(&mut self, index: Index, data: Bytes) -> Result<(), CompactError> {
        self.log.compact(index, data)
    }

    /// Whether `ready` would return something to do.
    pub fn has_ready(&self) -> bool {
        self.soft_state() != self.reported_soft
            || self.hard_state() != self.reported_hard
            || self.pending_snapshot.is_some()
            || self.log.has_unstable()
            || !self.msgs.is_empty()
            || self.log.has_committed_to_apply()
            || !self.read_states.is_empty()
            || (self.role == Role::Leader
                && (self.append_pending
                    || self.reads.needs_heartbeat()
                    || self.progress.values().any(|p| p.send_pending)))
    }

    /// Collects the work accumulated since the last call; see [`Ready`] for
    /// what the driver must do with it. Everything returned is considered
    /// handed out: a second call returns only newer work.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.flush_appends();
            if self.reads.needs_heartbeat() {
                self.broadcast_heartbeat();
            }
        }
        let soft = self.soft_state();
        let soft_state = (soft != self.reported_soft).then_some(soft);
        self.reported_soft = soft;
        let hard = self.hard_state();
        let hard_state = (hard != self.reported_hard).then_some(hard);
        self.reported_hard = hard;
        Ready {
            soft_state,
            hard_state,
            snapshot: self.pending_snapshot.take(),
            entries: self.log.take_unstable(),
            messages: std::mem::take(&mut self.msgs),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
        }
    }

    /// The driver has finished processing every `Ready` handed out so far:
    /// persisted, sent, and applied its committed entries.
    pub fn advance(&mut self) {
        self.log.advance_applied();
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration the node runs with (voters sorted).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whom this node voted for in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }

    /// The leader this node follows (itself when leader), if known.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader
    }

    /// Highest index known to be committed.
    pub fn commit_index(&self) -> Index {
        self.log.committed()
    }

    /// Highest index the application has acknowledged applying (`advance`).
    pub fn applied_index(&self) -> Index {
        self.log.applied()
    }

    /// Index of the first entry still in the log (after the snapshot).
    pub fn first_index(&self) -> Index {
        self.log.first_index()
    }

    /// Index of the last entry in the log (the snapshot's if it is empty).
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// Term of the last entry in the log.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// Term of the entry at `index`, if the log still holds it (or it is the
    /// snapshot's last entry).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term_at(index)
    }

    /// The entries after the snapshot, in order.
    pub fn log_entries(&self) -> &[Entry] {
        self.log.entries()
    }

    /// The latest snapshot (index 0 and empty data when there is none).
    pub fn snapshot(&self) -> &Snapshot {
        self.log.snapshot()
    }

    /// The durable part of the state, as it is now.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// Role and leader, as they are now.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader,
        }
    }

    /// The voter a leadership transfer is under way to, if any.
    pub fn transferee(&self) -> Option<NodeId> {
        self.transferee
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    /// The other voters, by position, so callers can mutate `self` while
    /// walking them without allocating.
    fn peer_at(&self, position: usize) -> Option<NodeId> {
        self.config
            .voters
            .get(position)
            .copied()
            .filter(|&v| v != self.config.id)
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term_at(self.log.committed()) == Some(self.term)
    }

    #[cfg(feature = "bug-injection")]
    fn bugs(&self) -> crate::config::Bugs {
        self.config.bugs
    }
}

/// Stands in for `Bugs` in normal builds, so the protocol code reads the
/// same either way and the compiler folds the checks away.
#[cfg(not(feature = "bug-injection"))]
#[derive(Clone, Copy)]
struct NoBugs {
    skip_up_to_date_check: bool,
    commit_previous_term: bool,
    no_truncate_on_conflict: bool,
}

#[cfg(not(feature = "bug-injection"))]
impl RawNode {
    fn bugs(&self) -> NoBugs {
        NoBugs {
            skip_up_to_date_check: false,
            commit_previous_term: false,
            no_truncate_on_conflict: false,
        }
    }
}

//! The driver: one task that owns the Raft node and the state machine and
//! moves everything between them, the network, the disk and the clients.
//!
//! It is generic over the service it replicates ([`StateMachine`]: the kv
//! store or the shard controller); Raft, storage, reads and writes work the
//! same for both.
//!
//! It waits on five things: the tick timer, messages from peers, client
//! requests, storage completions and shutdown. After handling whatever woke it
//! (draining everything already queued, so one `Ready` covers many inputs) it
//! processes the node's `Ready` in the order the Raft contract requires:
//!
//! 1. hand the durable part (snapshot, entries, term and vote) to the storage
//!    thread and wait, while stepping messages and taking proposals, which
//!    collect into the next `Ready` (group commit);
//! 2. once it is durable, send the messages;
//! 3. apply committed entries, answering the clients that proposed them;
//! 4. serve confirmed reads; call `advance`; maybe snapshot.
//!
//! A `Ready` with nothing to make durable skips step 1. The commit index alone
//! is not worth an fsync (Raft needs it durable for nothing); it is written
//! with the next batch that goes to disk anyway, and at shutdown.

use std::time::{Duration, Instant};

use anyhow::Context;
use raft::{Entry, HardState, Index, Message, RawNode, Ready, Role, SoftState};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};
use wire::{NodeRole, NodeStatus, Op, Reply};

use crate::failpoints::Failpoints;
use crate::members::Members;
use crate::peer::PeerRouter;
use crate::pending::{PendingReads, PendingWrites};
use crate::persist::{self, Done, Job, Persister};
use crate::responder::{ClientRequest, DriverRequest, Responder};
use crate::shutdown::{ShutdownRx, stopped};
use crate::state_machine::{Admission, StateMachine};

/// Inputs handled per wake-up before the `Ready` is processed, so a flood on
/// one channel cannot starve the others for long.
const MAX_DRAIN: usize = 512;
/// Bytes counted per log entry on top of its payload, for the snapshot
/// threshold.
const ENTRY_OVERHEAD: u64 = 24;

/// Everything the driver starts from.
pub(crate) struct DriverParts<S: StateMachine> {
    pub(crate) raw: RawNode,
    /// The service, restored from the latest snapshot.
    pub(crate) state: S,
    /// What the service needs to restore snapshots.
    pub(crate) env: S::Env,
    pub(crate) members: Members,
    pub(crate) persister: Persister,
    pub(crate) peers: PeerRouter,
    pub(crate) tick: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) snapshot_threshold: u64,
    pub(crate) max_frame: usize,
    pub(crate) failpoints: Failpoints,
}

/// The driver's state; see the module docs.
pub(crate) struct Driver<S: StateMachine> {
    raw: RawNode,
    state: S,
    env: S::Env,
    members: Members,
    persister: Persister,
    peers: PeerRouter,
    tick: Duration,
    request_timeout: Duration,
    snapshot_threshold: u64,
    /// Largest payload (key plus value) a write may carry: its entry must fit in one
    /// peer frame, or replication would stall on it forever.
    max_write_bytes: usize,
    /// The `Ready` whose durable part the storage thread is writing.
    in_flight: Option<Ready>,
    /// The hard state last handed to storage, and the newest one.
    stored_hard_state: HardState,
    hard_state: HardState,
    writes: PendingWrites,
    reads: PendingReads<S>,
    /// Index of the last entry applied to `state`.
    applied: Index,
    /// Approximate size of the log since the last snapshot.
    log_bytes: u64,
    /// A local snapshot is being written.
    snapshotting: bool,
    /// Deliberate bugs (none outside `failpoints` test builds).
    failpoints: Failpoints,
}

impl<S: StateMachine> Driver<S> {
    /// A driver for a node restored from storage.
    pub(crate) fn new(parts: DriverParts<S>) -> Self {
        let hard_state = parts.raw.hard_state();
        let log_bytes = entry_bytes(parts.raw.log_entries());
        let applied = parts.raw.applied_index();
        Driver {
            raw: parts.raw,
            state: parts.state,
            env: parts.env,
            members: parts.members,
            persister: parts.persister,
            peers: parts.peers,
            tick: parts.tick,
            request_timeout: parts.request_timeout,
            snapshot_threshold: parts.snapshot_threshold,
            max_write_bytes: parts.max_frame / 2,
            in_flight: None,
            stored_hard_state: hard_state,
            hard_state,
            writes: PendingWrites::default(),
            reads: PendingReads::default(),
            applied,
            log_bytes,
            snapshotting: false,
            failpoints: parts.failpoints,
        }
    }

    /// Runs until shutdown (`Ok`) or a storage failure (`Err`), after which
    /// the node must stop: what reached the disk is unknown.
    pub(crate) async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Message>,
        mut requests: mpsc::Receiver<DriverRequest>,
        mut shutdown: ShutdownRx,
    ) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                done = self.persister.next_done() => self.on_persisted(done)?,
                _ = ticker.tick() => self.on_tick(),
                Some(msg) = inbound.recv() => {
                    self.step(msg);
                    for _ in 0..MAX_DRAIN {
                        let Ok(msg) = inbound.try_recv() else { break };
                        self.step(msg);
                    }
                }
                Some(req) = requests.recv() => {
                    self.on_request(req);
                    for _ in 0..MAX_DRAIN {
                        let Ok(req) = requests.try_recv() else { break };
                        self.on_request(req);
                    }
                    // Gets that arrive after this point may follow writes
                    // acknowledged below: they need a newer read index.
                    self.reads.close();
                }
            }
            self.process_ready()?;
        }
        self.shut_down().await
    }

    fn step(&mut self, msg: Message) {
        let (from, kind) = (msg.from, msg.body.kind());
        if let Err(e) = self.raw.step(msg) {
            warn!(from, kind, error = %e, "refused a Raft message");
        }
    }

    fn on_tick(&mut self) {
        self.raw.tick();
        let now = Instant::now();
        self.writes.expire(now);
        self.reads.expire(now);
    }

    fn on_request(&mut self, req: DriverRequest) {
        let ClientRequest { op, responder } = match req {
            DriverRequest::Client(req) => req,
            DriverRequest::Propose { entry, responder } => {
                let bytes = entry.len();
                return self.propose(entry, None, bytes, responder);
            }
        };
        match op {
            Op::Status => responder.reply(Reply::Status(self.status())),
            Op::TransferLeader { to } => {
                let reply = match self.raw.transfer_leader(to) {
                    Ok(()) => {
                        info!(to, "leadership transfer requested");
                        Reply::Ok
                    }
                    Err(raft::TransferError::NotLeader { leader_hint }) => {
                        self.wrong_leader(leader_hint)
                    }
                    Err(e @ raft::TransferError::UnknownNode(_)) => Reply::BadRequest {
                        reason: e.to_string(),
                    },
                };
                responder.reply(reply);
            }
            op => match S::admit(op) {
                Admission::Write {
                    entry,
                    session,
                    payload_bytes,
                } => self.propose(entry, session, payload_bytes, responder),
                Admission::Read(query) => self.start_read(query, responder),
                Admission::Refuse(reply) => responder.reply(reply),
            },
        }
    }

    fn propose(
        &mut self,
        entry: bytes::Bytes,
        session: Option<(wire::ClientId, u64)>,
        payload_bytes: usize,
        responder: Responder,
    ) {
        if self.raw.role() != Role::Leader {
            return responder.reply(self.wrong_leader(self.raw.leader_id()));
        }
        if let Some(reply) = session.and_then(|(c, s)| self.state.duplicate(c, s)) {
            // A retry of a write already applied: the answer it had.
            return responder.reply(reply);
        }
        if payload_bytes > self.max_write_bytes {
            return responder.reply(Reply::BadRequest {
                reason: format!(
                    "a write may carry at most {} bytes of key and value (half of --max-frame); this one has {payload_bytes}",
                    self.max_write_bytes
                ),
            });
        }
        match self.raw.propose(entry) {
            Ok(index) => {
                let deadline = Instant::now() + self.request_timeout;
                self.writes
                    .push(index, self.raw.term(), deadline, responder);
            }
            Err(raft::ProposeError::NotLeader { leader_hint }) => {
                responder.reply(self.wrong_leader(leader_hint));
            }
            Err(raft::ProposeError::TransferInProgress { to }) => {
                responder.reply(self.wrong_leader(Some(to)));
            }
            Err(e @ raft::ProposeError::EmptyProposal) => responder.reply(Reply::BadRequest {
                reason: e.to_string(),
            }),
        }
    }

    fn start_read(&mut self, query: S::Query, responder: Responder) {
        if self.failpoints.stale_reads() {
            return responder.reply(self.state.read(&query));
        }
        let (ctx, query, responder) = match self.reads.join_open(query, responder) {
            Ok(()) => return,
            Err(new_round) => new_round,
        };
        match self.raw.read_index(ctx) {
            Ok(()) => {
                let deadline = Instant::now() + self.request_timeout;
                self.reads.open(ctx, deadline, query, responder);
            }
            Err(raft::ReadIndexError::NotLeader { leader_hint }) => {
                responder.reply(self.wrong_leader(leader_hint));
            }
        }
    }

    fn wrong_leader(&self, leader: Option<raft::NodeId>) -> Reply {
        // Pointing a client back at ourselves would only make it loop.
        let leader = leader.filter(|&l| l != self.raw.id());
        Reply::WrongLeader {
            leader: self.members.hint(leader),
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            node_id: self.raw.id(),
            role: match self.raw.role() {
                Role::Follower => NodeRole::Follower,
                Role::PreCandidate => NodeRole::PreCandidate,
                Role::Candidate => NodeRole::Candidate,
                Role::Leader => NodeRole::Leader,
            },
            term: self.raw.term(),
            leader: self.raw.leader_id(),
            commit_index: self.raw.commit_index(),
            applied_index: self.raw.applied_index(),
            last_log_index: self.raw.last_index(),
            snapshot_index: self.raw.snapshot().meta.index,
            members: self.members.all().to_vec(),
            shard_group: self.state.shard_group_status(),
        }
    }

    /// Takes `Ready`s while no write is in flight: each one either goes to
    /// disk (and finishes when it is durable) or finishes at once.
    fn process_ready(&mut self) -> anyhow::Result<()> {
        while self.in_flight.is_none() && self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // Their heartbeat has just been queued: later gets start a new round.
            self.reads.close();
            if let Some(hs) = rd.hard_state {
                self.hard_state = hs;
            }
            let vote_changed = (self.hard_state.term, self.hard_state.vote)
                != (self.stored_hard_state.term, self.stored_hard_state.vote);
            if rd.snapshot.is_none() && rd.entries.is_empty() && !vote_changed {
                self.finish_ready(rd)?;
                continue;
            }
            self.log_bytes += entry_bytes(&rd.entries);
            let hard_state = (self.hard_state != self.stored_hard_state)
                .then(|| persist::to_storage_hard_state(self.hard_state));
            self.stored_hard_state = self.hard_state;
            let job = Job::Ready {
                snapshot: rd.snapshot.as_ref().map(persist::to_storage_snapshot),
                entries: std::mem::take(&mut rd.entries)
                    .into_iter()
                    .map(persist::to_storage_entry)
                    .collect(),
                hard_state,
            };
            self.persister.submit(job).context("storage write failed")?;
            self.in_flight = Some(rd);
        }
        Ok(())
    }

    fn on_persisted(
        &mut self,
        done: Option<Result<Done, crate::storage::StorageError>>,
    ) -> anyhow::Result<()> {
        let done = done
            .context("the storage thread stopped")?
            .context("storage write failed; stopping the node (restart to recover from disk)")?;
        match done {
            Done::Ready => {
                if let Some(rd) = self.in_flight.take() {
                    self.finish_ready(rd)?;
                }
            }
            Done::LocalSnapshot { index } => {
                self.snapshotting = false;
                debug!(index, "snapshot durable, log compacted on disk");
            }
        }
        Ok(())
    }

    /// Steps 2–4 of the contract, once the durable part is on disk.
    fn finish_ready(&mut self, rd: Ready) -> anyhow::Result<()> {
        let Ready {
            soft_state,
            messages,
            snapshot,
            committed_entries,
            read_states,
            ..
        } = rd;
        for msg in messages {
            self.peers.send(msg);
        }
        if let Some(snapshot) = snapshot {
            self.state = S::restore(&snapshot.data, &self.env)
                .context("the leader's snapshot does not decode; refusing to go on")?;
            // A follower proposes nothing, but be sure: any proposal below
            // the snapshot can no longer be matched to its entry.
            self.writes.fail_all(&Reply::Timeout);
            self.log_bytes = 0;
            self.applied = snapshot.meta.index;
            info!(
                index = snapshot.meta.index,
                term = snapshot.meta.term,
                bytes = snapshot.data.len(),
                size = self.state.size(),
                service = S::SERVICE,
                "installed snapshot from the leader"
            );
        }
        for entry in committed_entries {
            let reply = (!entry.is_noop()).then(|| self.state.apply(&entry.data));
            self.writes.applied(entry.index, entry.term, reply.as_ref());
            self.applied = entry.index;
        }
        for rs in read_states {
            self.reads.confirmed(rs, self.applied, &self.state);
        }
        self.reads.serve_applied(self.applied, &self.state);
        // After applying: writes that committed just before a lost
        // leadership still get their real answer.
        if let Some(soft) = soft_state {
            self.on_soft_state(soft);
        }
        self.raw.advance();
        self.maybe_snapshot()
    }

    fn on_soft_state(&mut self, soft: SoftState) {
        info!(
            role = ?soft.role,
            leader = ?soft.leader,
            term = self.raw.term(),
            "raft role changed"
        );
        if soft.role != Role::Leader {
            // Proposed writes may still commit under the next leader: the
            // client must retry to learn (the session makes that safe).
            self.writes.fail_all(&Reply::Timeout);
            let hint = self.wrong_leader(soft.leader);
            self.reads.fail_unconfirmed(&hint);
        }
    }

    /// Snapshots the state machine once the log has grown past the threshold.
    fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        if self.snapshotting || self.log_bytes < self.snapshot_threshold {
            return Ok(());
        }
        let index = self.raw.applied_index();
        if index <= self.raw.snapshot().meta.index {
            return Ok(());
        }
        let image = self.state.snapshot();
        let bytes = image.len();
        if let Err(e) = self.raw.compact(index, image) {
            warn!(index, error = %e, "cannot compact the log");
            return Ok(());
        }
        let job = Job::LocalSnapshot(persist::to_storage_snapshot(self.raw.snapshot()));
        self.persister.submit(job).context("storage write failed")?;
        self.snapshotting = true;
        self.log_bytes = entry_bytes(self.raw.log_entries());
        info!(
            index,
            bytes,
            size = self.state.size(),
            "took a snapshot; compacting the log"
        );
        Ok(())
    }

    /// Finishes the write in flight (its clients were promised durability
    /// and deserve their answers), records the latest commit index, answers
    /// everything still pending `shutting_down` and closes the storage.
    async fn shut_down(mut self) -> anyhow::Result<()> {
        info!(
            pending_writes = self.writes.len(),
            pending_reads = self.reads.rounds(),
            "shutting down"
        );
        while self.in_flight.is_some() {
            let done = self.persister.next_done().await;
            self.on_persisted(done)?;
        }
        if self.hard_state != self.stored_hard_state {
            let job = Job::Ready {
                snapshot: None,
                entries: Vec::new(),
                hard_state: Some(persist::to_storage_hard_state(self.hard_state)),
            };
            self.persister.submit(job).context("storage write failed")?;
        }
        self.writes.fail_all(&Reply::ShuttingDown);
        self.reads.fail_all(&Reply::ShuttingDown);
        // Closing the link queues makes each link say goodbye.
        drop(self.peers);
        let persister = self.persister;
        tokio::task::spawn_blocking(move || persister.close())
            .await
            .context("closing the storage")?;
        Ok(())
    }
}

fn entry_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| e.data.len() as u64 + ENTRY_OVERHEAD)
        .sum()
}

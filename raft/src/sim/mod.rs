//! A deterministic, in-process simulator of a Raft cluster.
//!
//! Every node is a [`RawNode`] driven exactly as a real server drives it
//! (persist, send, apply, advance), but the disk is a [`DurableState`] in
//! memory and the network is a seeded priority queue of messages that can be
//! delayed, reordered, duplicated, lost or cut by partitions. Nodes can crash
//! (everything not persisted is lost) and restart from what they persisted.
//! Time is simulated: nodes tick every `tick_interval` time units and
//! messages take `NetConfig` delays, so a run is a pure function of its
//! options and seed — a failing seed replays exactly.
//!
//! With `check_invariants` on (the default), every `Ready` is checked
//! against Raft's safety properties (see [`Violation`]) and the first
//! violation ends the run with [`SimError::Safety`].
//!
//! The helpers `check_one_leader`, `one`, `n_committed` and friends follow
//! the MIT 6.824 Raft tester, so scenario tests read like the paper's.
//!
//! ```
//! use bytes::Bytes;
//! use raft::sim::{Cluster, SimOptions};
//!
//! let mut cluster = Cluster::new(SimOptions::new(3, 42));
//! let leader = cluster.check_one_leader()?;
//! let index = cluster.one(Bytes::from_static(b"x"), 3, false)?;
//! assert_eq!(index, 2, "index 1 holds the leader's no-op");
//! cluster.disconnect(leader);
//! let new_leader = cluster.check_one_leader()?;
//! assert_ne!(leader, new_leader);
//! # Ok::<(), raft::sim::SimError>(())
//! ```

mod app;
mod invariants;
mod network;
mod tester;

use bytes::Bytes;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use thiserror::Error;

pub use app::{DurableState, StateMachine};
use invariants::InvariantChecker;
pub use invariants::Violation;
use network::Network;
pub use network::{NetConfig, NetStats};

use crate::config::Config;
use crate::error::{ProposeError, ReadIndexError, TransferError};
use crate::log::RestoreError;
use crate::node::RawNode;
use crate::rng::SplitMix64;
use crate::types::{Index, NodeId, ReadState};

/// How to build and run a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Number of nodes; ids are `1..=nodes`.
    pub nodes: usize,
    /// Seed for the network and the nodes' own seeds.
    pub seed: u64,
    /// Template for every node's configuration; `id`, `voters` and `seed`
    /// are filled in per node (and per restart).
    pub node_config: Config,
    /// Simulated time between two ticks of one node.
    pub tick_interval: u64,
    /// Network behaviour.
    pub net: NetConfig,
    /// Compact a node's log once it has applied this many entries past its
    /// last snapshot, as a service would.
    pub snapshot_every: Option<u64>,
    /// Check the safety invariants on every `Ready` (costs time and memory
    /// proportional to the log; turn off only for benchmarks).
    pub check_invariants: bool,
}

impl SimOptions {
    /// `nodes` nodes with default Raft settings, a reliable network, ticks
    /// every 10 time units, no compaction, invariants checked.
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimOptions {
            nodes,
            seed,
            node_config: Config::new(1, vec![1]),
            tick_interval: 10,
            net: NetConfig::reliable(),
            snapshot_every: None,
            check_invariants: true,
        }
    }
}

/// Why a simulation step or a test helper failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    /// A safety property broke.
    #[error("safety violation at t={at}: {violation}")]
    Safety {
        /// Simulated time.
        at: u64,
        /// What broke.
        violation: Violation,
    },
    /// Something that should have happened did not, or the cluster is in a
    /// state a test helper refuses (e.g. nodes disagree on the term).
    #[error("at t={at}: {what}")]
    Expectation {
        /// Simulated time.
        at: u64,
        /// What was expected.
        what: String,
    },
    /// The id is not part of the cluster.
    #[error("node {0} is not part of the cluster")]
    NoSuchNode(NodeId),
    /// A node could not restart from its durable state.
    #[error("node {id} failed to restart: {source}")]
    Restart {
        /// The node.
        id: NodeId,
        /// Why.
        source: RestoreError,
    },
    /// A node's configuration was refused.
    #[error("invalid node configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// One simulated server.
struct SimNode {
    raft: Option<RawNode>,
    durable: DurableState,
    app: StateMachine,
    next_tick: u64,
    incarnation: u64,
    reads: Vec<ReadState>,
}

/// A simulated Raft cluster; see the module documentation.
pub struct Cluster {
    opts: SimOptions,
    now: u64,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    net: Network,
    checker: Option<InvariantChecker>,
    failure: Option<SimError>,
    step_errors: u64,
}

impl Cluster {
    /// Builds and starts a cluster. Panics only if `opts.node_config` is
    /// invalid apart from the per-node fields (use [`Cluster::try_new`]).
    pub fn new(opts: SimOptions) -> Self {
        match Self::try_new(opts) {
            Ok(cluster) => cluster,
            Err(e) => panic!("invalid simulator options: {e}"),
        }
    }

    /// Builds and starts a cluster, refusing invalid options.
    pub fn try_new(opts: SimOptions) -> Result<Self, SimError> {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut nodes = Vec::with_capacity(opts.nodes);
        for id in 1..=opts.nodes as NodeId {
            let config = node_config(&opts, id, 0);
            let phase = rng.random_range(0..opts.tick_interval.max(1));
            nodes.push(SimNode {
                raft: Some(RawNode::new(config)?),
                durable: DurableState::default(),
                app: StateMachine::default(),
                next_tick: phase + 1,
                incarnation: 0,
                reads: Vec::new(),
            });
        }
        Ok(Cluster {
            net: Network::new(opts.net.clone()),
            checker: opts.check_invariants.then(InvariantChecker::default),
            opts,
            now: 0,
            rng,
            nodes,
            failure: None,
            step_errors: 0,
        })
    }

    /// Node ids, `1..=n`.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        1..=self.nodes.len() as NodeId
    }

    /// Current simulated time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The options the cluster was built with.
    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    /// An upper bound on one election timeout, in time units: a good unit
    /// for "wait until the cluster reacts".
    pub fn election_timeout(&self) -> u64 {
        2 * u64::from(self.opts.node_config.election_tick) * self.opts.tick_interval
    }

    /// The node's Raft state, unless it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&RawNode> {
        self.slot(id).ok()?.raft.as_ref()
    }

    /// The node's state machine (reset by a crash until restart).
    pub fn state_machine(&self, id: NodeId) -> Option<&StateMachine> {
        Some(&self.slot(id).ok()?.app)
    }

    /// What the node has persisted.
    pub fn durable(&self, id: NodeId) -> Option<&DurableState> {
        Some(&self.slot(id).ok()?.durable)
    }

    /// Reads confirmed at this node so far.
    pub fn completed_reads(&self, id: NodeId) -> &[ReadState] {
        self.slot(id).map_or(&[], |n| &n.reads)
    }

    /// Network traffic so far.
    pub fn net_stats(&self) -> &NetStats {
        &self.net.stats
    }

    /// Messages sent but not yet delivered or dropped.
    pub fn messages_in_flight(&self) -> usize {
        self.net.in_flight()
    }

    /// Messages a node refused as malformed so far (should stay 0).
    pub fn step_errors(&self) -> u64 {
        self.step_errors
    }

    /// Replaces the network behaviour from now on.
    pub fn set_net(&mut self, net: NetConfig) {
        self.net.config = net;
    }

    /// Whether the node is running.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// Whether the node is running and not isolated.
    pub fn is_connected(&self, id: NodeId) -> bool {
        self.is_up(id) && !self.net.is_isolated(id)
    }

    /// Cuts the node off from every other node.
    pub fn disconnect(&mut self, id: NodeId) {
        self.net.isolate(id, true);
    }

    /// Undoes `disconnect`.
    pub fn connect(&mut self, id: NodeId) {
        self.net.isolate(id, false);
    }

    /// Cuts (or restores) the links between `a` and `b`, both ways.
    pub fn set_link(&mut self, a: NodeId, b: NodeId, up: bool) {
        self.net.set_link(a, b, up);
        self.net.set_link(b, a, up);
    }

    /// Splits the cluster: nodes talk only to nodes in the same group.
    /// Nodes in no group are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.net.heal();
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        for a in self.ids() {
            for b in self.ids() {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.net.set_link(a, b, false);
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Stops the node; only its durable state survives.
    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        let node = self.slot_mut(id)?;
        node.raft = None;
        node.app = StateMachine::default();
        Ok(())
    }

    /// Starts a crashed node again from its durable state (does nothing to
    /// a running node).
    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        if self.is_up(id) {
            return Ok(());
        }
        let incarnation = self.slot(id)?.incarnation + 1;
        let config = node_config(&self.opts, id, incarnation);
        let phase = self.rng.random_range(0..self.opts.tick_interval.max(1));
        let next_tick = self.now + phase + 1;
        let node = self.slot_mut(id)?;
        let d = &node.durable;
        let raft = RawNode::restore(config, d.hard_state, d.snapshot.clone(), d.entries.clone())
            .map_err(|source| SimError::Restart { id, source })?;
        let Some(app) = StateMachine::from_snapshot(d.snapshot.as_ref()) else {
            return Err(SimError::Expectation {
                at: self.now,
                what: format!("node {id} persisted a snapshot this simulator cannot read"),
            });
        };
        node.app = app;
        node.incarnation = incarnation;
        node.next_tick = next_tick;
        if let Some(checker) = &mut self.checker {
            checker.on_restart(&raft);
            if let Err(violation) = checker.on_snapshot_restored(id, &app) {
                return self.fail_safety(violation);
            }
        }
        self.slot_mut(id)?.raft = Some(raft);
        self.process_ready(id)
    }

    /// Crashes and restarts the node at once.
    pub fn crash_and_restart(&mut self, id: NodeId) -> Result<(), SimError> {
        self.crash(id)?;
        self.restart(id)
    }

    /// Proposes `data` at node `id`.
    pub fn propose(
        &mut self,
        id: NodeId,
        data: Bytes,
    ) -> Result<Result<Index, ProposeError>, SimError> {
        let Some(raft) = self.slot_mut(id)?.raft.as_mut() else {
            return Ok(Err(ProposeError::NotLeader { leader_hint: None }));
        };
        let result = raft.propose(data);
        self.process_ready(id)?;
        Ok(result)
    }

    /// Proposes every command in `cmds` at node `id` and only then lets it
    /// produce a `Ready`, as a server does with requests that arrive
    /// together: they share append messages and one persistence step.
    /// Returns the index of the last one, or the first refusal.
    pub fn propose_batch(
        &mut self,
        id: NodeId,
        cmds: impl IntoIterator<Item = Bytes>,
    ) -> Result<Result<Index, ProposeError>, SimError> {
        let Some(raft) = self.slot_mut(id)?.raft.as_mut() else {
            return Ok(Err(ProposeError::NotLeader { leader_hint: None }));
        };
        let mut result = Err(ProposeError::EmptyProposal);
        for cmd in cmds {
            result = raft.propose(cmd);
            if result.is_err() {
                break;
            }
        }
        self.process_ready(id)?;
        Ok(result)
    }

    /// Asks node `id` for a linearizable read; completed reads show up in
    /// [`Cluster::completed_reads`].
    pub fn read_index(
        &mut self,
        id: NodeId,
        ctx: u64,
    ) -> Result<Result<(), ReadIndexError>, SimError> {
        self.read_index_batch(id, [ctx])
    }

    /// Starts several reads at node `id` before letting it produce a
    /// `Ready`, so they share one confirmation round. Stops at the first
    /// refusal.
    pub fn read_index_batch(
        &mut self,
        id: NodeId,
        ctxs: impl IntoIterator<Item = u64>,
    ) -> Result<Result<(), ReadIndexError>, SimError> {
        let position = self.position(id)?;
        let Some(raft) = self.nodes[position].raft.as_mut() else {
            return Ok(Err(ReadIndexError::NotLeader { leader_hint: None }));
        };
        let mut result = Ok(());
        for ctx in ctxs {
            result = raft.read_index(ctx);
            if result.is_err() {
                break;
            }
            if let Some(checker) = &mut self.checker {
                checker.on_read_requested(id, ctx);
            }
        }
        self.process_ready(id)?;
        Ok(result)
    }

    /// Asks leader `id` to hand leadership to `to`.
    pub fn transfer_leader(
        &mut self,
        id: NodeId,
        to: NodeId,
    ) -> Result<Result<(), TransferError>, SimError> {
        let Some(raft) = self.slot_mut(id)?.raft.as_mut() else {
            return Ok(Err(TransferError::NotLeader { leader_hint: None }));
        };
        let result = raft.transfer_leader(to);
        self.process_ready(id)?;
        Ok(result)
    }

    /// Runs one event (a message delivery or a tick). Returns false when
    /// nothing is left to run (every node crashed and no message in flight).
    pub fn step(&mut self) -> Result<bool, SimError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let next_tick = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.raft.is_some())
            .map(|(i, n)| (n.next_tick, i))
            .min();
        let deliver_first = match (self.net.next_at(), next_tick) {
            (None, None) => return Ok(false),
            (Some(at), Some((tick_at, _))) => at <= tick_at,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if deliver_first {
            if let Some((at, msg)) = self.net.pop() {
                self.now = self.now.max(at);
                if let Some(msg) = msg {
                    self.deliver(msg)?;
                }
            }
        } else if let Some((at, position)) = next_tick {
            self.now = self.now.max(at);
            let node = &mut self.nodes[position];
            node.next_tick = at + self.opts.tick_interval.max(1);
            if let Some(raft) = node.raft.as_mut() {
                raft.tick();
            }
            self.process_ready(position as NodeId + 1)?;
        }
        Ok(true)
    }

    /// Runs every event up to `duration` time units from now.
    pub fn run_for(&mut self, duration: u64) -> Result<(), SimError> {
        let until = self.now + duration;
        while self.next_event_at().is_some_and(|t| t <= until) {
            self.step()?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Runs until `done` holds (checked after every event) or `timeout`
    /// time units pass. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        timeout: u64,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Result<bool, SimError> {
        let until = self.now + timeout;
        loop {
            if done(self) {
                return Ok(true);
            }
            match self.next_event_at() {
                Some(t) if t <= until => {
                    self.step()?;
                }
                _ => {
                    self.now = self.now.max(until);
                    return Ok(done(self));
                }
            }
        }
    }

    fn next_event_at(&self) -> Option<u64> {
        let tick = self
            .nodes
            .iter()
            .filter(|n| n.raft.is_some())
            .map(|n| n.next_tick)
            .min();
        match (self.net.next_at(), tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deliver(&mut self, msg: crate::message::Message) -> Result<(), SimError> {
        let to = msg.to;
        let Ok(position) = self.position(to) else {
            return Ok(());
        };
        let Some(raft) = self.nodes[position].raft.as_mut() else {
            self.net.stats.dropped += 1;
            return Ok(());
        };
        self.net.stats.delivered += 1;
        if raft.step(msg).is_err() {
            self.step_errors += 1;
        }
        self.process_ready(to)
    }

    /// Drives the node's `Ready` loop exactly as a server would.
    fn process_ready(&mut self, id: NodeId) -> Result<(), SimError> {
        let position = self.position(id)?;
        loop {
            let node = &mut self.nodes[position];
            let Some(raft) = node.raft.as_mut() else {
                return Ok(());
            };
            if !raft.has_ready() {
                return Ok(());
            }
            let rd = raft.ready();
            if let Some(checker) = &mut self.checker
                && let Err(violation) = checker.on_ready(raft, &rd)
            {
                return self.fail_safety(violation);
            }
            // 1. Persist.
            node.durable
                .persist(rd.snapshot.as_ref(), rd.entries, rd.hard_state);
            // 2. Send.
            for msg in rd.messages {
                self.net.send(self.now, msg, &mut self.rng);
            }
            // 3. Apply.
            let node = &mut self.nodes[position];
            if let Some(snapshot) = &rd.snapshot {
                let Some(app) = StateMachine::from_snapshot(Some(snapshot)) else {
                    return self.fail(format!("node {id} received an unreadable snapshot"));
                };
                node.app = app;
                if let Some(checker) = &mut self.checker
                    && let Err(violation) = checker.on_snapshot_restored(id, &app)
                {
                    return self.fail_safety(violation);
                }
            }
            for entry in &rd.committed_entries {
                let before = node.app;
                if !node.app.apply(entry) && self.checker.is_none() {
                    return self.fail(format!(
                        "node {id} was handed entry {} after applying {}",
                        entry.index, before.applied
                    ));
                }
                if let Some(checker) = &mut self.checker
                    && let Err(violation) = checker.on_apply(id, &before, entry, &node.app)
                {
                    return self.fail_safety(violation);
                }
            }
            // 4. Serve reads (everything up to the commit index is applied).
            node.reads.extend(rd.read_states);
            // 5. Advance, then compact like a service taking snapshots.
            let Some(raft) = node.raft.as_mut() else {
                return Ok(());
            };
            raft.advance();
            if let Some(every) = self.opts.snapshot_every {
                let applied = node.app.applied;
                if applied >= raft.snapshot().meta.index + every.max(1)
                    && raft.compact(applied, node.app.snapshot_data()).is_ok()
                {
                    node.durable.compact(raft.snapshot().clone());
                }
            }
        }
    }

    fn fail_safety<T>(&mut self, violation: Violation) -> Result<T, SimError> {
        let err = SimError::Safety {
            at: self.now,
            violation,
        };
        self.failure = Some(err.clone());
        Err(err)
    }

    fn fail<T>(&mut self, what: String) -> Result<T, SimError> {
        let err = SimError::Expectation { at: self.now, what };
        self.failure = Some(err.clone());
        Err(err)
    }

    pub(crate) fn expectation<T>(&self, what: String) -> Result<T, SimError> {
        Err(SimError::Expectation { at: self.now, what })
    }

    fn position(&self, id: NodeId) -> Result<usize, SimError> {
        id.checked_sub(1)
            .map(|p| p as usize)
            .filter(|&p| p < self.nodes.len())
            .ok_or(SimError::NoSuchNode(id))
    }

    fn slot(&self, id: NodeId) -> Result<&SimNode, SimError> {
        Ok(&self.nodes[self.position(id)?])
    }

    fn slot_mut(&mut self, id: NodeId) -> Result<&mut SimNode, SimError> {
        let position = self.position(id)?;
        Ok(&mut self.nodes[position])
    }
}

fn node_config(opts: &SimOptions, id: NodeId, incarnation: u64) -> Config {
    let mut config = opts.node_config.clone();
    config.id = id;
    config.voters = (1..=opts.nodes as NodeId).collect();
    config.seed = splitmix(opts.seed ^ splitmix(id) ^ splitmix(incarnation.wrapping_add(0x5151)));
    config
}

fn splitmix(x: u64) -> u64 {
    SplitMix64::new(x).next_u64()
}

//! A server: the real `raft::RawNode`, driven the way `kvd` drives it, with
//! a one-register state machine on top.
//!
//! Every handler (a delivered message or a timeout) feeds the node one
//! input and then drains its `Ready`s in the contract's order: persist,
//! send, apply, answer reads, `advance`. A handler is atomic in the model,
//! so "persisted before sent" holds by construction: the storage saved at
//! the end of the handler is exactly what the node handed out to persist.
//!
//! Besides the node and the register, a server carries [`Ghost`] state:
//! history that the properties need but no real server keeps (which terms
//! it led, which entries it learned committed and when, what it applied).
//! Ghost state is saved with the storage so that it survives crashes.

use bytes::Bytes;
use raft::{Config, Entry, HardState, Index, NodeId, RawNode, Role, Term};
use stateright::actor::{Id, Out, model_timeout};

use super::actor::{RaftActor, Timer};
use super::message::{ClientOp, Command, Msg, RaftMsg};

/// The model's stand-in for one `kvd` process.
#[derive(Clone, Debug)]
pub struct ServerActor {
    /// This server's configuration (id, voters, seed filled in).
    config: Config,
    /// The node a fresh server starts as, built (and validated) once.
    fresh: RawNode,
    /// Number of servers: client actors come after them.
    servers: usize,
    /// Whether to save storage; only needed when crashes are modelled.
    persist: bool,
}

/// A server's whole state, as the model checker stores and compares it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ServerState {
    /// The Raft node.
    pub node: RawNode,
    /// The replicated register, as of the node's applied index.
    pub register: Option<u8>,
    /// History kept for the properties only.
    pub ghost: Ghost,
}

/// What a server persists: the hard state and log the node handed out in
/// its `Ready`s, plus the ghost history (which must outlive crashes).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ServerStorage {
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// The whole log (the model never compacts).
    pub entries: Vec<Entry>,
    /// Ghost history; not something a real server writes to disk.
    pub ghost: Ghost,
}

/// An entry, identified by what matters to the state machine.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct EntryId {
    /// Term of the leader that created it.
    pub term: Term,
    /// Its command.
    pub data: Bytes,
}

/// That a server learned an index was committed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CommitRecord {
    /// Term of the entry the server held at that index.
    pub entry_term: Term,
    /// The server's term when it learned of the commit: the entry was
    /// committed in this term or an earlier one.
    pub learned_in: Term,
}

/// History the properties need, kept beside the real state.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Ghost {
    /// Elections this server's clock has started (a pre-vote round counts);
    /// bounded by `Bounds::max_elections`.
    pub elections: u8,
    /// Heartbeat intervals this server's clock has run as leader; bounded
    /// by `Bounds::max_heartbeats`.
    pub heartbeats: u8,
    /// Bit `t` is set if this server has been leader in term `t`.
    pub led_terms: u64,
    /// Position `i` records what this server first learned about index
    /// `i + 1` being committed.
    pub committed: Vec<CommitRecord>,
    /// Position `i` is the entry this server first applied at index `i + 1`.
    pub applied: Vec<EntryId>,
    /// As leader, this server once removed or replaced an entry of its own
    /// log within one term.
    pub leader_overwrote: bool,
    /// This server applied an entry at an index where it had applied a
    /// different one before (possible only across a restart), or applied
    /// out of order.
    pub inconsistent_apply: bool,
    /// The node refused an input the driver gave it, or handed the driver
    /// something it cannot have produced in this model (a snapshot).
    pub input_refused: bool,
}

impl Ghost {
    /// Whether this server has been leader in `term`.
    pub fn led(&self, term: Term) -> bool {
        term < 64 && self.led_terms & (1 << term) != 0
    }
}

/// The raft id of the server actor with stateright id `id`.
pub(crate) fn node_id(id: Id) -> NodeId {
    usize::from(id) as NodeId + 1
}

/// The stateright id of the server with raft id `node`.
pub(crate) fn server_id(node: NodeId) -> Id {
    Id::from(node.saturating_sub(1) as usize)
}

/// `read_index` context for a client's read.
fn read_ctx(client: u8, req: u8) -> u64 {
    (u64::from(client) << 8) | u64::from(req)
}

fn read_ctx_parts(ctx: u64) -> (u8, u8) {
    ((ctx >> 8) as u8, ctx as u8)
}

impl ServerActor {
    /// A server with this (validated) configuration; `persist` saves
    /// storage after every handler so that crashes can be modelled.
    pub(crate) fn new(
        config: Config,
        servers: usize,
        persist: bool,
    ) -> Result<Self, raft::ConfigError> {
        let fresh = RawNode::new(config.clone())?;
        Ok(ServerActor {
            config,
            fresh,
            servers,
            persist,
        })
    }

    fn client_id(&self, client: u8) -> Id {
        Id::from(self.servers + usize::from(client))
    }

    /// Starts fresh, or restarts from storage after a crash.
    pub(crate) fn on_start(
        &self,
        storage: Option<&ServerStorage>,
        out: &mut Out<RaftActor>,
    ) -> ServerState {
        out.set_timer(Timer::Clock, model_timeout());
        let Some(storage) = storage else {
            return ServerState {
                node: self.fresh.clone(),
                register: None,
                ghost: Ghost::default(),
            };
        };
        let mut ghost = storage.ghost.clone();
        let node = RawNode::restore(
            self.config.clone(),
            storage.hard_state,
            None,
            storage.entries.clone(),
        )
        .unwrap_or_else(|_| {
            ghost.input_refused = true;
            self.fresh.clone()
        });
        let mut state = ServerState {
            node,
            register: None,
            ghost,
        };
        // Committed entries are handed out again: rebuild the register.
        self.drive(&mut state, out);
        state
    }

    /// A message arrived. Returns the new state, or `None` if the server
    /// leaves it in the network (a client request while no leader is known).
    pub(crate) fn on_msg(
        &self,
        state: &ServerState,
        src: Id,
        msg: Msg,
        out: &mut Out<RaftActor>,
    ) -> Option<ServerState> {
        match msg {
            Msg::Raft(raft_msg) => {
                let mut next = state.clone();
                let message = raft_msg.to_message(node_id(src), self.config.id);
                if next.node.step(message).is_err() {
                    next.ghost.input_refused = true;
                }
                // A delivered message is consumed even if the node ignored
                // it: delivering it later is explored on another path.
                Some(self.finish(state, next, out))
            }
            Msg::Request { client, req, op } => self.on_request(state, client, req, op, out),
            // Replies are for clients; a server never receives one.
            Msg::PutOk { .. } | Msg::GetOk { .. } => None,
        }
    }

    fn on_request(
        &self,
        state: &ServerState,
        client: u8,
        req: u8,
        op: ClientOp,
        out: &mut Out<RaftActor>,
    ) -> Option<ServerState> {
        if state.node.role() != Role::Leader {
            // Forward to the leader we know of; without one, wait.
            let leader = state.node.leader_id().filter(|&l| l != self.config.id)?;
            out.send(server_id(leader), Msg::Request { client, req, op });
            return Some(state.clone());
        }
        let mut next = state.clone();
        let accepted = match op {
            ClientOp::Put(value) => next
                .node
                .propose(Command::Put { client, req, value }.encode())
                .is_ok(),
            ClientOp::Get => next.node.read_index(read_ctx(client, req)).is_ok(),
        };
        accepted.then(|| self.finish(state, next, out))
    }

    /// The clock timer fired: an election timeout on a follower or
    /// candidate, a heartbeat interval on a leader.
    pub(crate) fn on_clock(&self, state: &ServerState, out: &mut Out<RaftActor>) -> ServerState {
        let mut next = state.clone();
        // A leader acts every heartbeat_tick ticks. Anyone else ticks until
        // it campaigns, or for at most election_tick ticks: that is enough
        // to leave its check-quorum lease, and a second timeout is enough
        // to campaign, so both "lease over, not yet campaigning" and
        // "campaigning" are reachable.
        let ticks = if state.node.role() == Role::Leader {
            self.config.heartbeat_tick
        } else {
            self.config.election_tick
        };
        for _ in 0..ticks {
            next.node.tick();
            if next.node.has_ready() {
                break;
            }
        }
        out.set_timer(Timer::Clock, model_timeout());
        if state.node.role() == Role::Leader {
            next.ghost.heartbeats = next.ghost.heartbeats.saturating_add(1);
        } else if next.node.has_ready() {
            // Ticking a non-leader produces output only when it campaigns.
            next.ghost.elections = next.ghost.elections.saturating_add(1);
        }
        self.finish(state, next, out)
    }

    /// Drains the node's output, updates the ghost history and saves.
    fn finish(
        &self,
        before: &ServerState,
        mut next: ServerState,
        out: &mut Out<RaftActor>,
    ) -> ServerState {
        self.drive(&mut next, out);
        record_history(before, &mut next);
        if self.persist {
            out.save(ServerStorage {
                hard_state: next.node.hard_state(),
                entries: next.node.log_entries().to_vec(),
                ghost: next.ghost.clone(),
            });
        }
        next
    }

    /// The driver loop: persist (saved by the caller at the end of the
    /// atomic handler), send, apply, answer reads, advance.
    fn drive(&self, state: &mut ServerState, out: &mut Out<RaftActor>) {
        while state.node.has_ready() {
            let ready = state.node.ready();
            for msg in &ready.messages {
                out.send(server_id(msg.to), Msg::Raft(RaftMsg::from_message(msg)));
            }
            if ready.snapshot.is_some() {
                // The model never compacts, so no leader can send one.
                state.ghost.input_refused = true;
            }
            for entry in &ready.committed_entries {
                self.apply(state, entry, out);
            }
            for read in &ready.read_states {
                let (client, req) = read_ctx_parts(read.ctx);
                out.send(
                    self.client_id(client),
                    Msg::GetOk {
                        req,
                        value: state.register,
                    },
                );
            }
            state.node.advance();
        }
    }

    fn apply(&self, state: &mut ServerState, entry: &Entry, out: &mut Out<RaftActor>) {
        let id = EntryId {
            term: entry.term,
            data: entry.data.clone(),
        };
        let applied = &mut state.ghost.applied;
        match usize::try_from(entry.index - 1) {
            Ok(pos) if pos < applied.len() => {
                if applied[pos] != id {
                    state.ghost.inconsistent_apply = true;
                }
            }
            Ok(pos) if pos == applied.len() => applied.push(id),
            _ => state.ghost.inconsistent_apply = true,
        }
        if let Some(Command::Put { client, req, value }) = Command::decode(&entry.data) {
            state.register = Some(value);
            // The leader answers; followers only apply. A later leader
            // applying the same entry answers again, and the client ignores
            // answers it no longer waits for.
            if state.node.role() == Role::Leader {
                out.send(self.client_id(client), Msg::PutOk { req });
            }
        }
    }
}

/// Updates the ghost history after one handler took `before` to `next`.
fn record_history(before: &ServerState, next: &mut ServerState) {
    let node = &next.node;
    let ghost = &mut next.ghost;
    if node.role() == Role::Leader
        && let Some(bit) = 1u64.checked_shl(u32::try_from(node.term()).unwrap_or(u32::MAX))
    {
        ghost.led_terms |= bit;
    }
    let old = &before.node;
    if old.role() == Role::Leader
        && node.role() == Role::Leader
        && old.term() == node.term()
        && !node.log_entries().starts_with(old.log_entries())
    {
        ghost.leader_overwrote = true;
    }
    for index in old.commit_index() + 1..=node.commit_index() {
        record_commit(ghost, index, node.term_at(index).unwrap_or(0), node.term());
    }
}

fn record_commit(ghost: &mut Ghost, index: Index, entry_term: Term, learned_in: Term) {
    if let Ok(pos) = usize::try_from(index - 1)
        && pos == ghost.committed.len()
    {
        ghost.committed.push(CommitRecord {
            entry_term,
            learned_in,
        });
    }
}

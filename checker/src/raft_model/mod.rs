//! Model checking the real Raft core (`raft::RawNode`, the code `kvd` runs)
//! with stateright.
//!
//! # The model
//!
//! Each **server** is a stateright actor that owns a `RawNode` and drives it
//! exactly as `kvd`'s runtime does: feed one input, then drain every
//! `Ready` — persist, send, apply, answer reads, `advance` (module
//! `server`). Its inputs are
//!
//! - **messages** from the network: Raft messages from peers, and client
//!   requests (a server that is not leader forwards a request to the leader
//!   it knows, and leaves it in the network while it knows none);
//! - a **clock** timer, always armed, whose expiry is one stretch of time on
//!   that server: on a follower or candidate it ticks until the node
//!   campaigns or for `election_tick` ticks, whichever comes first (so both
//!   "lease expired, not campaigning yet" and "campaigning" are reachable);
//!   on a leader it ticks `heartbeat_tick` times (heartbeats, and every
//!   `election_tick` ticks the check-quorum round). Timers of different
//!   servers fire in every possible interleaving with each other and with
//!   message deliveries, which is what makes clocks irrelevant: any timing
//!   a real deployment could see is one of the explored orders;
//! - **crashes** and restarts (optional): a crash loses everything volatile;
//!   the restart rebuilds the node with `RawNode::restore` from what the
//!   driver persisted, and the register by re-applying committed entries.
//!
//! A server applies committed entries to a one-value register; puts are
//! log entries, gets are served by ReadIndex without writing the log. The
//! leader that applies a put answers the client; a read is answered when
//! the node confirms it.
//!
//! **Clients** (module `client`) each put their own value, then get, through
//! a fixed server. Their invocations and returns form the history (module
//! `history`) that stateright's linearizability tester checks against the
//! checker's register specification.
//!
//! The **network** is stateright's: unordered (any in-flight message may be
//! delivered next; none is duplicated), ordered (first in, first out per
//! directed pair of actors), or lossy (unordered, and any in-flight message
//! may also be dropped). Messages are [`Msg`]; Raft messages travel as
//! [`RaftMsg`], a lossless mirror of `raft::Message`.
//!
//! Nodes run with the smallest legal timeouts (`election_tick` 2,
//! `heartbeat_tick` 1; only the number of ticks per timeout changes, not
//! any code path) and with `max_size_per_msg` 1, so an AppendEntries carries
//! one command (plus any no-ops after it): followers can then hold part of
//! a leader's log, which is what Figure 8 needs. Pre-vote and check-quorum
//! are on, as in `kvd`.
//!
//! # Properties
//!
//! Stated and implemented in module [`properties`]: election safety, log
//! matching, leader append-only, leader completeness, state machine safety
//! (Raft Figure 3), the linearizable register, and that no node refuses an
//! input; examples must exist (Sometimes) for "a leader is elected" and "a
//! value is committed".
//!
//! # Bounds, and what a passing check proves
//!
//! Raft's state space is infinite: terms and logs grow, heartbeats never
//! stop, and a node's state carries counters (its random generator draws
//! once per role change, a leader counts heartbeat rounds per follower)
//! that make even a single term unbounded. A check therefore explores the
//! states inside [`Bounds`], each of which cuts off behaviours in a way
//! that can be stated:
//!
//! - **`max_elections`**: election timeouts start at most this many
//!   elections in all, counting pre-vote rounds and elections that fail.
//!   Terms only grow through elections, so this also bounds every term by
//!   `max_elections`. A pass covers every behaviour with at most that many
//!   campaigns.
//! - **`max_heartbeats`**: leaders' clocks run at most this many heartbeat
//!   intervals in all. This bounds commit propagation by heartbeat,
//!   check-quorum rounds (one every `election_tick` intervals) and probe
//!   retries, but not replication driven by acknowledgements or reads.
//! - **`max_log`**: no log grows longer, which bounds the no-ops and client
//!   commands appended.
//! - **`max_in_flight`**: no more messages are in the network at once.
//!   Behaviours that need more undelivered messages simultaneously (most
//!   often because stale ones were never delivered) are not covered.
//! - **crashes** (`RaftModelConfig::crashes`): at most this many servers
//!   are down at the same time; crash/restart cycles are otherwise free
//!   (and count against no budget). Clients never crash.
//! - **network**: the unordered network never duplicates a message; the
//!   ordered one is FIFO per link; only the lossy one drops messages.
//! - **depth** (breadth-first runs, [`RunOptions::max_depth`]): only states
//!   within that many steps of the start are checked.
//! - **clients**: each does one put and one get, without retries.
//!
//! With the budgets the space is finite, and a breadth- or depth-first run
//! that ends without reaching its state budget covers every interleaving of
//! deliveries, drops, timeouts, crashes and restarts inside the bounds (and
//! depth). A simulation only samples it. The defaults ([`Bounds::default`],
//! depth 18 on the command line) finish in seconds; `max_elections` 2
//! allows a second election to depose or replace the first leader.
//!
//! Not covered at all: log compaction and snapshots (the model never
//! compacts, so no leader sends one), membership changes, leadership
//! transfer, and clock rates (the clock only orders events). Symmetry
//! reduction is not used: a `RawNode` keeps peer ids in private state
//! (progress, votes, its seed), which stateright's `Rewrite` would have to
//! rename, so states that differ only by a permutation of servers are all
//! explored.
//!
//! # Running
//!
//! [`build_model`] makes the stateright model; [`run`] checks it (or
//! [`run_from`], from a state reached by a scripted prefix) with progress
//! reports and returns a [`RunReport`] whose paths are rendered step by
//! step ([`render`]); [`explore`] serves stateright's web explorer.
//! `faultline model raft` is the command-line front end.
//!
//! Around stateright 0.31's sharp edges: a run stops at the first violated
//! Always property and every reported path is cut at the first state that
//! violates (or witnesses) its property, because stateright keeps
//! overwriting discoveries with later states; depth-first search refuses a
//! depth bound, under which it misses states; simulations never choose an
//! action that changes nothing, which stateright could not replay; and
//! clients are kept out of crashes, which would make them invoke twice.

mod actor;
mod client;
mod history;
mod message;
pub mod properties;
pub mod render;
mod rooted;
mod run;
mod server;

use raft::{Config, Index, NodeId};
use stateright::actor::{ActorModel, ActorModelAction, ActorModelState, LossyNetwork, Network};
use thiserror::Error;

pub use actor::{ActorState, RaftActor, Timer};
pub use client::{ClientActor, ClientState};
pub use history::ClientHistory;
pub use message::{ClientOp, Command, Msg, RaftMsg, WireEntry};
pub use properties::{PROPERTIES, PropertySpec};
pub use run::{
    Progress, PropertyOutcome, PropertyResult, RunError, RunOptions, RunReport, Strategy, Verdict,
    describe_results, explore, run, run_from,
};
pub use server::{CommitRecord, EntryId, Ghost, ServerActor, ServerState, ServerStorage};

/// The stateright model of a Raft cluster with register clients.
pub type RaftModel = ActorModel<RaftActor, ModelCfg, ClientHistory>;
/// One state of [`RaftModel`]: every actor, the network, timers, crashes.
pub type RaftState = ActorModelState<RaftActor, ClientHistory>;
/// One step of [`RaftModel`].
pub type RaftAction = ActorModelAction<Msg, Timer, ()>;

/// How the network treats messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum NetworkKind {
    /// Any in-flight message may be delivered next; none is lost or
    /// duplicated.
    #[default]
    Unordered,
    /// Messages between two actors arrive in the order sent.
    Ordered,
    /// Unordered, and any in-flight message may be dropped.
    Lossy,
}

/// Limits that make the state space finite; see the module docs for what
/// each means for what a check proves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bounds {
    /// At most this many elections are started by election timeouts, over
    /// all servers together (a pre-vote round counts as one).
    pub max_elections: u8,
    /// At most this many heartbeat intervals elapse on leaders, over all
    /// servers together.
    pub max_heartbeats: u8,
    /// No server's log is longer than this.
    pub max_log: Index,
    /// No more messages than this are in the network at once.
    pub max_in_flight: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_elections: 2,
            max_heartbeats: 2,
            max_log: 3,
            max_in_flight: 5,
        }
    }
}

/// What to build: cluster size, clients, faults, bounds and the template of
/// every node's Raft configuration.
#[derive(Clone, Debug)]
pub struct RaftModelConfig {
    /// Number of servers (raft ids `1..=servers`).
    pub servers: usize,
    /// Number of clients, each doing one put then one get.
    pub clients: usize,
    /// Network semantics.
    pub network: NetworkKind,
    /// Most servers down at the same time (0: no crashes).
    pub crashes: usize,
    /// State-space bounds.
    pub bounds: Bounds,
    /// Template for each node's configuration; `id`, `voters` and `seed`
    /// are filled in per server (seed = template seed + id). Tests with
    /// raft's `bug-injection` feature set `bugs` here.
    pub node: Config,
}

impl RaftModelConfig {
    /// `servers` servers, one client, an unordered network, no crashes,
    /// default bounds and [`model_node_config`].
    pub fn new(servers: usize) -> Self {
        RaftModelConfig {
            servers,
            clients: 1,
            network: NetworkKind::Unordered,
            crashes: 0,
            bounds: Bounds::default(),
            node: model_node_config(),
        }
    }
}

/// The node configuration the model uses: `kvd`'s protocol settings
/// (pre-vote, check-quorum) with the smallest legal timeouts and one
/// command per AppendEntries (see the module docs).
pub fn model_node_config() -> Config {
    let mut config = Config::new(1, vec![1]);
    config.election_tick = 2;
    config.heartbeat_tick = 1;
    config.max_size_per_msg = 1;
    config.seed = 0;
    config
}

/// The part of the configuration stateright hands to properties and bounds.
#[derive(Clone, Debug)]
pub struct ModelCfg {
    /// Number of servers; actors `0..servers` are servers.
    pub servers: usize,
    /// Number of clients; they follow the servers.
    pub clients: usize,
    /// State-space bounds.
    pub bounds: Bounds,
}

/// Why a model cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// Fewer than one or more than nine servers.
    #[error("a model needs 1 to 9 servers, not {0}")]
    Servers(usize),
    /// More clients than values a client can write.
    #[error("a model supports at most 254 clients, not {0}")]
    Clients(usize),
    /// Terms are tracked in 64-bit sets.
    #[error("max_elections must be at most 62, not {0}")]
    MaxElections(u8),
    /// More simultaneous crashes than servers.
    #[error("cannot crash {crashes} of {servers} servers")]
    Crashes {
        /// Requested crash bound.
        crashes: usize,
        /// Number of servers.
        servers: usize,
    },
    /// The node configuration is invalid.
    #[error("invalid node configuration: {0}")]
    Node(#[from] raft::ConfigError),
}

/// Builds the stateright model described by `config`.
pub fn build_model(config: &RaftModelConfig) -> Result<RaftModel, ModelError> {
    let servers = config.servers;
    if !(1..=9).contains(&servers) {
        return Err(ModelError::Servers(servers));
    }
    if config.clients > 254 {
        return Err(ModelError::Clients(config.clients));
    }
    if config.bounds.max_elections > 62 {
        return Err(ModelError::MaxElections(config.bounds.max_elections));
    }
    if config.crashes > servers {
        return Err(ModelError::Crashes {
            crashes: config.crashes,
            servers,
        });
    }
    let cfg = ModelCfg {
        servers,
        clients: config.clients,
        bounds: config.bounds,
    };
    let network = match config.network {
        NetworkKind::Unordered | NetworkKind::Lossy => Network::new_unordered_nonduplicating([]),
        NetworkKind::Ordered => Network::new_ordered([]),
    };
    let lossy = match config.network {
        NetworkKind::Lossy => LossyNetwork::Yes,
        NetworkKind::Unordered | NetworkKind::Ordered => LossyNetwork::No,
    };
    let mut model = ActorModel::new(cfg, ClientHistory::new(config.clients))
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(config.crashes)
        .record_msg_out(history::record_invocation)
        .record_msg_in(history::record_return)
        .within_boundary(within_bounds);
    let voters: Vec<NodeId> = (1..=servers as NodeId).collect();
    for &id in &voters {
        let mut node = config.node.clone();
        node.id = id;
        node.voters = voters.clone();
        node.seed = config.node.seed.wrapping_add(id);
        let server = ServerActor::new(node, servers, config.crashes > 0)?;
        model = model.actor(RaftActor::Server(server));
    }
    for index in 0..config.clients {
        // Checked above: at most 254 clients.
        let index = u8::try_from(index).unwrap_or(u8::MAX);
        model = model.actor(RaftActor::Client(ClientActor::new(index, servers)));
    }
    for spec in properties::properties_for(config.clients) {
        model = model.property(spec.expectation.clone(), spec.name, spec.condition);
    }
    Ok(model)
}

/// The state-space boundary: terms, logs and messages in flight within
/// [`Bounds`], and clients never crashed (stateright's crashes hit every
/// actor; a restarted client would invoke its put a second time).
fn within_bounds(cfg: &ModelCfg, state: &RaftState) -> bool {
    let bounds = &cfg.bounds;
    let (mut elections, mut heartbeats) = (0usize, 0usize);
    let mut logs_fit = true;
    for server in properties::servers(state) {
        elections += usize::from(server.state.ghost.elections);
        heartbeats += usize::from(server.state.ghost.heartbeats);
        logs_fit &= server.state.node.last_index() <= bounds.max_log;
    }
    logs_fit
        && elections <= usize::from(bounds.max_elections)
        && heartbeats <= usize::from(bounds.max_heartbeats)
        && state.network.len() <= bounds.max_in_flight
        && !state.crashed.iter().skip(cfg.servers).any(|&c| c)
}

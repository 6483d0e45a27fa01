//! The properties checked in every reachable state, each stated where it
//! is defined (Raft paper, Figure 3, plus a linearizable register on top).
//!
//! Properties read the servers' real state (their `RawNode`s) and the ghost
//! history the servers keep for this purpose (see [`super::server::Ghost`]).
//! A crashed server still appears in the state as it was when it crashed;
//! its log and hard state are exactly what it had persisted, so the log
//! properties include it, but it is no leader while crashed.

use raft::Role;
use stateright::Expectation;

use super::actor::ActorState;
use super::server::ServerState;
use super::{RaftModel, RaftState};

/// A named property with its statement, for the model and for reports.
#[derive(Clone)]
pub struct PropertySpec {
    /// Name, as stateright and the reports show it.
    pub name: &'static str,
    /// Always (safety) or Sometimes (an example must exist).
    pub expectation: Expectation,
    /// What it says, in one sentence.
    pub statement: &'static str,
    /// Whether it holds in a state (Always) or is witnessed by it (Sometimes).
    pub condition: fn(&RaftModel, &RaftState) -> bool,
    /// For a violated Always property: what exactly is wrong in the state.
    pub explain: fn(&RaftModel, &RaftState) -> Option<String>,
}

impl std::fmt::Debug for PropertySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertySpec")
            .field("name", &self.name)
            .field("expectation", &self.expectation)
            .finish_non_exhaustive()
    }
}

/// Name of [`election_safety`].
pub const ELECTION_SAFETY: &str = "election safety";
/// Name of [`log_matching`].
pub const LOG_MATCHING: &str = "log matching";
/// Name of [`leader_append_only`].
pub const LEADER_APPEND_ONLY: &str = "leader append-only";
/// Name of [`leader_completeness`].
pub const LEADER_COMPLETENESS: &str = "leader completeness";
/// Name of [`state_machine_safety`].
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
/// Name of [`linearizable_register`].
pub const LINEARIZABLE: &str = "linearizable register";
/// Name of [`no_input_refused`].
pub const NO_INPUT_REFUSED: &str = "no input refused";
/// Name of [`leader_elected`].
pub const LEADER_ELECTED: &str = "a leader is elected";
/// Name of [`value_committed`].
pub const VALUE_COMMITTED: &str = "a value is committed";

/// Every property of the model, in report order. Those about clients are
/// left out of models without clients (see [`properties_for`]).
pub const PROPERTIES: &[PropertySpec] = &[
    PropertySpec {
        name: ELECTION_SAFETY,
        expectation: Expectation::Always,
        statement: "at most one server is ever leader in a given term",
        condition: |_, s| election_safety(s).is_ok(),
        explain: |_, s| election_safety(s).err(),
    },
    PropertySpec {
        name: LOG_MATCHING,
        expectation: Expectation::Always,
        statement: "two logs holding an entry with the same index and term are identical up to it",
        condition: |_, s| log_matching(s).is_ok(),
        explain: |_, s| log_matching(s).err(),
    },
    PropertySpec {
        name: LEADER_APPEND_ONLY,
        expectation: Expectation::Always,
        statement: "a leader never overwrites or deletes entries of its log during its term",
        condition: |_, s| leader_append_only(s).is_ok(),
        explain: |_, s| leader_append_only(s).err(),
    },
    PropertySpec {
        name: LEADER_COMPLETENESS,
        expectation: Expectation::Always,
        statement: "an entry committed in term t is in the log of every leader of a term after t",
        condition: |_, s| leader_completeness(s).is_ok(),
        explain: |_, s| leader_completeness(s).err(),
    },
    PropertySpec {
        name: STATE_MACHINE_SAFETY,
        expectation: Expectation::Always,
        statement: "no two servers ever apply different entries at the same index",
        condition: |_, s| state_machine_safety(s).is_ok(),
        explain: |_, s| state_machine_safety(s).err(),
    },
    PropertySpec {
        name: NO_INPUT_REFUSED,
        expectation: Expectation::Always,
        statement: "nodes accept every message and restart the driver hands them",
        condition: |_, s| no_input_refused(s).is_ok(),
        explain: |_, s| no_input_refused(s).err(),
    },
    PropertySpec {
        name: LINEARIZABLE,
        expectation: Expectation::Always,
        statement: "the clients' puts and gets are linearizable against a register",
        condition: |_, s| linearizable_register(s).is_ok(),
        explain: |_, s| linearizable_register(s).err(),
    },
    PropertySpec {
        name: LEADER_ELECTED,
        expectation: Expectation::Sometimes,
        statement: "some run elects a leader",
        condition: |_, s| leader_elected(s),
        explain: |_, _| None,
    },
    PropertySpec {
        name: VALUE_COMMITTED,
        expectation: Expectation::Sometimes,
        statement: "some run commits a client's value",
        condition: |_, s| value_committed(s),
        explain: |_, _| None,
    },
];

/// The properties that make sense with `clients` clients.
pub fn properties_for(clients: usize) -> impl Iterator<Item = &'static PropertySpec> {
    PROPERTIES
        .iter()
        .filter(move |p| clients > 0 || !matches!(p.name, LINEARIZABLE | VALUE_COMMITTED))
}

/// Looks a property up by name.
pub fn property(name: &str) -> Option<&'static PropertySpec> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// One server in a model state.
#[derive(Clone, Copy)]
pub(crate) struct ServerView<'a> {
    /// Its raft id.
    pub id: u64,
    pub state: &'a ServerState,
    pub crashed: bool,
}

/// The servers of a state, in id order.
pub(crate) fn servers(state: &RaftState) -> impl Iterator<Item = ServerView<'_>> {
    state
        .actor_states
        .iter()
        .zip(&state.crashed)
        .enumerate()
        .filter_map(|(index, (actor, &crashed))| match &**actor {
            ActorState::Server(s) => Some(ServerView {
                id: index as u64 + 1,
                state: s,
                crashed,
            }),
            ActorState::Client(_) => None,
        })
}

fn pairs(state: &RaftState) -> impl Iterator<Item = (ServerView<'_>, ServerView<'_>)> {
    servers(state).flat_map(move |a| {
        servers(state)
            .filter(move |b| b.id > a.id)
            .map(move |b| (a, b))
    })
}

/// **Election safety**: at most one server is ever leader in a given term.
/// Checked on the history of leadership (each server records the terms it
/// led), so a leader that has stepped down or crashed still counts.
pub fn election_safety(state: &RaftState) -> Result<(), String> {
    for (a, b) in pairs(state) {
        let both = a.state.ghost.led_terms & b.state.ghost.led_terms;
        if both != 0 {
            let term = both.trailing_zeros();
            return Err(format!(
                "s{} and s{} were both leader in term {term}",
                a.id, b.id
            ));
        }
    }
    Ok(())
}

/// **Log matching**: if two logs hold an entry with the same index and
/// term, they are identical in all entries up to and including it.
pub fn log_matching(state: &RaftState) -> Result<(), String> {
    for (a, b) in pairs(state) {
        let (la, lb) = (a.state.node.log_entries(), b.state.node.log_entries());
        let Some(last_match) = (0..la.len().min(lb.len()))
            .rev()
            .find(|&k| la[k].term == lb[k].term)
        else {
            continue;
        };
        if let Some(k) = (0..=last_match).find(|&k| la[k] != lb[k]) {
            return Err(format!(
                "s{} and s{} both hold index {} in term {}, but differ at index {}",
                a.id, b.id, la[last_match].index, la[last_match].term, la[k].index
            ));
        }
    }
    Ok(())
}

/// **Leader append-only**: a leader never overwrites or deletes entries in
/// its log; it only appends. Checked on every step a server takes while it
/// stays leader of one term.
pub fn leader_append_only(state: &RaftState) -> Result<(), String> {
    match servers(state).find(|s| s.state.ghost.leader_overwrote) {
        Some(s) => Err(format!(
            "s{} removed or replaced an entry of its log while leader",
            s.id
        )),
        None => Ok(()),
    }
}

/// **Leader completeness**: if an entry is committed in a given term, it is
/// present in the log of the leader of every higher term. A server that
/// learns of a commit records its own term then, which bounds the term the
/// entry was committed in from above; every live leader of a higher term
/// must hold the entry.
pub fn leader_completeness(state: &RaftState) -> Result<(), String> {
    for knower in servers(state) {
        for (pos, record) in knower.state.ghost.committed.iter().enumerate() {
            let index = pos as u64 + 1;
            for leader in servers(state) {
                let node = &leader.state.node;
                if leader.crashed || node.role() != Role::Leader || node.term() <= record.learned_in
                {
                    continue;
                }
                if node.term_at(index) != Some(record.entry_term) {
                    return Err(format!(
                        "s{} learned in term {} that index {index} (term {}) is committed, \
                         but s{}, leader of term {}, does not hold it",
                        knower.id,
                        record.learned_in,
                        record.entry_term,
                        leader.id,
                        node.term()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// **State machine safety**: if a server has applied a log entry at a given
/// index, no server ever applies a different entry at that index (itself
/// included, after a restart).
pub fn state_machine_safety(state: &RaftState) -> Result<(), String> {
    if let Some(s) = servers(state).find(|s| s.state.ghost.inconsistent_apply) {
        return Err(format!(
            "s{} applied two different entries at one index",
            s.id
        ));
    }
    for (a, b) in pairs(state) {
        let (xa, xb) = (&a.state.ghost.applied, &b.state.ghost.applied);
        if let Some(k) = (0..xa.len().min(xb.len())).find(|&k| xa[k] != xb[k]) {
            return Err(format!(
                "s{} and s{} applied different entries at index {} (terms {} and {})",
                a.id,
                b.id,
                k + 1,
                xa[k].term,
                xb[k].term
            ));
        }
    }
    Ok(())
}

/// **No input refused**: the driver only hands a node messages its peers
/// produced and state it persisted itself, so the node must accept them
/// all (a refusal means a peer sent something malformed).
pub fn no_input_refused(state: &RaftState) -> Result<(), String> {
    match servers(state).find(|s| s.state.ghost.input_refused) {
        Some(s) => Err(format!(
            "s{} refused a message or its own persisted state, or was handed a snapshot",
            s.id
        )),
        None => Ok(()),
    }
}

/// **Linearizable register**: the clients' operations, each from its
/// invocation to the answer the client took, can be ordered sequentially,
/// respecting real time, so that a register explains every answer.
pub fn linearizable_register(state: &RaftState) -> Result<(), String> {
    if state.history.is_linearizable() {
        Ok(())
    } else {
        Err(format!("no linearization of {}", state.history.describe()))
    }
}

/// **A leader is elected** (Sometimes): a live server is leader.
pub fn leader_elected(state: &RaftState) -> bool {
    servers(state).any(|s| !s.crashed && s.state.node.role() == Role::Leader)
}

/// **A value is committed** (Sometimes): some server's commit index covers a
/// client's put.
pub fn value_committed(state: &RaftState) -> bool {
    servers(state).any(|s| {
        let node = &s.state.node;
        node.log_entries()
            .iter()
            .take_while(|e| e.index <= node.commit_index())
            .any(|e| !e.is_noop())
    })
}

//! Counterexamples and examples as people read them: each step says who
//! received what (or which timer fired, who crashed), what was sent in
//! response, and how the servers it touched look afterwards.

use std::collections::BTreeMap;
use std::fmt::Write;

use raft::Role;
use stateright::actor::{ActorModelAction, Id};

use super::actor::ActorState;
use super::client::ClientState;
use super::message::{Msg, fmt_data};
use super::server::ServerState;
use super::{RaftAction, RaftModel, RaftState};

/// Name of an actor: `s1..` for servers (their raft ids), `c0..` for clients.
pub fn actor_name(model: &RaftModel, id: Id) -> String {
    let index = usize::from(id);
    match index.checked_sub(model.cfg.servers) {
        None => format!("s{}", index + 1),
        Some(client) => format!("c{client}"),
    }
}

/// One line describing a server's state.
pub fn server_line(state: &ServerState) -> String {
    let node = &state.node;
    let mut line = format!("{:?} t{}", node.role(), node.term());
    if let Some(vote) = node.vote() {
        let _ = write!(line, " voted s{vote}");
    }
    if node.role() != Role::Leader
        && let Some(leader) = node.leader_id()
    {
        let _ = write!(line, " follows s{leader}");
    }
    line.push_str(" log [");
    for (k, entry) in node.log_entries().iter().enumerate() {
        if k > 0 {
            line.push_str(", ");
        }
        let _ = write!(line, "{}:t{} ", entry.index, entry.term);
        let _ = write!(line, "{}", DataDisplay(&entry.data));
    }
    let _ = write!(line, "] commit {}", node.commit_index());
    match state.register {
        Some(v) => {
            let _ = write!(line, " register {v}");
        }
        None => line.push_str(" register null"),
    }
    line
}

struct DataDisplay<'a>(&'a [u8]);

impl std::fmt::Display for DataDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_data(f, self.0)
    }
}

fn actor_line(model: &RaftModel, state: &RaftState, index: usize) -> String {
    let name = actor_name(model, Id::from(index));
    if state.crashed.get(index).copied().unwrap_or(false) {
        return format!("{name}: crashed");
    }
    match state.actor_states.get(index).map(|a| &**a) {
        Some(ActorState::Server(s)) => format!("{name}: {}", server_line(s)),
        Some(ActorState::Client(c)) => {
            let phase = match c {
                ClientState::Putting => "waiting for its put",
                ClientState::Getting => "waiting for its get",
                ClientState::Done => "done",
            };
            format!("{name}: {phase}")
        }
        None => format!("{name}: ?"),
    }
}

/// What an action does, in words; `before` is the state it is taken in.
pub fn describe_action(model: &RaftModel, before: &RaftState, action: &RaftAction) -> String {
    let clock = match action {
        ActorModelAction::Timeout(id, _) if server_role(before, *id) == Some(Role::Leader) => {
            "heartbeat interval"
        }
        _ => "election timeout",
    };
    describe(model, action, clock)
}

/// What an action does, without the state it is taken in (a clock expiry
/// is then just "clock": a heartbeat interval or an election timeout).
pub fn describe_action_alone(model: &RaftModel, action: &RaftAction) -> String {
    describe(model, action, "clock")
}

fn describe(model: &RaftModel, action: &RaftAction, clock: &str) -> String {
    let name = |id: Id| actor_name(model, id);
    match action {
        ActorModelAction::Deliver { src, dst, msg } => {
            format!("{} → {}: {msg:?}", name(*src), name(*dst))
        }
        ActorModelAction::Drop(env) => {
            format!("lost: {} → {}: {:?}", name(env.src), name(env.dst), env.msg)
        }
        ActorModelAction::Timeout(id, _) => format!("{}: {clock}", name(*id)),
        ActorModelAction::Crash(id) => format!("{} crashes", name(*id)),
        ActorModelAction::Recover(id) => format!("{} restarts from what it persisted", name(*id)),
        ActorModelAction::SelectRandom { actor, .. } => format!("{}: random choice", name(*actor)),
    }
}

/// The actor an action acts on.
fn acting_actor(action: &RaftAction) -> Id {
    match action {
        ActorModelAction::Deliver { dst, .. } => *dst,
        ActorModelAction::Drop(env) => env.dst,
        ActorModelAction::Timeout(id, _)
        | ActorModelAction::Crash(id)
        | ActorModelAction::Recover(id) => *id,
        ActorModelAction::SelectRandom { actor, .. } => *actor,
    }
}

fn server_role(state: &RaftState, id: Id) -> Option<Role> {
    match state.actor_states.get(usize::from(id)).map(|a| &**a) {
        Some(ActorState::Server(s)) => Some(s.node.role()),
        _ => None,
    }
}

fn in_flight(state: &RaftState) -> BTreeMap<(Id, Id, &Msg), usize> {
    let mut counts = BTreeMap::new();
    for env in state.network.iter_all() {
        *counts.entry((env.src, env.dst, env.msg)).or_insert(0) += 1;
    }
    counts
}

/// Renders a path (as `stateright::Path::into_vec` returns it) step by step.
pub fn path(model: &RaftModel, steps: &[(RaftState, Option<RaftAction>)]) -> String {
    let mut out = String::new();
    let Some((first, _)) = steps.first() else {
        return out;
    };
    out.push_str("initial state:\n");
    for index in 0..first.actor_states.len() {
        let _ = writeln!(out, "      {}", actor_line(model, first, index));
    }
    for (number, pair) in steps.windows(2).enumerate() {
        let [(before, Some(action)), (after, _)] = pair else {
            continue;
        };
        let mut description = describe_action(model, before, action);
        if let ActorModelAction::Timeout(id, _) = action
            && server_role(before, *id) == server_role(after, *id)
            && server_role(after, *id) != Some(Role::Leader)
        {
            description.push_str(" (time passes; it does not campaign yet)");
        }
        let _ = writeln!(out, "{:>4}. {description}", number + 1);
        let (old, new) = (in_flight(before), in_flight(after));
        for (&(src, dst, msg), &count) in &new {
            let sent = count.saturating_sub(old.get(&(src, dst, msg)).copied().unwrap_or(0));
            for _ in 0..sent {
                let _ = writeln!(
                    out,
                    "        sends {} → {}: {msg:?}",
                    actor_name(model, src),
                    actor_name(model, dst)
                );
            }
        }
        let acting = usize::from(acting_actor(action));
        let _ = writeln!(out, "        {}", actor_line(model, after, acting));
    }
    out
}

/// Renders the last state of a path: every actor on its own line.
pub fn final_state(model: &RaftModel, state: &RaftState) -> String {
    let mut out = String::new();
    for index in 0..state.actor_states.len() {
        let _ = writeln!(out, "      {}", actor_line(model, state, index));
    }
    let _ = writeln!(out, "      {} message(s) in flight", state.network.len());
    out
}

//! The one actor type stateright sees: a server or a client.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

use super::client::{ClientActor, ClientState};
use super::message::Msg;
use super::server::{ServerActor, ServerState, ServerStorage};

/// An actor of the model. Servers come first (ids `0..servers`), then
/// clients.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant, reason = "a handful of actors, built once")]
pub enum RaftActor {
    /// A Raft server.
    Server(ServerActor),
    /// A register client.
    Client(ClientActor),
}

/// The state of one actor.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "stateright already keeps each actor state behind an Arc; a Box would add an allocation per server step"
)]
pub enum ActorState {
    /// A server's node, register and ghost history.
    Server(ServerState),
    /// A client's progress.
    Client(ClientState),
}

/// The model's only timer: a server's clock. On a follower or candidate
/// its expiry is an election timeout, on a leader a heartbeat interval.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Timer {
    /// Time passes on this server.
    Clock,
}

impl Actor for RaftActor {
    type Msg = Msg;
    type State = ActorState;
    type Timer = Timer;
    type Random = ();
    type Storage = ServerStorage;

    fn on_start(&self, _id: Id, storage: &Option<ServerStorage>, o: &mut Out<Self>) -> ActorState {
        match self {
            RaftActor::Server(server) => ActorState::Server(server.on_start(storage.as_ref(), o)),
            RaftActor::Client(client) => ActorState::Client(client.on_start(o)),
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<ActorState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (RaftActor::Server(server), ActorState::Server(s)) => {
                server.on_msg(s, src, msg, o).map(ActorState::Server)
            }
            (RaftActor::Client(client), ActorState::Client(c)) => {
                client.on_msg(*c, &msg, o).map(ActorState::Client)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<ActorState>, _timer: &Timer, o: &mut Out<Self>) {
        if let (RaftActor::Server(server), ActorState::Server(s)) = (self, &**state) {
            *state = Cow::Owned(ActorState::Server(server.on_clock(s, o)));
        }
    }

    fn name(&self) -> String {
        match self {
            RaftActor::Server(_) => "server".to_string(),
            RaftActor::Client(_) => "client".to_string(),
        }
    }
}

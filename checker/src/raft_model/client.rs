//! A client of the replicated register: one put, then one linearizable get.
//!
//! Each client sends its put to one server (client `i` to server `i` modulo
//! the number of servers); a server that is not the leader forwards it to
//! the leader it knows. Once the put is acknowledged the client reads back
//! through the same server. Clients never retry: a request lost with a
//! crashed leader leaves the client waiting, its operation forever in
//! flight, which the linearizability checker handles (it may or may not
//! have taken effect).

use stateright::actor::{Id, Out};

use super::actor::RaftActor;
use super::message::{ClientOp, Msg};

/// Request number of a client's put.
pub(crate) const PUT_REQ: u8 = 1;
/// Request number of a client's get.
pub(crate) const GET_REQ: u8 = 2;

/// A client actor's fixed parameters.
#[derive(Clone, Debug)]
pub struct ClientActor {
    /// Index among clients; client `i` writes the value `i + 1`.
    index: u8,
    /// The server it talks to.
    server: Id,
}

/// Where a client is in its put-then-get script.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ClientState {
    /// The put is in flight.
    Putting,
    /// The put was acknowledged; the get is in flight.
    Getting,
    /// The get returned.
    Done,
}

impl ClientActor {
    /// Client number `index` of a model with `servers` servers.
    pub(crate) fn new(index: u8, servers: usize) -> Self {
        ClientActor {
            index,
            server: Id::from(usize::from(index) % servers.max(1)),
        }
    }

    /// The value this client writes.
    pub fn value(&self) -> u8 {
        self.index + 1
    }

    pub(crate) fn on_start(&self, out: &mut Out<RaftActor>) -> ClientState {
        out.send(
            self.server,
            Msg::Request {
                client: self.index,
                req: PUT_REQ,
                op: ClientOp::Put(self.value()),
            },
        );
        ClientState::Putting
    }

    /// Takes the reply it waits for; anything else (a late duplicate
    /// answer) changes nothing.
    pub(crate) fn on_msg(
        &self,
        state: ClientState,
        msg: &Msg,
        out: &mut Out<RaftActor>,
    ) -> Option<ClientState> {
        match (state, msg) {
            (ClientState::Putting, Msg::PutOk { req: PUT_REQ }) => {
                out.send(
                    self.server,
                    Msg::Request {
                        client: self.index,
                        req: GET_REQ,
                        op: ClientOp::Get,
                    },
                );
                Some(ClientState::Getting)
            }
            (ClientState::Getting, Msg::GetOk { req: GET_REQ, .. }) => Some(ClientState::Done),
            _ => None,
        }
    }
}

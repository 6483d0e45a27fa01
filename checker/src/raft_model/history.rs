//! The clients' operation history, checked for linearizability.
//!
//! The history is an auxiliary variable of the model (stateright's `H`): it
//! records each client request when the client sends it (invoke) and each
//! answer when the client takes it (return), and stateright's
//! `LinearizabilityTester` decides whether some sequential order of the
//! operations, consistent with real time, is legal for a register. The
//! register is the checker's own [`crate::models::Register`], the same
//! specification `faultline check` uses for recorded histories.

use serde_json::Value;
use stateright::actor::Envelope;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use super::ModelCfg;
use super::message::{ClientOp, Msg};
use crate::models::{Register, RegisterOp, RegisterRet};

/// Invocations and returns of the clients' operations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientHistory {
    tester: LinearizabilityTester<u8, Register>,
    /// Per client: the request it waits for an answer to.
    awaiting: Vec<Option<u8>>,
}

impl ClientHistory {
    /// An empty history for `clients` clients.
    pub fn new(clients: usize) -> Self {
        ClientHistory {
            tester: LinearizabilityTester::new(Register::default()),
            awaiting: vec![None; clients],
        }
    }

    /// Whether the operations so far are linearizable (operations still in
    /// flight may or may not have taken effect).
    pub fn is_linearizable(&self) -> bool {
        self.tester.is_consistent()
    }

    /// A legal sequential order of the completed operations, if any.
    pub fn linearization(&self) -> Option<Vec<(RegisterOp, RegisterRet)>> {
        self.tester.serialized_history()
    }

    /// The history as the tester holds it, for counterexample reports.
    pub fn describe(&self) -> String {
        format!("{:?}", self.tester)
    }
}

fn register_value(value: Option<u8>) -> Value {
    value.map_or(Value::Null, Value::from)
}

/// `record_msg_out`: a client's request is an invocation.
pub(crate) fn record_invocation(
    cfg: &ModelCfg,
    history: &ClientHistory,
    env: Envelope<&Msg>,
) -> Option<ClientHistory> {
    let Msg::Request { client, req, op } = env.msg else {
        return None;
    };
    // Forwarded copies come from servers and are not new invocations.
    if usize::from(env.src) < cfg.servers {
        return None;
    }
    let op = match op {
        ClientOp::Put(value) => RegisterOp::Write(register_value(Some(*value))),
        ClientOp::Get => RegisterOp::Read,
    };
    let mut next = history.clone();
    // An error marks the history invalid, which the linearizability
    // property then reports.
    let _ = next.tester.on_invoke(*client, op);
    if let Some(slot) = next.awaiting.get_mut(usize::from(*client)) {
        *slot = Some(*req);
    }
    Some(next)
}

/// `record_msg_in`: an answer the client was waiting for is a return.
pub(crate) fn record_return(
    cfg: &ModelCfg,
    history: &ClientHistory,
    env: Envelope<&Msg>,
) -> Option<ClientHistory> {
    let (req, ret) = match env.msg {
        Msg::PutOk { req } => (*req, RegisterRet::WriteOk),
        Msg::GetOk { req, value } => (*req, RegisterRet::ReadOk(register_value(*value))),
        Msg::Raft(_) | Msg::Request { .. } => return None,
    };
    let client = usize::from(env.dst).checked_sub(cfg.servers)?;
    if history.awaiting.get(client).copied().flatten() != Some(req) {
        // A duplicate or late answer: the client ignores it.
        return None;
    }
    let mut next = history.clone();
    let _ = next.tester.on_return(u8::try_from(client).ok()?, ret);
    next.awaiting[client] = None;
    Some(next)
}

#[cfg(test)]
mod tests {
    use stateright::actor::Id;

    use super::*;
    use crate::raft_model::Bounds;
    use crate::raft_model::client::{GET_REQ, PUT_REQ};

    /// Three servers (ids 0-2), clients c0 (id 3) and c1 (id 4).
    fn cfg() -> ModelCfg {
        ModelCfg {
            servers: 3,
            clients: 2,
            bounds: Bounds::default(),
        }
    }

    fn out(h: &ClientHistory, src: usize, dst: usize, msg: Msg) -> Option<ClientHistory> {
        record_invocation(
            &cfg(),
            h,
            Envelope {
                src: Id::from(src),
                dst: Id::from(dst),
                msg: &msg,
            },
        )
    }

    fn arrive(h: &ClientHistory, src: usize, dst: usize, msg: Msg) -> Option<ClientHistory> {
        record_return(
            &cfg(),
            h,
            Envelope {
                src: Id::from(src),
                dst: Id::from(dst),
                msg: &msg,
            },
        )
    }

    fn put(client: u8, value: u8) -> Msg {
        Msg::Request {
            client,
            req: PUT_REQ,
            op: ClientOp::Put(value),
        }
    }

    fn get(client: u8) -> Msg {
        Msg::Request {
            client,
            req: GET_REQ,
            op: ClientOp::Get,
        }
    }

    #[test]
    fn read_missing_an_acknowledged_write_is_not_linearizable() {
        let h = ClientHistory::new(2);
        let h = out(&h, 3, 0, put(0, 1)).expect("invocation");
        let h = arrive(&h, 0, 3, Msg::PutOk { req: PUT_REQ }).expect("return");
        let h = out(&h, 4, 1, get(1)).expect("invocation");
        assert!(h.is_linearizable(), "the read is still in flight");
        let h = arrive(
            &h,
            1,
            4,
            Msg::GetOk {
                req: GET_REQ,
                value: None,
            },
        )
        .expect("return");
        assert!(!h.is_linearizable());
    }

    #[test]
    fn read_concurrent_with_a_write_may_see_either_value() {
        let h = ClientHistory::new(2);
        let h = out(&h, 3, 0, put(0, 1)).expect("invocation");
        let h = out(&h, 4, 1, get(1)).expect("invocation");
        let old = arrive(
            &h,
            1,
            4,
            Msg::GetOk {
                req: GET_REQ,
                value: None,
            },
        )
        .expect("return");
        let new = arrive(
            &h,
            1,
            4,
            Msg::GetOk {
                req: GET_REQ,
                value: Some(1),
            },
        )
        .expect("return");
        assert!(old.is_linearizable());
        assert!(new.is_linearizable());
    }

    #[test]
    fn forwarded_requests_and_unawaited_answers_are_not_recorded() {
        let h = ClientHistory::new(2);
        assert!(
            out(&h, 1, 0, put(0, 1)).is_none(),
            "a server forwarding is no invocation"
        );
        let h = out(&h, 3, 0, put(0, 1)).expect("invocation");
        assert!(
            arrive(
                &h,
                0,
                3,
                Msg::GetOk {
                    req: GET_REQ,
                    value: None
                }
            )
            .is_none()
        );
        let h = arrive(&h, 0, 3, Msg::PutOk { req: PUT_REQ }).expect("return");
        assert!(
            arrive(&h, 2, 3, Msg::PutOk { req: PUT_REQ }).is_none(),
            "a second leader's duplicate answer is ignored"
        );
        assert!(h.is_linearizable());
    }
}

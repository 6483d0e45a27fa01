//! What travels on the model's network: Raft messages between servers and
//! register requests and replies between clients and servers.
//!
//! stateright orders a state's enabled actions by message (`Msg: Ord`) so
//! that a path can be replayed from action indices; `raft::Message` is not
//! `Ord`, so the model carries [`RaftMsg`], a lossless, ordered mirror of it
//! without the sender and recipient (the envelope already names them).

use std::fmt;

use bytes::Bytes;
use raft::{Entry, Index, Message, MessageBody, NodeId, RejectHint, Snapshot, SnapshotMeta, Term};

/// A command in the replicated log, as the register state machine reads it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Command {
    /// A leader's no-op (empty entry data).
    Noop,
    /// Client `client`'s request `req`: set the register to `value`.
    Put {
        /// The client's index (0-based, among clients).
        client: u8,
        /// The client's request number.
        req: u8,
        /// The value written.
        value: u8,
    },
}

impl Command {
    /// The entry payload proposed to Raft for this command.
    pub fn encode(self) -> Bytes {
        match self {
            Command::Noop => Bytes::new(),
            Command::Put { client, req, value } => Bytes::from(vec![client, req, value]),
        }
    }

    /// Reads an entry payload; `None` for a payload the model never proposes.
    pub fn decode(data: &[u8]) -> Option<Command> {
        match *data {
            [] => Some(Command::Noop),
            [client, req, value] => Some(Command::Put { client, req, value }),
            _ => None,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Noop => write!(f, "noop"),
            Command::Put { client, req, value } => write!(f, "put(c{client}#{req}={value})"),
        }
    }
}

/// A log entry on the wire; its index follows from its position after
/// `prev_index`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireEntry {
    /// Term of the leader that created it.
    pub term: Term,
    /// The command, encoded as Raft sees it.
    pub data: Bytes,
}

impl fmt::Debug for WireEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{} ", self.term)?;
        fmt_data(f, &self.data)
    }
}

/// Writes an entry payload as its command, or raw bytes if it is none.
pub(crate) fn fmt_data(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    match Command::decode(data) {
        Some(cmd) => write!(f, "{cmd}"),
        None => write!(f, "{data:?}"),
    }
}

/// A `raft::Message` without its `from` and `to`, ordered and hashable.
/// Field names follow `raft::MessageBody`; `term` is `Message::term`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // each variant mirrors the raft::MessageBody variant of the same name
pub enum RaftMsg {
    PreVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        term: Term,
        granted: bool,
    },
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        transfer: bool,
    },
    RequestVoteResponse {
        term: Term,
        granted: bool,
    },
    AppendEntries {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<WireEntry>,
        commit: Index,
    },
    AppendEntriesResponse {
        term: Term,
        index: Index,
        /// `(hint index, hint term)` of a rejection.
        reject: Option<(Index, Term)>,
    },
    Heartbeat {
        term: Term,
        commit: Index,
        read_seq: u64,
    },
    HeartbeatResponse {
        term: Term,
        read_seq: u64,
    },
    InstallSnapshot {
        term: Term,
        index: Index,
        snapshot_term: Term,
        data: Bytes,
    },
    TimeoutNow {
        term: Term,
    },
}

impl RaftMsg {
    /// Mirrors a message a node produced.
    pub fn from_message(msg: &Message) -> RaftMsg {
        let term = msg.term;
        match &msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => RaftMsg::PreVote {
                term,
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
            },
            MessageBody::PreVoteResponse { granted } => RaftMsg::PreVoteResponse {
                term,
                granted: *granted,
            },
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                transfer,
            } => RaftMsg::RequestVote {
                term,
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
                transfer: *transfer,
            },
            MessageBody::RequestVoteResponse { granted } => RaftMsg::RequestVoteResponse {
                term,
                granted: *granted,
            },
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            } => RaftMsg::AppendEntries {
                term,
                prev_index: *prev_index,
                prev_term: *prev_term,
                entries: entries
                    .iter()
                    .map(|e| WireEntry {
                        term: e.term,
                        data: e.data.clone(),
                    })
                    .collect(),
                commit: *commit,
            },
            MessageBody::AppendEntriesResponse { index, reject } => {
                RaftMsg::AppendEntriesResponse {
                    term,
                    index: *index,
                    reject: reject.map(|h| (h.index, h.term)),
                }
            }
            MessageBody::Heartbeat { commit, read_seq } => RaftMsg::Heartbeat {
                term,
                commit: *commit,
                read_seq: *read_seq,
            },
            MessageBody::HeartbeatResponse { read_seq } => RaftMsg::HeartbeatResponse {
                term,
                read_seq: *read_seq,
            },
            MessageBody::InstallSnapshot { snapshot } => RaftMsg::InstallSnapshot {
                term,
                index: snapshot.meta.index,
                snapshot_term: snapshot.meta.term,
                data: snapshot.data.clone(),
            },
            MessageBody::TimeoutNow => RaftMsg::TimeoutNow { term },
        }
    }

    /// Rebuilds the `raft::Message` from `from` to `to`.
    pub fn to_message(&self, from: NodeId, to: NodeId) -> Message {
        let (term, body) = match self {
            RaftMsg::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => (
                *term,
                MessageBody::PreVote {
                    last_log_index: *last_log_index,
                    last_log_term: *last_log_term,
                },
            ),
            RaftMsg::PreVoteResponse { term, granted } => {
                (*term, MessageBody::PreVoteResponse { granted: *granted })
            }
            RaftMsg::RequestVote {
                term,
                last_log_index,
                last_log_term,
                transfer,
            } => (
                *term,
                MessageBody::RequestVote {
                    last_log_index: *last_log_index,
                    last_log_term: *last_log_term,
                    transfer: *transfer,
                },
            ),
            RaftMsg::RequestVoteResponse { term, granted } => (
                *term,
                MessageBody::RequestVoteResponse { granted: *granted },
            ),
            RaftMsg::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => (
                *term,
                MessageBody::AppendEntries {
                    prev_index: *prev_index,
                    prev_term: *prev_term,
                    entries: (prev_index + 1..)
                        .zip(entries)
                        .map(|(index, e)| Entry {
                            term: e.term,
                            index,
                            data: e.data.clone(),
                        })
                        .collect(),
                    commit: *commit,
                },
            ),
            RaftMsg::AppendEntriesResponse {
                term,
                index,
                reject,
            } => (
                *term,
                MessageBody::AppendEntriesResponse {
                    index: *index,
                    reject: reject.map(|(index, term)| RejectHint { index, term }),
                },
            ),
            RaftMsg::Heartbeat {
                term,
                commit,
                read_seq,
            } => (
                *term,
                MessageBody::Heartbeat {
                    commit: *commit,
                    read_seq: *read_seq,
                },
            ),
            RaftMsg::HeartbeatResponse { term, read_seq } => (
                *term,
                MessageBody::HeartbeatResponse {
                    read_seq: *read_seq,
                },
            ),
            RaftMsg::InstallSnapshot {
                term,
                index,
                snapshot_term,
                data,
            } => (
                *term,
                MessageBody::InstallSnapshot {
                    snapshot: Snapshot {
                        meta: SnapshotMeta {
                            index: *index,
                            term: *snapshot_term,
                        },
                        data: data.clone(),
                    },
                },
            ),
            RaftMsg::TimeoutNow { term } => (*term, MessageBody::TimeoutNow),
        };
        Message {
            from,
            to,
            term,
            body,
        }
    }
}

impl fmt::Debug for RaftMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftMsg::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => write!(
                f,
                "PreVote(for t{term}, last {last_log_index}/t{last_log_term})"
            ),
            RaftMsg::PreVoteResponse { term, granted } => {
                write!(f, "PreVoteResponse(t{term}, {})", yes_no(*granted))
            }
            RaftMsg::RequestVote {
                term,
                last_log_index,
                last_log_term,
                transfer,
            } => {
                let transfer = if *transfer { ", transfer" } else { "" };
                write!(
                    f,
                    "RequestVote(t{term}, last {last_log_index}/t{last_log_term}{transfer})"
                )
            }
            RaftMsg::RequestVoteResponse { term, granted } => {
                write!(f, "RequestVoteResponse(t{term}, {})", yes_no(*granted))
            }
            RaftMsg::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                write!(
                    f,
                    "AppendEntries(t{term}, prev {prev_index}/t{prev_term}, ["
                )?;
                for (k, e) in entries.iter().enumerate() {
                    if k > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}:{e:?}", prev_index + 1 + k as Index)?;
                }
                write!(f, "], commit {commit})")
            }
            RaftMsg::AppendEntriesResponse {
                term,
                index,
                reject,
            } => match reject {
                None => write!(f, "AppendEntriesResponse(t{term}, ok up to {index})"),
                Some((hint, hint_term)) => write!(
                    f,
                    "AppendEntriesResponse(t{term}, reject {index}, hint {hint}/t{hint_term})"
                ),
            },
            RaftMsg::Heartbeat {
                term,
                commit,
                read_seq,
            } => write!(f, "Heartbeat(t{term}, commit {commit}, read #{read_seq})"),
            RaftMsg::HeartbeatResponse { term, read_seq } => {
                write!(f, "HeartbeatResponse(t{term}, read #{read_seq})")
            }
            RaftMsg::InstallSnapshot {
                term,
                index,
                snapshot_term,
                ..
            } => write!(
                f,
                "InstallSnapshot(t{term}, up to {index}/t{snapshot_term})"
            ),
            RaftMsg::TimeoutNow { term } => write!(f, "TimeoutNow(t{term})"),
        }
    }
}

fn yes_no(granted: bool) -> &'static str {
    if granted { "granted" } else { "refused" }
}

/// A client operation on the replicated register.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum ClientOp {
    /// Set the register.
    Put(u8),
    /// Read the register (served with ReadIndex, no log write).
    Get,
}

/// Everything the model's actors send each other.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Server to server.
    Raft(RaftMsg),
    /// A client's request, sent to a server or forwarded by one to the
    /// leader it knows.
    Request {
        /// The client's index (0-based, among clients).
        client: u8,
        /// The client's request number.
        req: u8,
        /// What to do.
        op: ClientOp,
    },
    /// A put was committed and applied by the leader.
    PutOk {
        /// The request answered.
        req: u8,
    },
    /// A linearizable read's result (`None`: never written).
    GetOk {
        /// The request answered.
        req: u8,
        /// The register's value.
        value: Option<u8>,
    },
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Raft(m) => write!(f, "{m:?}"),
            Msg::Request { client, req, op } => match op {
                ClientOp::Put(v) => write!(f, "Put(c{client}#{req}, {v})"),
                ClientOp::Get => write!(f, "Get(c{client}#{req})"),
            },
            Msg::PutOk { req } => write!(f, "PutOk(#{req})"),
            Msg::GetOk { req, value } => match value {
                Some(v) => write!(f, "GetOk(#{req}, {v})"),
                None => write!(f, "GetOk(#{req}, null)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_entries_round_trips_with_indices() {
        let msg = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::AppendEntries {
                prev_index: 4,
                prev_term: 2,
                entries: vec![
                    Entry {
                        term: 3,
                        index: 5,
                        data: Bytes::new(),
                    },
                    Entry {
                        term: 3,
                        index: 6,
                        data: Command::Put {
                            client: 0,
                            req: 1,
                            value: 1,
                        }
                        .encode(),
                    },
                ],
                commit: 4,
            },
        };
        assert_eq!(RaftMsg::from_message(&msg).to_message(1, 2), msg);
    }

    #[test]
    fn commands_round_trip_and_foreign_payloads_are_not_commands() {
        let put = Command::Put {
            client: 1,
            req: 2,
            value: 3,
        };
        assert_eq!(Command::decode(&put.encode()), Some(put));
        assert_eq!(
            Command::decode(&Command::Noop.encode()),
            Some(Command::Noop)
        );
        assert_eq!(Command::decode(b"xy"), None);
    }
}

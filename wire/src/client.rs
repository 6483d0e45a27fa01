//! The client protocol: requests, responses and the data they carry.
//!
//! Every request is a map `{request_id, op}` and every response a map
//! `{request_id, reply}`; `op` and `reply` are maps whose `type` field names the
//! variant and whose other fields are that variant's (serde's *internally
//! tagged* representation). Each message is one flat, self-describing map, easy
//! to build from Python or Go. Keys and values are UTF-8 strings, which keeps
//! histories readable JSON and spares other-language clients a bytes/str
//! dance; the shard of a key is computed over its UTF-8 bytes
//! ([`crate::key_to_shard`]).
//!
//! Which service answers what: a plain kv group serves `get`, `put`, `append`;
//! the shard controller serves `join`, `leave`, `move`, `query`; a shard group
//! serves the kv operations for the shards it owns plus `pull_shard` and
//! `delete_shard` from other groups; every node serves `status` and
//! `transfer_leader`. An operation a node does not serve gets `bad_request`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::frame::{MalformedFrame, WireError};

/// A Raft node's identity within its group.
pub type NodeId = u64;
/// A replica group's identity (gid); 0 means "no group" in shard assignments.
pub type GroupId = u64;
/// A shard number, `0..nshards`.
pub type ShardId = u32;
/// The client's own identity for exactly-once sessions.
pub type ClientId = u64;

/// One request. The `request_id` is chosen by the client, echoed in the
/// response, and lets a connection carry many requests at once; ids should be
/// unique among a connection's outstanding requests and start at 1 (0 marks
/// replies to frames whose id could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Client-chosen correlation id, echoed by the response.
    pub request_id: u64,
    /// What to do.
    pub op: Op,
}

/// The operation a request asks for.
///
/// Writes carry an exactly-once session, `(client_id, seq)`: a server applies a
/// given session's writes once each, in `seq` order, however often they are
/// retried (see `docs/protocol.md`, "Sessions").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Linearizable read of one key.
    Get {
        /// Key to read.
        key: String,
    },
    /// Sets `key` to `value`.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: String,
        /// Session owner.
        client_id: ClientId,
        /// Session sequence number of this write.
        seq: u64,
    },
    /// Appends `value` to the current value of `key` (absent counts as "").
    Append {
        /// Key to extend.
        key: String,
        /// Suffix to append.
        value: String,
        /// Session owner.
        client_id: ClientId,
        /// Session sequence number of this write.
        seq: u64,
    },
    /// Reports the node's Raft view; served by every node, leader or not.
    Status,
    /// Asks the leader to hand leadership to node `to`.
    TransferLeader {
        /// The node that should become leader.
        to: NodeId,
    },
    /// Controller: adds replica groups (gid → server client addresses) and
    /// rebalances shards onto them.
    Join {
        /// New groups and their servers' client addresses.
        groups: BTreeMap<GroupId, Vec<String>>,
        /// Session owner.
        client_id: ClientId,
        /// Session sequence number of this write.
        seq: u64,
    },
    /// Controller: removes replica groups and hands their shards to the rest.
    Leave {
        /// Groups to remove.
        gids: Vec<GroupId>,
        /// Session owner.
        client_id: ClientId,
        /// Session sequence number of this write.
        seq: u64,
    },
    /// Controller: assigns one shard to one group (for tests and operators).
    Move {
        /// Shard to reassign.
        shard: ShardId,
        /// Group that should own it.
        gid: GroupId,
        /// Session owner.
        client_id: ClientId,
        /// Session sequence number of this write.
        seq: u64,
    },
    /// Controller: fetches configuration `num`, or the latest when `num` is
    /// absent, nil, negative (`-1`, as in the classic lab) or beyond the
    /// latest.
    Query {
        /// Configuration number wanted; `None` for the latest.
        #[serde(default, deserialize_with = "config_num_or_latest")]
        num: Option<u64>,
    },
    /// Shard group to shard group: "give me shard `shard` as of the end of
    /// configuration `config_num`", sent by the shard's new owner to its old one.
    PullShard {
        /// Shard wanted.
        shard: ShardId,
        /// Configuration the sender is moving into; the old owner must have
        /// reached it.
        config_num: u64,
    },
    /// Shard group to shard group: "I have installed shard `shard` for
    /// configuration `config_num`; delete your copy" (garbage collection).
    DeleteShard {
        /// Shard to drop.
        shard: ShardId,
        /// Configuration in which the sender took the shard over.
        config_num: u64,
    },
}

/// Reads `query.num`: an unsigned number, or nil or any negative number for
/// "the latest" (clients written for the classic lab send `-1`).
fn config_num_or_latest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct NumOrLatest;

    impl<'de> serde::de::Visitor<'de> for NumOrLatest {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a configuration number, or nil or -1 for the latest")
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(NumOrLatest)
        }
    }

    d.deserialize_option(NumOrLatest)
}

impl Op {
    /// The exactly-once session of a write, `(client_id, seq)`; `None` for
    /// operations that are not deduplicated.
    pub fn session(&self) -> Option<(ClientId, u64)> {
        match *self {
            Op::Put { client_id, seq, .. }
            | Op::Append { client_id, seq, .. }
            | Op::Join { client_id, seq, .. }
            | Op::Leave { client_id, seq, .. }
            | Op::Move { client_id, seq, .. } => Some((client_id, seq)),
            Op::Get { .. }
            | Op::Status
            | Op::TransferLeader { .. }
            | Op::Query { .. }
            | Op::PullShard { .. }
            | Op::DeleteShard { .. } => None,
        }
    }
}

/// One response, echoing the request's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The `request_id` of the request answered (0 if it could not be read).
    pub request_id: u64,
    /// The outcome.
    pub reply: Reply,
}

impl Response {
    /// The reply a server sends for a frame it could not read, or `None` when
    /// the error leaves nothing to answer (the socket itself failed). A fatal
    /// error still closes the connection after this reply is sent.
    pub fn for_wire_error(err: &WireError) -> Option<Response> {
        let (request_id, reason) = match err {
            WireError::Malformed(MalformedFrame {
                request_id, reason, ..
            }) => (
                request_id.unwrap_or(0),
                format!("malformed request: {reason}"),
            ),
            WireError::FrameTooLarge { .. } => (0, err.to_string()),
            _ => return None,
        };
        Some(Response {
            request_id,
            reply: Reply::BadRequest { reason },
        })
    }
}

/// The outcome of a request: a success variant, or an error telling the client
/// what to do next.
///
/// Errors are *definite* (the operation did not and will not take effect
/// because of this request: `wrong_leader`, `wrong_group`, `not_ready`,
/// `bad_request`) or *indefinite* (it may yet take effect: `timeout`,
/// `shutting_down`); see [`Reply::is_definite_failure`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A write was applied (put, append, join, leave, move, delete_shard), or a
    /// leadership transfer was started.
    Ok,
    /// The value read by a `get`; `None` when the key is absent.
    Value {
        /// Current value, if any.
        value: Option<String>,
    },
    /// The node's Raft view (answer to `status`).
    Status(NodeStatus),
    /// A shard configuration (answer to `query`).
    Config(ShardConfig),
    /// A shard's data and sessions (answer to `pull_shard`).
    Shard(ShardData),
    /// This node is not the leader and did not propose the operation. Retry at
    /// the hinted leader, or at another node if there is no hint.
    WrongLeader {
        /// The leader as this node knows it, if it knows one.
        leader: Option<LeaderHint>,
    },
    /// This group does not serve the key's shard in its current configuration
    /// (or has not received it yet). Refresh the configuration from the
    /// controller and retry.
    WrongGroup {
        /// The key's shard.
        shard: ShardId,
        /// The configuration this group is in.
        config_num: u64,
    },
    /// The old owner of a shard has not yet reached the configuration a
    /// `pull_shard`/`delete_shard` names; retry later.
    NotReady {
        /// The configuration this group is in.
        config_num: u64,
    },
    /// The operation was proposed but not seen to commit in time (or leadership
    /// was lost after proposing). It may still take effect: retry with the same
    /// session.
    Timeout,
    /// The node is stopping. Anything it had proposed may still take effect;
    /// retry elsewhere with the same session.
    ShuttingDown,
    /// The request could not be read or is not served by this node. Retrying
    /// the same bytes will not help.
    BadRequest {
        /// What was wrong.
        reason: String,
    },
}

impl Reply {
    /// Whether this reply means the operation certainly did not take effect
    /// through this request, so a client that gives up may record it as failed
    /// rather than unknown.
    pub fn is_definite_failure(&self) -> bool {
        matches!(
            self,
            Reply::WrongLeader { .. }
                | Reply::WrongGroup { .. }
                | Reply::NotReady { .. }
                | Reply::BadRequest { .. }
        )
    }

    /// Whether this reply is an error at all.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Timeout | Reply::ShuttingDown) || self.is_definite_failure()
    }
}

/// Where the current leader can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// The leader's node id.
    pub node_id: NodeId,
    /// The leader's client address (`host:port`).
    pub client_addr: String,
}

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Follows a leader (or waits for one).
    Follower,
    /// Polling peers before starting an election (pre-vote).
    PreCandidate,
    /// Running an election.
    Candidate,
    /// Leads its group.
    Leader,
}

/// A node's view of its Raft group, for operators, tests and smart clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node.
    pub node_id: NodeId,
    /// Its current role.
    pub role: NodeRole,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of in this term.
    pub leader: Option<NodeId>,
    /// Highest log index known committed.
    pub commit_index: u64,
    /// Highest log index applied to the state machine.
    pub applied_index: u64,
    /// Index of the last entry in its log.
    pub last_log_index: u64,
    /// Last index covered by its latest snapshot (0 if none).
    pub snapshot_index: u64,
    /// Every member of the group, this node included, as it knows them.
    pub members: Vec<Member>,
    /// For a node of a shard group: its configuration and the state of each
    /// shard it holds, as of its applied log. Absent for other services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_group: Option<ShardGroupStatus>,
}

/// What a shard group node holds, as of its applied log (for operators,
/// tests and `kvctl status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardGroupStatus {
    /// The group this node belongs to.
    pub gid: GroupId,
    /// The configuration the group has applied.
    pub config_num: u64,
    /// Every shard the node holds data for, and where its migration stands.
    pub shards: BTreeMap<ShardId, ShardState>,
    /// Keys held, over all shards.
    pub keys: u64,
}

/// Where one shard stands in a shard group (see `docs/protocol.md`, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    /// Owned and served.
    Serving,
    /// Owned in the current configuration, but its data has not arrived from
    /// the previous owner yet: not served.
    Pulling,
    /// Given away in the current configuration; kept (not served) until the
    /// new owner has installed it and asks for it to be deleted.
    Leaving,
    /// Installed from the previous owner and served; the previous owner has
    /// not yet confirmed deleting its copy.
    Arrived,
}

/// One member of a Raft group and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's node id.
    pub node_id: NodeId,
    /// Address clients connect to.
    pub client_addr: String,
    /// Address peers connect to.
    pub peer_addr: String,
}

/// One numbered shard configuration kept by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardConfig {
    /// Configuration number; 0 is the initial one with no groups.
    pub num: u64,
    /// `shards[s]` is the group owning shard `s` (0: unassigned).
    pub shards: Vec<GroupId>,
    /// Every group in this configuration and its servers' client addresses.
    pub groups: BTreeMap<GroupId, Vec<String>>,
}

/// A shard handed from its old owner to its new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardData {
    /// Which shard.
    pub shard: ShardId,
    /// The configuration the data is handed over for.
    pub config_num: u64,
    /// Every key of the shard and its value.
    pub kv: BTreeMap<String, String>,
    /// Exactly-once state: highest applied `seq` per client, so retried writes
    /// stay deduplicated after the move.
    pub sessions: BTreeMap<ClientId, u64>,
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    /// A `query` op as another language's client might build it.
    #[derive(Serialize)]
    struct ForeignQuery<N> {
        r#type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        num: Option<N>,
    }

    fn decode<N: Serialize>(num: Option<N>) -> Result<Op, rmp_serde::decode::Error> {
        let bytes = rmp_serde::to_vec_named(&ForeignQuery {
            r#type: "query",
            num,
        })
        .expect("encode");
        rmp_serde::from_slice(&bytes)
    }

    #[test]
    fn query_num_may_be_a_number_absent_nil_or_minus_one() {
        assert_eq!(decode(Some(3u64)).unwrap(), Op::Query { num: Some(3) });
        assert_eq!(decode(None::<u64>).unwrap(), Op::Query { num: None });
        assert_eq!(decode(Some(-1i64)).unwrap(), Op::Query { num: None });
        assert_eq!(decode(Some(None::<u64>)).unwrap(), Op::Query { num: None });
        assert!(decode(Some("latest")).is_err());
        // Our own encoding round-trips.
        for num in [None, Some(0), Some(u64::MAX)] {
            let op = Op::Query { num };
            let bytes = rmp_serde::to_vec_named(&op).expect("encode");
            assert_eq!(rmp_serde::from_slice::<Op>(&bytes).unwrap(), op);
        }
    }
}

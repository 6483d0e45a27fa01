//! The controller's client: join, leave, move and query with exactly-once
//! retries.

use std::collections::BTreeMap;

use wire::{ClientId, GroupId, Op, Reply, ShardConfig, ShardId};

use crate::cluster::{ClusterClient, expect_ok};
use crate::error::ClerkError;
use crate::options::ClerkOptions;
use crate::session::Session;

/// One logical client of the shard controller (a kvd group started with
/// `--role ctrler`).
///
/// Like [`crate::Clerk`] it is a session: `join`, `leave` and `move` carry
/// `(client_id, seq)` and are retried with the same `seq` until a definite
/// answer, so each is applied once, and a retry of a refused write (say,
/// joining a gid that is already in) gets the same refusal. It shares the
/// [`ClusterClient`]'s connections and leader cache. The controller refuses
/// impossible writes with `bad_request`, which surfaces as a [`ClerkError`]
/// whose last attempt is [`crate::AttemptError::BadRequest`].
pub struct CtrlerClerk {
    session: Session,
}

impl CtrlerClerk {
    /// A controller client on a fresh [`ClusterClient`] of its own. Use
    /// [`ClusterClient::ctrler_clerk`] for many.
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        options: ClerkOptions,
    ) -> Result<CtrlerClerk, ClerkError> {
        Ok(ClusterClient::new(servers, options)?.ctrler_clerk())
    }

    pub(crate) fn new_with(cluster: ClusterClient, client_id: ClientId, seed: u64) -> Self {
        CtrlerClerk {
            session: Session::new(cluster, client_id, seed),
        }
    }

    /// This session's client id.
    pub fn client_id(&self) -> ClientId {
        self.session.client_id
    }

    /// The `seq` of the last write issued (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.session.last_seq
    }

    /// The shared cluster handle (for admin calls such as `status`).
    pub fn cluster(&self) -> &ClusterClient {
        &self.session.cluster
    }

    /// This client's options, e.g. to tighten the deadline of the next call.
    pub fn options_mut(&mut self) -> &mut ClerkOptions {
        &mut self.session.options
    }

    /// Adds replica groups (gid → their servers' client addresses) and
    /// rebalances shards onto them, exactly once.
    pub async fn join(&mut self, groups: BTreeMap<GroupId, Vec<String>>) -> Result<(), ClerkError> {
        let op = Op::Join {
            groups,
            client_id: self.session.client_id,
            seq: self.session.next_seq(),
        };
        self.session.execute(op, "join", expect_ok).await
    }

    /// Removes replica groups and hands their shards to the others, exactly
    /// once.
    pub async fn leave(&mut self, gids: &[GroupId]) -> Result<(), ClerkError> {
        let op = Op::Leave {
            gids: gids.to_vec(),
            client_id: self.session.client_id,
            seq: self.session.next_seq(),
        };
        self.session.execute(op, "leave", expect_ok).await
    }

    /// Assigns `shard` to group `gid` (which must have joined), exactly once.
    pub async fn move_shard(&mut self, shard: ShardId, gid: GroupId) -> Result<(), ClerkError> {
        let op = Op::Move {
            shard,
            gid,
            client_id: self.session.client_id,
            seq: self.session.next_seq(),
        };
        self.session.execute(op, "move", expect_ok).await
    }

    /// Configuration `num`, or the latest when `num` is `None` or beyond the
    /// latest. Linearizable: a query started after a write completed sees it.
    pub async fn query(&mut self, num: Option<u64>) -> Result<ShardConfig, ClerkError> {
        self.session
            .execute(Op::Query { num }, "query", |reply| match reply {
                Reply::Config(config) => Ok(config),
                other => Err(Box::new(other)),
            })
            .await
    }
}

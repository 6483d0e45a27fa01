//! Clients for kvd: the [`Clerk`] and the `kvctl` command-line tool.
//!
//! # What a kvd client has to get right
//!
//! A kvd group is a few Raft replicas; only the leader serves `get`, `put`
//! and `append`, and leadership moves. A client therefore:
//!
//! 1. **Finds the leader.** It starts at the server that last served it. A
//!    follower answers `wrong_leader`, usually with a hint; the client follows
//!    the hint when it names a known server and otherwise tries the next one.
//! 2. **Retries without duplicating.** A request can time out or lose its
//!    connection *after* the leader appended it to its log, so a retry might
//!    apply a write twice. Each [`Clerk`] is a session: every write carries
//!    `(client_id, seq)`, `seq` grows by one per write, and a retry resends
//!    the same `seq`. The servers remember the highest `seq` applied per
//!    client (replicated and snapshotted), so they apply each write once.
//! 3. **Paces itself.** Retries go out at once while untried servers
//!    remain; after a full round of failures, or an error that means the
//!    cluster is busy (a commit timeout, a silent server), it pauses with
//!    capped exponential backoff and seeded jitter.
//! 4. **Knows what it does not know.** When it gives up, the error says
//!    whether the operation certainly did not happen
//!    ([`ClerkError::NotApplied`]) or might have ([`ClerkError::Unknown`]).
//!    A history records the first as `fail` and the second as `info`; a
//!    write counts as unknown if *any* of its attempts might have reached a
//!    leader.
//!
//! # Structure
//!
//! A [`ClusterClient`] holds one pipelined connection per server (request ids
//! match replies to callers, a reader task dispatches them) and the leader
//! cache; any number of [`Clerk`]s share it, each with its own session. The
//! timeouts and pacing live in [`ClerkOptions`]. The shard controller (a
//! group started with `kvd --role ctrler`) is a Raft group like any other:
//! its client, [`CtrlerClerk`], is the same session machinery with `join`,
//! `leave`, `move_shard` and `query` in place of `get`, `put` and `append`.
//!
//! # Sharded deployments
//!
//! A sharded kvd splits keys over [`wire::NSHARDS`] shards
//! (`key_to_shard`) and the shards over replica groups, as numbered
//! configurations kept by the controller. A [`ShardedClerk`] routes each
//! operation key → shard → group through the configuration its
//! [`ShardedClient`] caches, and runs it there with the same retry loop as a
//! [`Clerk`], cut short at the first `wrong_group` or after one round over
//! the group's servers. Then it refreshes the configuration (one controller
//! query serves every clerk that failed before it started), backs off unless
//! the configuration moved on, and retries the *same* write, same `seq`, at
//! the shard's owner: the groups move each shard's dedup table along with
//! its data, so the session stays exactly-once across groups. The final
//! error is unknown if any attempt in any group might have applied the write.
//! A plain [`Clerk`] pointed at one shard group fails fast on `wrong_group`,
//! with [`AttemptError::WrongGroup`] as its last error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ClerkError> {
//! use std::time::Duration;
//! use client::{ClerkOptions, ClusterClient};
//!
//! let options = ClerkOptions { overall_deadline: Some(Duration::from_secs(5)), ..Default::default() };
//! let cluster = ClusterClient::new(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], options)?;
//! let mut clerk = cluster.clerk();
//! clerk.put("x", "1").await?;
//! clerk.append("x", "2").await?;
//! assert_eq!(clerk.get("x").await?.as_deref(), Some("12"));
//! # Ok(())
//! # }
//! ```

mod clerk;
mod cluster;
mod conn;
mod ctrler_clerk;
mod error;
pub mod load;
mod options;
mod session;
mod sharded;

pub use clerk::Clerk;
pub use cluster::ClusterClient;
pub use ctrler_clerk::CtrlerClerk;
pub use error::{AttemptError, ClerkError};
pub use options::ClerkOptions;
pub use sharded::{ShardedClerk, ShardedClient};
pub use wire::{
    GroupId, LeaderHint, NodeId, NodeRole, NodeStatus, ShardConfig, ShardGroupStatus, ShardId,
    ShardState,
};

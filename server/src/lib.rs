//! `server`: kvd, a Raft-replicated key/value server, as a library and the
//! `kvd` binary.
//!
//! # One node, end to end
//!
//! A kvd process is one member of a Raft group. Clients connect to its client
//! port and send `get`, `put` and `append` (the `wire` protocol); the other
//! members connect to its peer port and send Raft messages. Everything meets
//! in one task, the *driver* (`node`), which owns the sans-IO
//! [`raft::RawNode`] and the state machine (`kv`):
//!
//! - a **write** is encoded as a log entry and proposed; it is answered when
//!   the entry is applied, with the state machine's result. Each write carries
//!   a session `(client_id, seq)`; the state machine remembers the last `seq`
//!   applied per client, so a retry is answered `ok` without applying twice;
//! - a **read** goes through ReadIndex: the leader confirms with a quorum that
//!   it still leads, then answers from its state machine once it has applied
//!   up to the commit index of that moment. No log write, still linearizable;
//! - the driver follows the Raft contract for every `Ready`: **persist**
//!   (the storage thread, `persist`, writes the batch with one fsync),
//!   **then send**, **then apply**. Proposals arriving while a batch is being
//!   written are collected into the next one (group commit);
//! - the log is **snapshotted** when it passes `--snapshot-threshold` bytes:
//!   the map and the session table are serialized, Raft drops the log below,
//!   and the storage compacts its WAL. A follower too far behind receives the
//!   snapshot (InstallSnapshot);
//! - **storage** ([`storage`]) is a segmented WAL plus atomic snapshot files;
//!   on start the node recovers from them, cutting a torn tail and refusing to
//!   start on any other corruption.
//!
//! Around the driver: `peer` (one outbound link per member, with a bounded
//! queue, batching, reconnects with backoff; one inbound listener),
//! `client_listener` (per-connection reader and writer, pipelining, bad input
//! answered without harm to others), `pending` (requests awaiting their entry
//! or read round, with deadlines), [`config`] (flags and TOML) and `runtime`
//! (start, serve, graceful shutdown).
//!
//! # Entry points
//!
//! [`run`] runs a node until a shutdown future resolves; the `kvd` binary is
//! a thin wrapper over it. [`Kvd::start`] plus [`Kvd::serve`] do the same in
//! two steps and expose the bound addresses.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = server::KvdConfig::new(1, "127.0.0.1:7001", "127.0.0.1:7101", vec![], "/tmp/kvd-1");
//! server::run(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod client_listener;
pub mod config;
mod ctrler;
pub mod entry;
pub mod failpoints;
mod kv;
mod logging;
mod members;
mod node;
mod peer;
mod pending;
mod persist;
mod responder;
mod runtime;
mod shardkv;
mod shutdown;
mod state_machine;
pub mod storage;

pub use config::{ConfigError, KvdArgs, KvdConfig, KvdRole, LogFormat, PeerSpec, ShardGroupConfig};
pub use logging::init_logging;
pub use runtime::{Kvd, run};

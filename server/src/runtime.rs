//! Starting and stopping a kvd node: recovery, listeners, tasks, shutdown.
//!
//! [`run`] is the whole life of a node and what the `kvd` binary calls;
//! [`Kvd::start`] and [`Kvd::serve`] split it for programs that embed a node
//! and want its bound addresses (e.g. when listening on port 0).

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, anyhow};
use raft::RawNode;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, error, error_span, info, warn};
use wire::LocalNode;

use crate::client_listener::{self, ClientContext};
use crate::config::{KvdConfig, KvdRole};
use crate::ctrler::Controller;
use crate::kv::KvStore;
use crate::members::Members;
use crate::node::{Driver, DriverParts};
use crate::peer::{self, InboundContext, PeerRouter};
use crate::persist::{self, Persister};
use crate::shardkv::mover::Mover;
use crate::shardkv::{GroupEnv, ShardGroup};
use crate::shutdown::{self, ShutdownRx, ShutdownTx};
use crate::state_machine::StateMachine;
use crate::storage::{Recovered, Storage, StorageOptions};

/// Capacity of the queues into the driver; full queues push back on the
/// connections feeding them.
const DRIVER_QUEUE: usize = 4096;
/// Raft's cap on entry bytes per AppendEntries, kept well below the frame
/// limit so a message always fits in one frame.
const MAX_APPEND_BYTES: u64 = 1024 * 1024;
/// Bounds of the WAL segment size, which follows `--snapshot-threshold`.
const MIN_SEGMENT: u64 = 4 * 1024;
const MAX_SEGMENT: u64 = 64 * 1024 * 1024;
/// Keeps link jitter seeds apart from the Raft seed of the same node.
const LINK_SEED_SALT: u64 = 0x6c69_6e6b;
/// The file in the data directory naming the role it was created with.
const ROLE_FILE: &str = "ROLE";

/// Runs a kvd node until `shutdown` resolves (then stops gracefully and
/// returns `Ok`) or a fatal error (storage failure, unusable data directory,
/// address in use), which is returned. Logs one line containing `kvd ready`
/// once both listeners are bound.
pub async fn run(config: KvdConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let kvd = Kvd::start(config).await?;
    kvd.serve(shutdown).await
}

/// A started node: recovered, listening, and running in background tasks.
#[derive(Debug)]
pub struct Kvd {
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    stop: ShutdownTx,
    driver: JoinHandle<anyhow::Result<()>>,
    clients: JoinHandle<()>,
    span: Span,
}

impl Kvd {
    /// Recovers the data directory, binds both listeners, starts every task
    /// and logs `kvd ready`. Fails if the directory is corrupt or locked by
    /// another process, or an address cannot be bound.
    pub async fn start(config: KvdConfig) -> anyhow::Result<Kvd> {
        config.validate()?;
        // At error level, so that no level filter drops the node id from
        // the lines logged inside it.
        let span = error_span!(target: "kvd", "kvd", node = config.id, role = %config.role);
        let started = async {
            match (config.role, config.shard_group.clone()) {
                (KvdRole::Kv, None) => Self::start_in::<KvStore>(config, (), span.clone())
                    .await
                    .map(|(kvd, _)| kvd),
                (KvdRole::Kv, Some(group)) => {
                    let env = GroupEnv { gid: group.gid };
                    let max_frame = config.max_frame;
                    let (kvd, inside) =
                        Self::start_in::<ShardGroup>(config, env, span.clone()).await?;
                    let mover = Mover::new(group.gid, group.ctrlers, inside.requests, max_frame);
                    tokio::spawn(mover.run(inside.shutdown).instrument(span.clone()));
                    Ok(kvd)
                }
                (KvdRole::Ctrler, _) => Self::start_in::<Controller>(config, (), span.clone())
                    .await
                    .map(|(kvd, _)| kvd),
            }
        };
        started
            .instrument(span.clone())
            .await
            .inspect_err(|e| error!(parent: &span, "cannot start: {e:#}"))
    }

    async fn start_in<S: StateMachine>(
        config: KvdConfig,
        env: S::Env,
        span: Span,
    ) -> anyhow::Result<(Kvd, Inside)> {
        let dir = config.data_dir.clone();
        // Segments are deleted whole once a snapshot covers them, so their
        // size, tied to the threshold, is what bounds the disk used.
        let options = StorageOptions {
            segment_size: (config.snapshot_threshold / 2).clamp(MIN_SEGMENT, MAX_SEGMENT),
        };
        let identity = service_identity(&config);
        let (storage, recovered) = tokio::task::spawn_blocking(move || {
            let (storage, recovered) = Storage::open_with(&dir, &options)
                .with_context(|| format!("cannot recover from {}", dir.display()))?;
            claim_role(&dir, &identity, &recovered)?;
            anyhow::Ok((storage, recovered))
        })
        .await
        .context("opening the data directory")??;
        if let Some(torn) = &recovered.torn_tail {
            warn!(
                file = %torn.file.display(),
                offset = torn.offset,
                discarded_bytes = torn.discarded_bytes,
                reason = %torn.reason,
                "recovered after cutting a torn WAL tail"
            );
        }
        let (hard_state, snapshot, entries) = persist::to_raft_state(recovered);
        let state = match &snapshot {
            Some(s) => S::restore(&s.data, &env).with_context(|| {
                format!(
                    "the snapshot at index {} in {} does not decode",
                    s.meta.index,
                    config.data_dir.display()
                )
            })?,
            None => S::new(&env),
        };
        info!(
            term = hard_state.term,
            commit = hard_state.commit,
            snapshot_index = snapshot.as_ref().map_or(0, |s| s.meta.index),
            entries = entries.len(),
            size = state.size(),
            "recovered durable state"
        );
        let mut raft_config = raft::Config::new(config.id, config.voters());
        raft_config.election_tick = config.election_ticks;
        raft_config.heartbeat_tick = config.heartbeat_ticks;
        raft_config.max_size_per_msg = MAX_APPEND_BYTES.min(config.max_frame as u64 / 4);
        // A fresh seed per node and per restart (the term only grows).
        raft_config.seed = mix(config.seed, config.id, hard_state.term);
        let raw = RawNode::restore(raft_config, hard_state, snapshot, entries)
            .context("the recovered log does not form a valid Raft state")?;

        let client_listener = TcpListener::bind(&config.client_addr)
            .await
            .with_context(|| format!("cannot listen for clients on {}", config.client_addr))?;
        let peer_listener = TcpListener::bind(&config.peer_addr)
            .await
            .with_context(|| format!("cannot listen for peers on {}", config.peer_addr))?;
        let client_addr = client_listener.local_addr()?;
        let peer_addr = peer_listener.local_addr()?;

        let (stop, shutdown_rx) = shutdown::channel();
        let me = LocalNode {
            node_id: config.id,
            cluster_id: config.cluster_id,
        };
        let mut peers = PeerRouter::default();
        for p in &config.peers {
            let seed = mix(config.seed, config.id, p.id.wrapping_add(LINK_SEED_SALT));
            let link = peer::spawn_link(
                p.id,
                p.peer_addr.clone(),
                me,
                config.max_frame,
                seed,
                shutdown_rx.clone(),
            );
            peers.insert(p.id, link);
        }
        let (inbound_tx, inbound_rx) = mpsc::channel(DRIVER_QUEUE);
        let (request_tx, request_rx) = mpsc::channel(DRIVER_QUEUE);
        let inbound_ctx = InboundContext {
            me,
            known: config.peers.iter().map(|p| p.id).collect::<BTreeSet<_>>(),
            max_frame: config.max_frame,
            inbound: inbound_tx,
        };
        tokio::spawn(
            peer::accept_peers(peer_listener, inbound_ctx, shutdown_rx.clone())
                .instrument(span.clone()),
        );
        let inside = Inside {
            requests: request_tx.clone(),
            shutdown: shutdown_rx.clone(),
        };
        let client_ctx = ClientContext {
            me,
            max_frame: config.max_frame,
            requests: request_tx,
        };
        let clients = tokio::spawn(
            client_listener::accept_clients(client_listener, client_ctx, shutdown_rx.clone())
                .instrument(span.clone()),
        );
        let persister =
            Persister::spawn(storage, span.clone()).context("cannot start the storage thread")?;
        let driver = Driver::new(DriverParts {
            raw,
            state,
            env,
            members: Members::from_config(&config),
            persister,
            peers,
            tick: config.tick,
            request_timeout: config.request_timeout,
            snapshot_threshold: config.snapshot_threshold,
            max_frame: config.max_frame,
            failpoints: config.failpoints,
        });
        let driver = tokio::spawn(
            driver
                .run(inbound_rx, request_rx, shutdown_rx)
                .instrument(span.clone()),
        );
        info!(%client_addr, %peer_addr, "kvd ready");
        let kvd = Kvd {
            client_addr,
            peer_addr,
            stop,
            driver,
            clients,
            span,
        };
        Ok((kvd, inside))
    }

    /// The bound client address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The bound peer address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Serves until `shutdown` resolves or the node fails. On shutdown it
    /// stops accepting, finishes the write in flight, answers everything
    /// pending `shutting_down`, closes the storage and returns `Ok`.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let span = self.span.clone();
        self.serve_in(shutdown).instrument(span).await
    }

    async fn serve_in(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let result = tokio::select! {
            r = &mut self.driver => r,
            () = shutdown => {
                info!("shutdown requested");
                let _ = self.stop.send(true);
                (&mut self.driver).await
            }
        };
        let result = result
            .map_err(|e| anyhow!("the Raft driver task failed: {e}"))
            .and_then(|r| r);
        let _ = self.stop.send(true);
        let _ = self.clients.await;
        match &result {
            Ok(()) => info!("stopped"),
            Err(e) => error!("fatal: {e:#}"),
        }
        result
    }
}

/// What a node's tasks other than the listeners need to reach the driver.
struct Inside {
    requests: mpsc::Sender<crate::responder::DriverRequest>,
    shutdown: ShutdownRx,
}

/// The service a data directory is for: the role, and for a replica group of
/// a sharded deployment its gid (`kv group 101`).
fn service_identity(config: &KvdConfig) -> String {
    match &config.shard_group {
        Some(group) => format!("{} group {}", config.role, group.gid),
        None => config.role.name().to_owned(),
    }
}

/// Makes sure the data directory was created for this service (see
/// [`service_identity`]), and records it in a fresh one: a controller's log
/// replayed into a kv store (or the reverse, or one group's shards in
/// another group) would be garbage. Directories from before the role file
/// existed held kv data.
fn claim_role(dir: &Path, identity: &str, recovered: &Recovered) -> anyhow::Result<()> {
    let path = dir.join(ROLE_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let fresh = recovered.snapshot.is_none()
        && recovered.entries.is_empty()
        && recovered.hard_state.term == 0;
    let expected = match recorded {
        Some(name) => name,
        None if fresh => {
            let mut file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{identity}")
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            // The new name must survive a crash as surely as the log will.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync {}", dir.display()))?;
            return Ok(());
        }
        None => KvdRole::Kv.name().to_owned(),
    };
    anyhow::ensure!(
        expected == identity,
        "{} holds a {expected} group's data, but this node was started as a {identity} node (--role, --group)",
        dir.display()
    );
    Ok(())
}

/// SplitMix64 over the inputs: distinct, well-spread seeds from small numbers.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::mix;

    #[test]
    fn seeds_differ_per_node_and_per_term() {
        assert_ne!(mix(7, 1, 0), mix(7, 2, 0));
        assert_ne!(mix(7, 1, 0), mix(7, 1, 1));
        assert_eq!(mix(7, 1, 3), mix(7, 1, 3));
    }
}

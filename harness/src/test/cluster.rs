//! The cluster under test: real kvd processes on a network the nemesis can
//! cut, and the process faults (kill, pause, restart) the nemesis applies.
//! `faultline bench` starts the same cluster with its peers wired directly
//! ([`Wiring::Direct`]), so there is one launcher.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use client::{ClerkOptions, ClusterClient, CtrlerClerk};
use nemesis::netns::NetnsNetwork;
use nemesis::{Grudge, ManagedProcess, NetFaultError, Network, NetworkFaults, NodeId, ProcessSpec};
use rand::rngs::ChaCha8Rng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use wire::NodeRole;

use super::config::{Layout, NetBackend, TestConfig};

/// How long a (re)started node may take to say `kvd ready`: recovery replays
/// its log, and the machine may be busy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one configuration change may take at the controller.
const RECONFIGURE_PATIENCE: Duration = Duration::from_secs(5);

/// How long a stopping node gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a cluster is made of, whatever it is started for (a test, a
/// benchmark): the layout, the seed the servers derive theirs from, how
/// their peer links are wired and which server executable runs.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Which nodes form which Raft group.
    pub layout: Layout,
    /// Node `id` runs with seed `seed * 31 + id`.
    pub seed: u64,
    /// How the nodes reach each other.
    pub wiring: Wiring,
    /// Server executable (absent: this binary, `faultline kvd`).
    pub server_bin: Option<PathBuf>,
    /// Extra arguments for every server.
    pub server_args: Vec<String>,
}

impl ClusterSpec {
    /// The cluster a test run starts.
    pub fn of_test(config: &TestConfig) -> ClusterSpec {
        ClusterSpec {
            layout: Layout::of(config),
            seed: config.seed,
            wiring: Wiring::Faultable(config.net),
            server_bin: config.server_bin.clone(),
            server_args: config.server_args.clone(),
        }
    }
}

/// How the nodes' peer links are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// Through a network the nemesis can cut.
    Faultable(NetBackend),
    /// Straight to each other on loopback, as a deployment would be: nothing
    /// in the way to measure, nothing to cut (benchmarks).
    Direct,
}

/// Where the nodes' traffic flows.
enum Net {
    Proxy(Network),
    Netns(NetnsNetwork),
    Direct(DirectLinks),
}

/// The network of a directly wired cluster: always whole, and it says so
/// when asked to partition.
struct DirectLinks;

impl NetworkFaults for DirectLinks {
    fn backend(&self) -> &'static str {
        "direct"
    }

    fn apply_grudge(&self, grudge: &Grudge) -> Result<(), NetFaultError> {
        if grudge.values().all(|dropped| dropped.is_empty()) {
            return Ok(());
        }
        Err(NetFaultError::Command {
            command: "partition".to_string(),
            detail: "this cluster's peers are wired directly, so its links cannot be cut"
                .to_string(),
        })
    }

    fn heal(&self) -> Result<(), NetFaultError> {
        Ok(())
    }
}

/// What the nemesis did to a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcessState {
    Up,
    Killed,
    Paused,
}

struct Node {
    process: ManagedProcess,
    client_addr: String,
    state: ProcessState,
}

/// The running kvd processes: one kv group, or (sharded) a controller and
/// replica groups. Dropping it kills every process (they are started with
/// kill-on-drop) and removes the network it built.
pub struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    net: Net,
    status: ClusterClient,
    layout: Layout,
}

/// One Raft group of the run and the flags that make it what it is.
struct RaftGroup {
    members: Vec<NodeId>,
    flags: Vec<String>,
}

/// The Raft groups of `layout`; replica groups find the controller at
/// `client_addrs` of its nodes. Each group gets its own cluster id, so a
/// misrouted peer connection is refused at the handshake.
fn raft_groups(layout: Layout, client_addrs: &BTreeMap<NodeId, SocketAddr>) -> Vec<RaftGroup> {
    let ctrler = layout.ctrler();
    let ctrlers: Vec<String> = ctrler
        .iter()
        .map(|id| client_addrs[id].to_string())
        .collect();
    let mut groups = Vec::new();
    if !ctrler.is_empty() {
        groups.push(RaftGroup {
            members: ctrler,
            flags: vec![
                "--role".into(),
                "ctrler".into(),
                "--cluster-id".into(),
                "1000".into(),
            ],
        });
    }
    for (gid, members) in layout.kv_groups() {
        let flags = if gid == 0 {
            Vec::new()
        } else {
            vec![
                "--group".into(),
                gid.to_string(),
                "--ctrlers".into(),
                ctrlers.join(","),
                "--cluster-id".into(),
                (1000 + gid).to_string(),
            ]
        };
        groups.push(RaftGroup { members, flags });
    }
    groups
}

impl Cluster {
    /// Starts every server of the run's layout, each with its data
    /// directory and log under `nodes_dir/<id>/`, and waits until every one
    /// is ready. A sharded deployment is then configured: every replica
    /// group joins the controller.
    pub async fn start(config: &TestConfig, nodes_dir: &Path) -> Result<Cluster> {
        Cluster::launch(&ClusterSpec::of_test(config), nodes_dir).await
    }

    /// Starts the cluster of `spec`, as [`Cluster::start`] does a test's.
    pub async fn launch(spec: &ClusterSpec, nodes_dir: &Path) -> Result<Cluster> {
        let layout = spec.layout;
        let ids: Vec<NodeId> = (1..=layout.total()).collect();
        let (net, client_addrs, peer_listen, dial) = match spec.wiring {
            Wiring::Direct => {
                let mut client_addrs = BTreeMap::new();
                let mut peer_listen = BTreeMap::new();
                for &id in &ids {
                    client_addrs.insert(id, free_loopback_addr()?);
                    peer_listen.insert(id, free_loopback_addr()?);
                }
                let mut dial = BTreeMap::new();
                for &from in &ids {
                    for &to in &ids {
                        if from != to {
                            dial.insert((from, to), peer_listen[&to]);
                        }
                    }
                }
                (Net::Direct(DirectLinks), client_addrs, peer_listen, dial)
            }
            Wiring::Faultable(NetBackend::Proxy) => {
                let mut client_addrs = BTreeMap::new();
                let mut peer_listen = BTreeMap::new();
                for &id in &ids {
                    client_addrs.insert(id, free_loopback_addr()?);
                    peer_listen.insert(id, free_loopback_addr()?);
                }
                let network = Network::start(&peer_listen, spec.seed)
                    .await
                    .context("cannot start the peer-link proxies")?;
                let mut dial = BTreeMap::new();
                for &from in &ids {
                    for &to in &ids {
                        if let Some(addr) = network.dial_addr(from, to) {
                            dial.insert((from, to), addr);
                        }
                    }
                }
                (Net::Proxy(network), client_addrs, peer_listen, dial)
            }
            Wiring::Faultable(NetBackend::Netns) => {
                let network = tokio::task::block_in_place(|| NetnsNetwork::create(&ids))
                    .context("cannot build the network namespaces (try --net proxy)")?;
                let mut client_addrs = BTreeMap::new();
                let mut peer_listen = BTreeMap::new();
                for &id in &ids {
                    let ip = network.node_ip(id).context("netns gave no address")?;
                    client_addrs.insert(id, SocketAddr::new(ip, 7000));
                    peer_listen.insert(id, SocketAddr::new(ip, 7001));
                }
                let mut dial = BTreeMap::new();
                for &from in &ids {
                    for &to in &ids {
                        if from != to {
                            dial.insert((from, to), peer_listen[&to]);
                        }
                    }
                }
                (Net::Netns(network), client_addrs, peer_listen, dial)
            }
        };

        let mut starting = Vec::new();
        let groups = raft_groups(layout, &client_addrs);
        let members = groups
            .iter()
            .flat_map(|g| g.members.iter().map(move |&id| (id, g)));
        for (id, group) in members {
            let dir = nodes_dir.join(id.to_string());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut args: Vec<OsString> = Vec::new();
            let program = match &spec.server_bin {
                Some(bin) => bin.clone(),
                None => {
                    args.push("kvd".into());
                    std::env::current_exe().context("cannot find this executable")?
                }
            };
            let flag = |args: &mut Vec<OsString>, name: &str, value: String| {
                args.push(format!("--{name}").into());
                args.push(value.into());
            };
            flag(&mut args, "id", id.to_string());
            flag(&mut args, "client-addr", client_addrs[&id].to_string());
            flag(&mut args, "peer-addr", peer_listen[&id].to_string());
            for &other in &group.members {
                if other != id {
                    flag(
                        &mut args,
                        "peer",
                        format!("{other}={}/{}", dial[&(id, other)], client_addrs[&other]),
                    );
                }
            }
            flag(
                &mut args,
                "data-dir",
                dir.join("data").display().to_string(),
            );
            flag(
                &mut args,
                "seed",
                spec.seed.wrapping_mul(31).wrapping_add(id).to_string(),
            );
            args.extend(group.flags.iter().map(OsString::from));
            args.extend(spec.server_args.iter().map(OsString::from));
            let mut spec = ProcessSpec::new(program, args, dir.join("kvd.log"));
            spec.ready_timeout = READY_TIMEOUT;
            if let Net::Netns(network) = &net {
                spec = network
                    .wrap(id, spec)
                    .context("cannot run a node in its namespace")?;
            }
            starting.push((id, spec));
        }
        let started = futures_join(starting).await;
        let mut nodes = BTreeMap::new();
        for (id, result) in started {
            let process = result.with_context(|| {
                format!(
                    "node {id} did not start; see {}",
                    nodes_dir.join(id.to_string()).join("kvd.log").display()
                )
            })?;
            nodes.insert(
                id,
                Node {
                    process,
                    client_addr: client_addrs[&id].to_string(),
                    state: ProcessState::Up,
                },
            );
        }
        if nodes.len() != ids.len() {
            bail!("only {} of {} nodes started", nodes.len(), ids.len());
        }
        let status = ClusterClient::new(
            nodes.values().map(|n| n.client_addr.clone()),
            ClerkOptions {
                request_timeout: Duration::from_millis(500),
                connect_timeout: Duration::from_millis(500),
                ..ClerkOptions::default()
            },
        )?;
        let cluster = Cluster {
            nodes,
            net,
            status,
            layout,
        };
        if layout.is_sharded() {
            cluster.join_every_group().await?;
        }
        Ok(cluster)
    }

    /// The controller's client addresses (sharded runs).
    pub fn ctrler_addrs(&self) -> Vec<String> {
        self.addrs_of(&self.layout.ctrler())
    }

    /// Whether this is a sharded deployment.
    pub fn is_sharded(&self) -> bool {
        self.layout.is_sharded()
    }

    fn addrs_of(&self, ids: &[NodeId]) -> Vec<String> {
        ids.iter()
            .filter_map(|id| self.nodes.get(id))
            .map(|n| n.client_addr.clone())
            .collect()
    }

    /// A controller session with a deadline of `patience` per call.
    pub fn ctrler_clerk(&self, patience: Duration, seed: u64) -> Result<CtrlerClerk> {
        let options = ClerkOptions {
            overall_deadline: Some(patience),
            request_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            seed: Some(seed),
            ..ClerkOptions::default()
        };
        Ok(ClusterClient::new(self.ctrler_addrs(), options)?.ctrler_clerk())
    }

    /// Every replica group of the layout and its servers' client addresses.
    pub fn replica_groups(&self) -> BTreeMap<u64, Vec<String>> {
        self.layout
            .kv_groups()
            .into_iter()
            .filter(|(gid, _)| *gid != 0)
            .map(|(gid, ids)| (gid, self.addrs_of(&ids)))
            .collect()
    }

    /// Prepares one seeded configuration change through the controller
    /// (see [`Reconfiguration::run`]). It holds no reference to the
    /// cluster, so the change can run without keeping the cluster locked
    /// while the controller takes its time.
    pub fn reconfiguration(&self, seed: u64) -> Reconfiguration {
        Reconfiguration {
            clerk: self
                .ctrler_clerk(RECONFIGURE_PATIENCE, seed)
                .map_err(|e| format!("{e:#}")),
            groups: self.replica_groups(),
            seed,
        }
    }

    async fn join_every_group(&self) -> Result<()> {
        let mut clerk = self.ctrler_clerk(READY_TIMEOUT, 0x6a6f_696e)?;
        clerk
            .join(self.replica_groups())
            .await
            .context("the shard controller did not accept the replica groups")
    }

    /// The nodes' ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Every kv node's client address, in id order (a plain run's group;
    /// every replica group's nodes when sharded).
    pub fn client_addrs(&self) -> Vec<String> {
        let ids: Vec<NodeId> = self
            .layout
            .kv_groups()
            .into_iter()
            .flat_map(|(_, ids)| ids)
            .collect();
        self.addrs_of(&ids)
    }

    /// The network, for partitions.
    pub fn network(&self) -> &dyn NetworkFaults {
        match &self.net {
            Net::Proxy(n) => n,
            Net::Netns(n) => n,
            Net::Direct(n) => n,
        }
    }

    /// The leader with the highest term among the nodes that answer, if any
    /// claims to lead.
    pub async fn leader(&self) -> Option<NodeId> {
        let mut best: Option<(u64, NodeId)> = None;
        for node in self.nodes.values() {
            if node.state != ProcessState::Up {
                continue;
            }
            if let Ok(status) = self.status.status(&node.client_addr).await
                && status.role == NodeRole::Leader
                && best.is_none_or(|(term, _)| status.term > term)
            {
                best = Some((status.term, status.node_id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// SIGKILLs `ids` (those running).
    pub async fn kill(&mut self, ids: &[NodeId]) -> Result<()> {
        for id in ids {
            let node = self.node(*id)?;
            if node.state == ProcessState::Killed {
                continue;
            }
            node.process.kill().await?;
            node.state = ProcessState::Killed;
        }
        Ok(())
    }

    /// SIGSTOPs `ids` (those running and not paused).
    pub fn pause(&mut self, ids: &[NodeId]) -> Result<()> {
        for id in ids {
            let node = self.node(*id)?;
            if node.state == ProcessState::Up {
                node.process.pause()?;
                node.state = ProcessState::Paused;
            }
        }
        Ok(())
    }

    /// Undoes kills and pauses of `ids`: restarts the killed on their data
    /// directories (waiting until ready) and resumes the paused.
    pub async fn revive(&mut self, ids: &[NodeId]) -> Result<()> {
        for id in ids {
            let node = self.node(*id)?;
            match node.state {
                ProcessState::Up => {}
                ProcessState::Paused => node.process.resume()?,
                ProcessState::Killed => node
                    .process
                    .start_again()
                    .await
                    .with_context(|| format!("node {id} did not come back after a kill"))?,
            }
            node.state = ProcessState::Up;
        }
        Ok(())
    }

    /// Ends every fault: heals the network and revives every node.
    pub async fn heal_everything(&mut self) -> Result<()> {
        tokio::task::block_in_place(|| self.network().heal())?;
        let ids = self.ids();
        self.revive(&ids).await
    }

    /// Stops every node gracefully (SIGTERM, then SIGKILL after a grace
    /// period).
    pub async fn stop(&mut self) {
        for (id, node) in &mut self.nodes {
            if node.state == ProcessState::Killed {
                continue;
            }
            if let Err(e) = node.process.terminate(STOP_GRACE).await {
                tracing::warn!(node = id, error = %e, "could not stop a node cleanly");
            }
            node.state = ProcessState::Killed;
        }
    }

    fn node(&mut self, id: NodeId) -> Result<&mut Node> {
        match self.nodes.get_mut(&id) {
            Some(node) => Ok(node),
            None => bail!("no node {id} in this cluster"),
        }
    }
}

/// Starts every spec at once (each waits for its own ready marker).
async fn futures_join(
    specs: Vec<(NodeId, ProcessSpec)>,
) -> Vec<(NodeId, Result<ManagedProcess, nemesis::ProcessError>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (id, spec) in specs {
        tasks.spawn(async move { (id, ManagedProcess::start(spec).await) });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(pair) => out.push(pair),
            Err(e) => tracing::error!(error = %e, "a node start task failed"),
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}

/// A loopback address for a node, free now and outside the ephemeral
/// range so that no outgoing connection takes it while the node is killed.
fn free_loopback_addr() -> Result<SocketAddr> {
    nemesis::ports::reserve_loopback_addr().context("cannot find a free loopback port")
}

/// One configuration change for the nemesis, ready to run: join a replica
/// group that is out, make one leave (never the last), or move a shard to
/// another group, chosen with the seed from what the latest configuration
/// allows.
pub struct Reconfiguration {
    clerk: Result<CtrlerClerk, String>,
    groups: BTreeMap<u64, Vec<String>>,
    seed: u64,
}

impl Reconfiguration {
    /// Makes the change; returns what it did, or why it could not. A
    /// controller that does not answer is part of the weather, not an error
    /// of the run.
    pub async fn run(self) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut clerk = match self.clerk {
            Ok(clerk) => clerk,
            Err(e) => return format!("reconfigure: no controller client: {e}"),
        };
        let config = match clerk.query(None).await {
            Ok(config) => config,
            Err(e) => return format!("reconfigure: cannot read the configuration: {e}"),
        };
        let all = self.groups;
        let out: Vec<u64> = all
            .keys()
            .copied()
            .filter(|g| !config.groups.contains_key(g))
            .collect();
        let inside: Vec<u64> = config.groups.keys().copied().collect();
        let mut choices = Vec::new();
        if !out.is_empty() {
            choices.push("join");
        }
        if inside.len() > 1 {
            choices.extend(["leave", "move"]);
        }
        let Some(&choice) = choices.choose(&mut rng) else {
            return format!(
                "reconfigure: nothing to change in configuration {}",
                config.num
            );
        };
        let (what, result) = match choice {
            "join" => {
                let gid = *out.choose(&mut rng).expect("not empty");
                let servers = all[&gid].clone();
                (
                    format!("join group {gid}"),
                    clerk.join(BTreeMap::from([(gid, servers)])).await,
                )
            }
            "leave" => {
                let gid = *inside.choose(&mut rng).expect("not empty");
                (format!("leave group {gid}"), clerk.leave(&[gid]).await)
            }
            _ => {
                let shard = rng.random_range(0..config.shards.len()) as u32;
                let owner = config.shards[shard as usize];
                let others: Vec<u64> = inside.iter().copied().filter(|&g| g != owner).collect();
                let gid = *others.choose(&mut rng).expect("two groups are in");
                (
                    format!("move shard {shard} to group {gid}"),
                    clerk.move_shard(shard, gid).await,
                )
            }
        };
        match result {
            Ok(()) => format!("reconfigure: {what} (from configuration {})", config.num),
            Err(e) => format!("reconfigure: {what} failed: {e}"),
        }
    }
}

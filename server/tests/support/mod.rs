//! Shared machinery of the kv service suite (`tests/kv_*.rs`): a cluster of
//! real kvd processes whose peer links and client connections run through
//! nemesis proxies, plus workloads that record histories and the checks run
//! on them.
//!
//! Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

#[path = "../recorded/mod.rs"]
pub mod recorded;
pub mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::{AttemptError, Clerk, ClerkOptions, ClusterClient, NodeRole, NodeStatus};
use nemesis::{LinkFaults, LinkProxy, ManagedProcess, Network, ProcessSpec};
use tempfile::TempDir;
use tokio::time::Instant;

/// The kvd binary built with this package.
pub const KVD: &str = env!("CARGO_BIN_EXE_kvd");

/// How a test cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of kvd nodes (ids 1..=nodes).
    pub nodes: usize,
    /// `--snapshot-threshold`, if not kvd's default.
    pub snapshot_threshold: Option<u64>,
    /// Seeds proxies, client ids and workloads.
    pub seed: u64,
}

impl ClusterConfig {
    /// `nodes` nodes with kvd's defaults.
    pub fn new(nodes: usize, seed: u64) -> ClusterConfig {
        ClusterConfig {
            nodes,
            snapshot_threshold: None,
            seed,
        }
    }
}

/// Faults for an unreliable network: short delays and connections that die
/// now and then, on every peer link and every client connection.
pub const UNRELIABLE: LinkFaults = LinkFaults {
    cut: None,
    delay: Duration::from_millis(2),
    drop_probability: 0.01,
};

/// A running kvd cluster under test. On a panic its directory (logs, data,
/// history) is kept and its path printed.
pub struct TestCluster {
    config: ClusterConfig,
    nodes: BTreeMap<u64, Node>,
    network: Network,
    /// Clients reach node `id` through `client_links[&id]`.
    client_links: BTreeMap<u64, LinkProxy>,
    /// Through the client proxies: what workloads use.
    clients: ClusterClient,
    /// Straight to the nodes: for status polls that faults must not disturb.
    admin: ClusterClient,
    dir: Option<TempDir>,
}

struct Node {
    client_addr: SocketAddr,
    data_dir: PathBuf,
    /// Behind a lock so that a crash loop can run beside a partition loop,
    /// both borrowing the cluster.
    process: tokio::sync::Mutex<ManagedProcess>,
}

/// `count` loopback addresses nobody listens on right now, from below the
/// ephemeral range so they stay free while a node is down
/// (`nemesis::ports`).
fn free_addrs(count: usize) -> Vec<SocketAddr> {
    (0..count)
        .map(|_| nemesis::ports::reserve_loopback_addr().expect("a free loopback port"))
        .collect()
}

/// Clerk options for tests: patient enough to ride out elections, bounded
/// so that a stuck cluster turns into `info` operations, not a hung test.
pub fn test_options(seed: u64) -> ClerkOptions {
    ClerkOptions {
        request_timeout: Duration::from_millis(1500),
        overall_deadline: Some(Duration::from_secs(3)),
        connect_timeout: Duration::from_millis(500),
        reconnect_interval: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        seed: Some(seed),
    }
}

impl TestCluster {
    /// Starts every node and waits until each has printed `kvd ready`.
    /// A node that fails to start (say, another program took its port
    /// first) makes it try again on fresh ports, twice at most.
    pub async fn start(config: ClusterConfig) -> TestCluster {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match TestCluster::try_start(config.clone()).await {
                Ok(cluster) => return cluster,
                Err(failure) => {
                    eprintln!("cluster start failed, retrying on fresh ports: {failure}");
                    failures.push(failure);
                }
            }
        }
        panic!("could not start the cluster: {failures:#?}");
    }

    async fn try_start(config: ClusterConfig) -> Result<TestCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("kv-suite-")
            .tempdir()
            .expect("temp dir");
        let ids: Vec<u64> = (1..=config.nodes as u64).collect();
        let addrs = free_addrs(2 * config.nodes);
        let client_addrs: BTreeMap<u64, SocketAddr> =
            ids.iter().map(|&id| (id, addrs[id as usize - 1])).collect();
        let peer_addrs: BTreeMap<u64, SocketAddr> = ids
            .iter()
            .map(|&id| (id, addrs[config.nodes + id as usize - 1]))
            .collect();

        let network = Network::start(&peer_addrs, config.seed)
            .await
            .expect("peer proxies");
        let mut client_links = BTreeMap::new();
        for (&id, &addr) in &client_addrs {
            let link = LinkProxy::start(addr, config.seed ^ (id << 48))
                .await
                .expect("client proxy");
            client_links.insert(id, link);
        }

        let mut nodes = BTreeMap::new();
        for &id in &ids {
            let data_dir = dir.path().join(format!("node{id}"));
            let mut args: Vec<String> = vec![
                "--id".into(),
                id.to_string(),
                "--client-addr".into(),
                client_addrs[&id].to_string(),
                "--peer-addr".into(),
                peer_addrs[&id].to_string(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--seed".into(),
                (config.seed ^ id).to_string(),
            ];
            for &other in ids.iter().filter(|&&other| other != id) {
                let dial = network.dial_addr(id, other).expect("link exists");
                // Leader hints point clients at the proxies they are meant to use.
                let hint = client_links[&other].listen_addr();
                args.push("--peer".into());
                args.push(format!("{other}={dial}/{hint}"));
            }
            if let Some(threshold) = config.snapshot_threshold {
                args.push("--snapshot-threshold".into());
                args.push(threshold.to_string());
            }
            let mut spec = ProcessSpec::new(KVD, args, dir.path().join(format!("node{id}.log")));
            spec.env.push(("NO_COLOR".into(), "1".into()));
            spec.env.push(("RUST_LOG".into(), "info".into()));
            let process = match ManagedProcess::start(spec).await {
                Ok(process) => process,
                Err(e) => {
                    return Err(format!(
                        "node {id} (logs kept in {}): {e}",
                        dir.keep().display()
                    ));
                }
            };
            let node = Node {
                client_addr: client_addrs[&id],
                data_dir,
                process: tokio::sync::Mutex::new(process),
            };
            nodes.insert(id, node);
        }

        let options = test_options(config.seed);
        let proxied: Vec<String> = client_links
            .values()
            .map(|l| l.listen_addr().to_string())
            .collect();
        let clients = ClusterClient::new(proxied, options.clone()).expect("servers");
        let direct: Vec<String> = client_addrs.values().map(ToString::to_string).collect();
        let admin = ClusterClient::new(direct, options).expect("servers");
        Ok(TestCluster {
            config,
            nodes,
            network,
            client_links,
            clients,
            admin,
            dir: Some(dir),
        })
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The test's directory: logs, data dirs, history.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("directory lives as long as the cluster")
            .path()
    }

    /// The shared client (through the client proxies) workloads use.
    pub fn client(&self) -> &ClusterClient {
        &self.clients
    }

    /// A new Clerk on the shared client.
    pub fn clerk(&self) -> Clerk {
        self.clients.clerk()
    }

    /// A client that knows only the nodes `ids` (still through the proxies),
    /// e.g. a client stuck on one side of a partition.
    pub fn client_for(&self, ids: &[u64], options: ClerkOptions) -> ClusterClient {
        let addrs: Vec<String> = ids
            .iter()
            .map(|id| self.client_links[id].listen_addr().to_string())
            .collect();
        ClusterClient::new(addrs, options).expect("at least one node")
    }

    /// A client with proxies of its own to every node, so that a test can
    /// cut this one client off from some nodes without touching the others.
    pub async fn private_client(&self, options: ClerkOptions) -> PrivateClient {
        let mut links = BTreeMap::new();
        for (&id, node) in &self.nodes {
            let link = LinkProxy::start(node.client_addr, self.config.seed ^ (id << 40))
                .await
                .expect("client proxy");
            links.insert(id, link);
        }
        let addrs: Vec<String> = links
            .values()
            .map(|l| l.listen_addr().to_string())
            .collect();
        let client = ClusterClient::new(addrs, options).expect("servers");
        PrivateClient { client, links }
    }

    /// The peer network, for partitions and link faults.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Applies `faults` to every peer link and client connection.
    pub fn set_all_link_faults(&self, faults: LinkFaults) {
        for (from, to) in self.network.stats().keys() {
            let link = self.network.link(*from, *to).expect("listed link");
            link.set_faults(faults).expect("valid faults");
        }
        for link in self.client_links.values() {
            link.set_faults(faults).expect("valid faults");
        }
    }

    /// SIGKILLs node `id` (if it runs).
    pub async fn kill(&self, id: u64) {
        let mut process = self.nodes[&id].process.lock().await;
        if process.is_running() {
            process
                .kill()
                .await
                .unwrap_or_else(|e| panic!("kill node {id}: {e}"));
        }
    }

    /// Starts node `id` again on its data dir (if it is not running) and waits
    /// until it is ready.
    pub async fn restart(&self, id: u64) {
        let mut process = self.nodes[&id].process.lock().await;
        process
            .start_again()
            .await
            .unwrap_or_else(|e| panic!("restart node {id}: {e}"));
    }

    /// SIGKILLs every node.
    pub async fn kill_all(&self) {
        for id in self.ids() {
            self.kill(id).await;
        }
    }

    /// Restarts every node that is not running.
    pub async fn restart_all(&self) {
        for id in self.ids() {
            self.restart(id).await;
        }
    }

    /// Node `id`'s Raft status, asked directly (no proxy).
    pub async fn status(&self, id: u64) -> Result<NodeStatus, AttemptError> {
        self.admin
            .status(&self.nodes[&id].client_addr.to_string())
            .await
    }

    /// Waits until a node among `among` leads with the support of a
    /// majority of the whole cluster (that many nodes of `among` name it
    /// leader in its term) and returns its id. Panics with every node's
    /// status if that does not happen within `within`.
    pub async fn wait_for_leader(&self, among: &[u64], within: Duration) -> u64 {
        let majority = self.nodes.len() / 2 + 1;
        let deadline = Instant::now() + within;
        loop {
            let mut statuses = Vec::new();
            for &id in among {
                if let Ok(status) = self.status(id).await {
                    statuses.push(status);
                }
            }
            for leader in statuses.iter().filter(|s| s.role == NodeRole::Leader) {
                let supporters = statuses
                    .iter()
                    .filter(|s| s.term == leader.term && s.leader == Some(leader.node_id))
                    .count();
                if supporters >= majority {
                    return leader.node_id;
                }
            }
            if Instant::now() >= deadline {
                panic!("no leader among {among:?} within {within:?}; statuses: {statuses:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_for_applied(&self, ids: &[u64], index: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for &id in ids {
            loop {
                match self.status(id).await {
                    Ok(s) if s.applied_index >= index => break,
                    other if Instant::now() >= deadline => {
                        panic!("node {id} did not apply index {index} within {within:?}: {other:?}")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }

    /// Total apparent size of the files in node `id`'s data dir.
    pub fn data_dir_bytes(&self, id: u64) -> u64 {
        dir_bytes(&self.nodes[&id].data_dir)
    }
}

/// A client on its own proxies; see [`TestCluster::private_client`].
pub struct PrivateClient {
    /// The client.
    pub client: ClusterClient,
    links: BTreeMap<u64, LinkProxy>,
}

impl PrivateClient {
    /// Cuts this client off from nodes `ids` (connections reset).
    pub fn cut_from(&self, ids: &[u64]) {
        for id in ids {
            self.links[id].cut(nemesis::CutMode::Reset);
        }
    }

    /// Reconnects this client to every node.
    pub fn heal(&self) {
        self.links.values().for_each(LinkProxy::heal);
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "kept the failed test's directory (logs, data, history): {}",
                dir.keep().display()
            );
        }
    }
}

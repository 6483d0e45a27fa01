//! Shared by the sharded service suites (`tests/shardkv_*.rs`): a shard
//! controller group and replica groups of real `kvd` processes, the
//! controller calls that move shards between them, waits on what each group
//! reports in its status, and (in [`workload`]) recorded workloads and the
//! checks run on them.
//!
//! Include it next to `kvd_harness` (`mod kvd_harness; mod shard_support;`).
//!
//! In an unreliable setup every replica group's peer links and every node's
//! client address run through nemesis proxies that delay and drop: the
//! addresses a group joins with are the proxies, so clerks *and* shard pulls
//! between groups cross them. Status polls go straight to the nodes, so
//! that waiting on a group is not itself disturbed. The controller group
//! stays reliable.

#![allow(dead_code)] // each test file uses a different part

#[path = "../recorded/mod.rs"]
pub mod recorded;
pub mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use client::{
    ClerkOptions, ClusterClient, CtrlerClerk, GroupId, ShardConfig, ShardGroupStatus, ShardId,
    ShardState, ShardedClerk, ShardedClient,
};
use nemesis::{LinkFaults, LinkProxy, Network};
use tokio::sync::Mutex;

use crate::kvd_harness::{Cluster, PATIENCE, dir_bytes};

/// The first replica group's id; the others count up from it.
pub const FIRST_GID: GroupId = 100;
/// Number of shards kvd splits keys into.
pub const NSHARDS: ShardId = wire::NSHARDS.get();
/// Nodes per group (controller and replica groups alike).
pub const GROUP_SIZE: usize = 3;

/// What an unreliable setup does to every proxied link: short delays, and
/// connections that die now and then (the proxy's model of a lossy network).
pub const UNRELIABLE: LinkFaults = LinkFaults {
    cut: None,
    delay: Duration::from_millis(3),
    drop_probability: 0.03,
};

/// How a [`ShardedCluster`] is laid out.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Replica groups, gids `FIRST_GID..`.
    pub groups: usize,
    /// `--snapshot-threshold` for the replica groups, if not kvd's default.
    pub snapshot_threshold: Option<u64>,
    /// Route replica groups' links through proxies (see the module doc).
    pub unreliable: bool,
    /// Seeds proxies and client ids.
    pub seed: u64,
}

impl Setup {
    /// `groups` reliable replica groups with kvd's defaults.
    pub fn new(groups: usize, seed: u64) -> Setup {
        Setup {
            groups,
            snapshot_threshold: None,
            unreliable: false,
            seed,
        }
    }
}

/// Clerk options for tests: patient enough to ride out elections and
/// migrations, bounded by `deadline` so that a stuck group turns into an
/// error rather than a hung test.
pub fn clerk_options(seed: u64, deadline: Duration) -> ClerkOptions {
    ClerkOptions {
        request_timeout: Duration::from_millis(1500),
        overall_deadline: Some(deadline),
        connect_timeout: Duration::from_millis(500),
        reconnect_interval: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        seed: Some(seed),
    }
}

/// One replica group: three kvd processes, plus their proxies when
/// unreliable.
pub struct Group {
    /// Its group id.
    pub gid: GroupId,
    /// Its processes (node `i` has Raft id `i + 1`).
    pub nodes: Cluster,
    /// The client addresses the group joins with: the proxies when
    /// unreliable, the nodes themselves otherwise.
    pub servers: Vec<String>,
    /// Peer-link proxies (unreliable setups only).
    network: Option<Network>,
    /// Client-address proxies, in node order (unreliable setups only).
    client_links: Vec<LinkProxy>,
}

impl Group {
    /// Every link of this group that faults can be put on.
    fn links(&self) -> Vec<&LinkProxy> {
        let mut links: Vec<&LinkProxy> = self.client_links.iter().collect();
        if let Some(network) = &self.network {
            for (from, to) in network.stats().keys() {
                links.extend(network.link(*from, *to));
            }
        }
        links
    }
}

/// A controller group and replica groups of real processes, killed when the
/// value is dropped. On a panic the test's directory (the history) is kept
/// and its path printed; the harness prints every node's log.
pub struct ShardedCluster {
    setup: Setup,
    /// The controller group.
    pub ctrlers: Cluster,
    groups: BTreeMap<GroupId, Group>,
    /// For join, leave, move and query; one session for the whole test.
    admin: Mutex<CtrlerClerk>,
    client: Arc<ShardedClient>,
    next_seed: AtomicU64,
    dir: Option<tempfile::TempDir>,
}

/// The harness plans addresses as strings; proxies want them parsed.
fn addr(s: &str) -> SocketAddr {
    s.parse().expect("the harness plans socket addresses")
}

impl ShardedCluster {
    /// Starts the controller group and every replica group (none joined
    /// yet) and waits until each node is ready.
    pub async fn start(setup: Setup) -> ShardedCluster {
        let dir = tempfile::Builder::new()
            .prefix("shardkv-")
            .tempdir()
            .expect("temp dir");
        let mut ctrlers = Cluster::new(GROUP_SIZE, &["--role", "ctrler", "--cluster-id", "1"]);
        ctrlers.start_all().await;
        let ctrler_addrs: Vec<String> = ctrlers
            .nodes
            .iter()
            .map(|n| n.client_addr.clone())
            .collect();

        let mut groups = BTreeMap::new();
        for k in 0..setup.groups as u64 {
            let gid = FIRST_GID + k;
            let group = plan_group(gid, &ctrler_addrs, &setup).await;
            groups.insert(gid, group);
        }
        for group in groups.values_mut() {
            for i in 0..GROUP_SIZE {
                group.nodes.spawn(i);
            }
        }
        for group in groups.values() {
            for i in 0..GROUP_SIZE {
                group.nodes.wait_ready(i).await;
            }
        }

        let admin_client = ClusterClient::new(
            ctrler_addrs.clone(),
            clerk_options(setup.seed ^ 0xadad, PATIENCE),
        )
        .expect("controller addresses");
        let client = ShardedClient::new(ctrler_addrs, clerk_options(setup.seed, PATIENCE))
            .expect("controller addresses");
        ShardedCluster {
            next_seed: AtomicU64::new(setup.seed.wrapping_mul(1000) + 1),
            setup,
            ctrlers,
            groups,
            admin: Mutex::new(admin_client.ctrler_clerk()),
            client: Arc::new(client),
            dir: Some(dir),
        }
    }

    /// The setup it was started with.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The test's directory (for the history).
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("lives as long as the cluster")
            .path()
    }

    /// Every replica group id, ascending.
    pub fn gids(&self) -> Vec<GroupId> {
        self.groups.keys().copied().collect()
    }

    /// Replica group `gid`.
    pub fn group(&self, gid: GroupId) -> &Group {
        &self.groups[&gid]
    }

    /// The shared client (patient: [`PATIENCE`] per call).
    pub fn client(&self) -> &Arc<ShardedClient> {
        &self.client
    }

    /// A new client with its own seed and the given per-call deadline.
    pub fn new_client(&self, deadline: Duration) -> ShardedClient {
        let addrs: Vec<String> = self
            .ctrlers
            .nodes
            .iter()
            .map(|n| n.client_addr.clone())
            .collect();
        ShardedClient::new(addrs, clerk_options(self.fresh_seed(), deadline))
            .expect("controller addresses")
    }

    /// A plain (unsharded) client for group `gid` alone, straight to its
    /// nodes: for asking one group what it serves.
    pub fn group_client(&self, gid: GroupId, deadline: Duration) -> ClusterClient {
        let addrs: Vec<String> = self.groups[&gid]
            .nodes
            .nodes
            .iter()
            .map(|n| n.client_addr.clone())
            .collect();
        ClusterClient::new(addrs, clerk_options(self.fresh_seed(), deadline))
            .expect("group addresses")
    }

    /// A seed no other client of this test used (client ids derive from it).
    pub fn fresh_seed(&self) -> u64 {
        self.next_seed.fetch_add(1, Ordering::Relaxed)
    }

    // ----- controller -----

    /// Joins the replica groups `gids` (with their [`Group::servers`]).
    pub async fn join(&self, gids: &[GroupId]) {
        let groups = gids
            .iter()
            .map(|g| (*g, self.groups[g].servers.clone()))
            .collect();
        self.admin
            .lock()
            .await
            .join(groups)
            .await
            .unwrap_or_else(|e| panic!("join {gids:?}: {e}"));
    }

    /// Makes the replica groups `gids` leave.
    pub async fn leave(&self, gids: &[GroupId]) {
        self.admin
            .lock()
            .await
            .leave(gids)
            .await
            .unwrap_or_else(|e| panic!("leave {gids:?}: {e}"));
    }

    /// Assigns `shard` to `gid`.
    pub async fn move_shard(&self, shard: ShardId, gid: GroupId) {
        self.admin
            .lock()
            .await
            .move_shard(shard, gid)
            .await
            .unwrap_or_else(|e| panic!("move shard {shard} to {gid}: {e}"));
    }

    /// The latest configuration.
    pub async fn latest_config(&self) -> ShardConfig {
        self.admin
            .lock()
            .await
            .query(None)
            .await
            .unwrap_or_else(|e| panic!("query the latest configuration: {e}"))
    }

    // ----- processes -----

    /// SIGKILLs node `i` of group `gid`.
    pub fn kill_node(&mut self, gid: GroupId, i: usize) {
        self.group_mut(gid).nodes.kill(i);
    }

    /// Starts node `i` of group `gid` again on its data dir and waits until
    /// it is ready.
    pub async fn start_node(&mut self, gid: GroupId, i: usize) {
        self.group_mut(gid).nodes.start(i).await;
    }

    /// SIGKILLs every node of group `gid`.
    pub fn kill_group(&mut self, gid: GroupId) {
        let group = self.group_mut(gid);
        for i in 0..GROUP_SIZE {
            group.nodes.kill(i);
        }
    }

    /// Starts every node of group `gid` that is down and waits until each
    /// is ready.
    pub async fn start_group(&mut self, gid: GroupId) {
        self.group_mut(gid).nodes.start_all().await;
    }

    /// Kills every replica group, then starts them all again from disk.
    pub async fn restart_all_groups(&mut self) {
        for gid in self.gids() {
            self.kill_group(gid);
        }
        for group in self.groups.values_mut() {
            for i in 0..GROUP_SIZE {
                group.nodes.spawn(i);
            }
        }
        for group in self.groups.values() {
            for i in 0..GROUP_SIZE {
                group.nodes.wait_ready(i).await;
            }
        }
    }

    fn group_mut(&mut self, gid: GroupId) -> &mut Group {
        self.groups
            .get_mut(&gid)
            .unwrap_or_else(|| panic!("no group {gid}"))
    }

    // ----- network -----

    /// Puts [`UNRELIABLE`] faults on (or takes them off) every proxied link;
    /// panics in a reliable setup, which has none.
    pub fn set_unreliable(&self, on: bool) {
        assert!(self.setup.unreliable, "a reliable setup has no proxies");
        let faults = if on { UNRELIABLE } else { LinkFaults::HEALTHY };
        for group in self.groups.values() {
            for link in group.links() {
                link.set_faults(faults).expect("valid faults");
            }
        }
    }

    /// Connections the proxies refused or killed so far: evidence that an
    /// unreliable test really was.
    pub fn dropped_connections(&self) -> u64 {
        self.groups
            .values()
            .flat_map(|g| g.links())
            .map(|l| {
                let s = l.stats();
                s.killed + s.refused
            })
            .sum()
    }

    // ----- status -----

    /// What node `i` of group `gid` says it holds.
    pub async fn shard_group_status(
        &self,
        gid: GroupId,
        i: usize,
    ) -> anyhow::Result<ShardGroupStatus> {
        let status = self.groups[&gid].nodes.status(i).await?;
        status
            .shard_group
            .ok_or_else(|| anyhow::anyhow!("node {} of group {gid} is no shard group", i + 1))
    }

    /// Shard states as every running node of `gid` reports them (node index
    /// to states); nodes that do not answer are left out.
    pub async fn shard_states(&self, gid: GroupId) -> BTreeMap<usize, ShardGroupStatus> {
        let mut states = BTreeMap::new();
        for i in 0..GROUP_SIZE {
            if self.groups[&gid].nodes.nodes[i].is_running()
                && let Ok(s) = self.shard_group_status(gid, i).await
            {
                states.insert(i, s);
            }
        }
        states
    }

    /// Waits until every running node of `gid` answers its status and
    /// satisfies `holds`.
    pub async fn wait_group<F>(&self, gid: GroupId, what: &str, holds: F)
    where
        F: Fn(&ShardGroupStatus) -> bool,
    {
        let running: Vec<usize> = (0..GROUP_SIZE)
            .filter(|&i| self.groups[&gid].nodes.nodes[i].is_running())
            .collect();
        let last = std::sync::Mutex::new(BTreeMap::new());
        let done = tokio::time::timeout(
            PATIENCE,
            poll_until(|| async {
                let states = self.shard_states(gid).await;
                let ok = running.iter().all(|i| states.get(i).is_some_and(&holds));
                *last.lock().expect("not poisoned") = states;
                ok
            }),
        )
        .await;
        if done.is_err() {
            panic!(
                "group {gid} did not reach: {what} within {PATIENCE:?}; nodes {running:?} report {:#?}",
                last.lock().expect("not poisoned")
            );
        }
    }

    /// Waits until every running node of `gid` has applied configuration
    /// `num` (or a later one).
    pub async fn wait_for_config(&self, gid: GroupId, num: u64) {
        self.wait_group(gid, &format!("configuration {num}"), |s| {
            s.config_num >= num
        })
        .await;
    }

    /// Waits until every running node of `gid` has applied configuration
    /// `num` and finished migrating: every shard it holds is plainly
    /// served, none still pulling, leaving or awaiting deletion elsewhere.
    pub async fn wait_settled(&self, gid: GroupId, num: u64) {
        self.wait_group(gid, &format!("settled in configuration {num}"), |s| {
            s.config_num >= num && s.shards.values().all(|&st| st == ShardState::Serving)
        })
        .await;
    }

    /// Waits until the replica groups agree with `config`: each group in it
    /// has applied it (or a later one) and serves exactly the shards it
    /// assigns that group, every one plainly served; each group not in it
    /// holds nothing (what it gave away has been deleted).
    pub async fn wait_all_settled(&self, config: &ShardConfig) {
        for gid in self.gids() {
            if !config.groups.contains_key(&gid) {
                self.wait_group(gid, "holding no shard", |s| s.shards.is_empty())
                    .await;
                continue;
            }
            let owned = shards_of(config, gid);
            self.wait_group(
                gid,
                &format!("serving exactly {owned:?} in configuration {}", config.num),
                |s| {
                    s.config_num >= config.num
                        && s.shards.keys().copied().collect::<Vec<_>>() == owned
                        && s.shards.values().all(|&st| st == ShardState::Serving)
                },
            )
            .await;
        }
    }

    // ----- storage -----

    /// Bytes under node `i` of group `gid`'s data dir.
    pub fn node_dir_bytes(&self, gid: GroupId, i: usize) -> u64 {
        dir_bytes(&self.groups[&gid].nodes.nodes[i].data_dir)
    }

    /// Bytes under every data dir of group `gid`.
    pub fn group_dir_bytes(&self, gid: GroupId) -> u64 {
        (0..GROUP_SIZE).map(|i| self.node_dir_bytes(gid, i)).sum()
    }
}

/// Polls `cond` every 20 ms until it holds, with no deadline of its own
/// (the caller bounds it).
async fn poll_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !cond().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for ShardedCluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "kept the failed test's directory (history): {}",
                dir.keep().display()
            );
        }
    }
}

/// Plans replica group `gid` (nothing started), with proxies when the
/// setup is unreliable.
async fn plan_group(gid: GroupId, ctrler_addrs: &[String], setup: &Setup) -> Group {
    let gid_arg = gid.to_string();
    let ctrlers_arg = ctrler_addrs.join(",");
    let threshold = setup.snapshot_threshold.map(|t| t.to_string());
    let mut flags = vec![
        "--role",
        "kv",
        "--group",
        &gid_arg,
        "--ctrlers",
        &ctrlers_arg,
        "--cluster-id",
        &gid_arg,
    ];
    if let Some(t) = &threshold {
        flags.extend(["--snapshot-threshold", t]);
    }
    let mut nodes = Cluster::new(GROUP_SIZE, &flags);
    if !setup.unreliable {
        let servers = nodes.nodes.iter().map(|n| n.client_addr.clone()).collect();
        return Group {
            gid,
            nodes,
            servers,
            network: None,
            client_links: Vec::new(),
        };
    }

    let seed = setup.seed ^ gid.rotate_left(40);
    let peer_addrs: BTreeMap<u64, SocketAddr> = nodes
        .nodes
        .iter()
        .map(|n| (n.id, addr(&n.peer_addr)))
        .collect();
    let network = Network::start(&peer_addrs, seed)
        .await
        .expect("peer proxies");
    let mut client_links = Vec::new();
    for n in &nodes.nodes {
        let link = LinkProxy::start(addr(&n.client_addr), seed ^ (n.id << 48))
            .await
            .expect("client proxy");
        client_links.push(link);
    }
    let ids: Vec<u64> = nodes.nodes.iter().map(|n| n.id).collect();
    for (i, &from) in ids.iter().enumerate() {
        for (&to, link) in ids.iter().zip(&client_links) {
            if from == to {
                continue;
            }
            let dial = network.dial_addr(from, to).expect("link exists");
            let hint = link.listen_addr();
            nodes.route_peer(i, to, &dial.to_string(), &hint.to_string());
        }
    }
    let servers = client_links
        .iter()
        .map(|l| l.listen_addr().to_string())
        .collect();
    Group {
        gid,
        nodes,
        servers,
        network: Some(network),
        client_links,
    }
}

/// The `n`th key (from 0) that hashes to `shard`, tagged with `tag`: lets a
/// test put data exactly where it wants it.
pub fn key_in_shard(shard: ShardId, tag: &str, n: usize) -> String {
    (0u64..)
        .map(|k| format!("{tag}-{k}"))
        .filter(|key| wire::key_to_shard(key, wire::NSHARDS) == shard)
        .nth(n)
        .expect("every shard gets keys")
}

/// The shard `key` lives in.
pub fn shard_of(key: &str) -> ShardId {
    wire::key_to_shard(key, wire::NSHARDS)
}

/// `per_shard` keys in every shard, tagged `tag`.
pub fn keys_in_every_shard(tag: &str, per_shard: usize) -> Vec<String> {
    (0..NSHARDS)
        .flat_map(|s| (0..per_shard).map(move |n| key_in_shard(s, tag, n)))
        .collect()
}

/// Shards `config` gives `gid`.
pub fn shards_of(config: &ShardConfig, gid: GroupId) -> Vec<ShardId> {
    (0..NSHARDS)
        .filter(|&s| config.shards[s as usize] == gid)
        .collect()
}

/// What a sequential test expects every key to hold, kept in step with the
/// writes it makes through one clerk.
#[derive(Debug, Default)]
pub struct Expected {
    values: BTreeMap<String, String>,
}

impl Expected {
    /// Puts `value` at every key of `keys`, panicking on any error.
    pub async fn put_all(&mut self, clerk: &mut ShardedClerk, keys: &[String], value: &str) {
        for key in keys {
            let value = format!("{value}:{key};");
            clerk
                .put(key, &value)
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e}"));
            self.values.insert(key.clone(), value);
        }
    }

    /// Appends `suffix` to every key held, panicking on any error.
    pub async fn append_all(&mut self, clerk: &mut ShardedClerk, suffix: &str) {
        for (key, value) in &mut self.values {
            clerk
                .append(key, suffix)
                .await
                .unwrap_or_else(|e| panic!("append to {key}: {e}"));
            value.push_str(suffix);
        }
    }

    /// Appends `suffix` to `key` alone, panicking on any error.
    pub async fn append(&mut self, clerk: &mut ShardedClerk, key: &str, suffix: &str) {
        clerk
            .append(key, suffix)
            .await
            .unwrap_or_else(|e| panic!("append to {key}: {e}"));
        self.values
            .get_mut(key)
            .unwrap_or_else(|| panic!("{key} was never put"))
            .push_str(suffix);
    }

    /// Reads every key back and compares, panicking on any difference.
    pub async fn check(&self, clerk: &mut ShardedClerk) {
        for (key, want) in &self.values {
            let got = clerk
                .get(key)
                .await
                .unwrap_or_else(|e| panic!("get {key}: {e}"));
            assert_eq!(
                got.as_deref(),
                Some(want.as_str()),
                "key {key} (shard {})",
                shard_of(key)
            );
        }
    }

    /// What the test wrote to `key` last.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key held.
    pub fn keys(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }
}

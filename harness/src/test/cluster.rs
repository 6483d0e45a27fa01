//! The cluster under test: real kvd processes on a network the nemesis can
//! cut, and the process faults (kill, pause, restart) the nemesis applies.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use client::{ClerkOptions, ClusterClient};
use nemesis::netns::NetnsNetwork;
use nemesis::{ManagedProcess, Network, NetworkFaults, NodeId, ProcessSpec};
use wire::NodeRole;

use super::config::{NetBackend, TestConfig};

/// How long a (re)started node may take to say `kvd ready`: recovery replays
/// its log, and the machine may be busy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopping node gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where the nodes' traffic flows.
enum Net {
    Proxy(Network),
    Netns(NetnsNetwork),
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

/// A running kvd group. Dropping it kills every process (they are started
/// with kill-on-drop) and removes the network it built.
pub struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    net: Net,
    status: ClusterClient,
}

impl Cluster {
    /// Starts `config.nodes` servers, each with its data directory and log
    /// under `nodes_dir/<id>/`, and waits until every one is ready.
    pub async fn start(config: &TestConfig, nodes_dir: &Path) -> Result<Cluster> {
        let ids: Vec<NodeId> = (1..=config.nodes).collect();
        let (net, client_addrs, peer_listen, dial) = match config.net {
            NetBackend::Proxy => {
                let mut client_addrs = BTreeMap::new();
                let mut peer_listen = BTreeMap::new();
                for &id in &ids {
                    client_addrs.insert(id, free_loopback_addr()?);
                    peer_listen.insert(id, free_loopback_addr()?);
                }
                let network = Network::start(&peer_listen, config.seed)
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
            NetBackend::Netns => {
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
        for &id in &ids {
            let dir = nodes_dir.join(id.to_string());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut args: Vec<OsString> = Vec::new();
            let program = match &config.server_bin {
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
            for &other in &ids {
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
                config.seed.wrapping_mul(31).wrapping_add(id).to_string(),
            );
            args.extend(config.server_args.iter().map(OsString::from));
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
        Ok(Cluster { nodes, net, status })
    }

    /// The nodes' ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Every node's client address, in id order.
    pub fn client_addrs(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.client_addr.clone()).collect()
    }

    /// The network, for partitions.
    pub fn network(&self) -> &dyn NetworkFaults {
        match &self.net {
            Net::Proxy(n) => n,
            Net::Netns(n) => n,
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

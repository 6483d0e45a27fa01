//! Every peer link of an N-node cluster, as proxies, with partition-level
//! operations.
//!
//! For each ordered pair of nodes `(from, to)` there is one [`LinkProxy`];
//! node `from` is configured to reach `to` at [`Network::dial_addr`]. Raft
//! peers usually send on the connection they dialed, so `(a, b)` carries
//! what `a` says to `b` (and the answers on that connection). Partitions cut
//! both directions; single links can be cut for one-way faults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::grudge::{self, Grudge, NetFaultError, NetworkFaults};
use crate::proxy::{CutMode, LinkFaults, LinkProxy, LinkStats, ProxyError};

/// A node's identity in the network (its Raft id).
pub type NodeId = u64;

/// The proxied peer network of one cluster. Dropping it closes every link.
pub struct Network {
    links: BTreeMap<(NodeId, NodeId), LinkProxy>,
    cut_mode: CutMode,
}

impl Network {
    /// Starts a proxy for every ordered pair of nodes in `peer_addrs` (node
    /// id → the address where that node listens for peers). Each link's
    /// randomness is seeded from `seed` and the pair, so a run is
    /// reproducible as far as timing allows.
    pub async fn start(
        peer_addrs: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
    ) -> Result<Network, ProxyError> {
        let mut links = BTreeMap::new();
        for &from in peer_addrs.keys() {
            for (&to, &target) in peer_addrs {
                if from == to {
                    continue;
                }
                let link_seed =
                    seed ^ from.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ to.rotate_left(32);
                links.insert((from, to), LinkProxy::start(target, link_seed).await?);
            }
        }
        Ok(Network {
            links,
            cut_mode: CutMode::Reset,
        })
    }

    /// Chooses how [`Network::partition`] and [`Network::isolate`] cut links
    /// from now on (`Reset` by default).
    pub fn set_cut_mode(&mut self, mode: CutMode) {
        self.cut_mode = mode;
    }

    /// The address node `from` must dial to reach node `to`.
    pub fn dial_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(LinkProxy::listen_addr)
    }

    /// One directed link, for one-way faults.
    pub fn link(&self, from: NodeId, to: NodeId) -> Option<&LinkProxy> {
        self.links.get(&(from, to))
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.links.keys().map(|&(from, _)| from).collect();
        nodes.dedup();
        nodes
    }

    /// Splits the cluster: links between nodes of the same group are healed,
    /// links between groups are cut. A node in no group is alone in its own.
    pub fn partition(&self, groups: &[Vec<NodeId>]) {
        let group_of = |node: NodeId| groups.iter().position(|g| g.contains(&node));
        for (&(from, to), link) in &self.links {
            let together = matches!((group_of(from), group_of(to)), (Some(a), Some(b)) if a == b);
            if together {
                link.heal();
            } else {
                link.cut(self.cut_mode);
            }
        }
    }

    /// Cuts `node` off from every other node (both directions), leaving the
    /// other links as they are.
    pub fn isolate(&self, node: NodeId) {
        for (&(from, to), link) in &self.links {
            if from == node || to == node {
                link.cut(self.cut_mode);
            }
        }
    }

    /// Lifts every cut; delays and drop probabilities stay.
    pub fn heal_all(&self) {
        self.links.values().for_each(LinkProxy::heal);
    }

    /// Sets the delay of every link.
    pub fn set_delay_all(&self, delay: Duration) {
        self.links.values().for_each(|l| l.set_delay(delay));
    }

    /// Sets the drop probability of every link.
    pub fn set_drop_probability_all(&self, p: f64) -> Result<(), ProxyError> {
        self.links
            .values()
            .try_for_each(|l| l.set_drop_probability(p))
    }

    /// Heals everything and removes every delay and drop.
    pub fn reset_all(&self) {
        for link in self.links.values() {
            // HEALTHY's probability is valid, so this cannot fail.
            let _ = link.set_faults(LinkFaults::HEALTHY);
        }
    }

    /// Each link's counters, by `(from, to)`.
    pub fn stats(&self) -> BTreeMap<(NodeId, NodeId), LinkStats> {
        self.links.iter().map(|(&k, l)| (k, l.stats())).collect()
    }
}

impl NetworkFaults for Network {
    fn backend(&self) -> &'static str {
        "proxy"
    }

    fn apply_grudge(&self, grudge: &Grudge) -> Result<(), NetFaultError> {
        let nodes = self.nodes();
        if let Some(&unknown) = grudge
            .iter()
            .flat_map(|(a, s)| std::iter::once(a).chain(s))
            .find(|n| !nodes.contains(n))
        {
            return Err(NetFaultError::UnknownNode(unknown));
        }
        for (&(from, to), link) in &self.links {
            if grudge::is_cut(grudge, from, to) {
                link.cut(self.cut_mode);
            } else {
                link.heal();
            }
        }
        Ok(())
    }

    fn heal(&self) -> Result<(), NetFaultError> {
        self.heal_all();
        Ok(())
    }
}

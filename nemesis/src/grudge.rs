//! Network partitions as grudges, and the trait both network backends share.
//!
//! Jepsen describes every partition as a *grudge*: for each node, the set of
//! nodes it refuses to hear from. Groups ("these three here, those two
//! there") are one kind of grudge; a *majorities ring* (every node sees a
//! majority, but no two see the same one) and a *bridge* (two halves joined
//! by one node that sees both) are not groups at all, which is why the
//! backends take grudges. The constructors here are pure and seeded, so a
//! schedule replays exactly.
//!
//! Every grudge built here is symmetric (if `a` drops `b`, `b` drops `a`):
//! TCP cannot carry traffic one way only, so backends may treat a pair as cut
//! if either side holds the grudge.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;

use crate::network::NodeId;

/// For each node, the nodes whose traffic it drops. Nodes absent from the
/// map drop nothing.
pub type Grudge = BTreeMap<NodeId, BTreeSet<NodeId>>;

/// A network that can be partitioned: the userspace proxies
/// ([`crate::Network`]) and network namespaces with iptables
/// (`crate::netns`) both implement it, so a nemesis is written once.
pub trait NetworkFaults: Send + Sync {
    /// The backend's name, for logs and reports (`"proxy"`, `"netns"`).
    fn backend(&self) -> &'static str;

    /// Replaces whatever partition is in force with `grudge`: a pair of
    /// nodes is cut (both directions) if either holds a grudge against the
    /// other; every other pair can talk.
    fn apply_grudge(&self, grudge: &Grudge) -> Result<(), NetFaultError>;

    /// Lets every node talk to every other again.
    fn heal(&self) -> Result<(), NetFaultError>;
}

/// Why a network fault could not be applied or lifted.
#[derive(Debug, thiserror::Error)]
pub enum NetFaultError {
    /// A command the backend runs (`ip`, `iptables`) failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and stderr, or the spawn error.
        detail: String,
    },
    /// The grudge names a node the backend does not manage.
    #[error("node {0} is not part of this network")]
    UnknownNode(NodeId),
}

/// Whether `grudge` cuts the pair `a`–`b` (in either direction).
pub fn is_cut(grudge: &Grudge, a: NodeId, b: NodeId) -> bool {
    let holds = |x: NodeId, y: NodeId| grudge.get(&x).is_some_and(|s| s.contains(&y));
    holds(a, b) || holds(b, a)
}

/// The grudge of a partition into `groups`: nodes in different groups cut,
/// nodes in the same group connected. A node in no group is alone.
pub fn from_groups(nodes: &[NodeId], groups: &[Vec<NodeId>]) -> Grudge {
    let group_of = |n: NodeId| groups.iter().position(|g| g.contains(&n));
    let mut grudge = Grudge::new();
    for &a in nodes {
        let others: BTreeSet<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&b| b != a && (group_of(a).is_none() || group_of(a) != group_of(b)))
            .collect();
        if !others.is_empty() {
            grudge.insert(a, others);
        }
    }
    grudge
}

/// Cuts `node` off from everyone else.
pub fn isolate(nodes: &[NodeId], node: NodeId) -> Grudge {
    let rest: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != node).collect();
    from_groups(nodes, &[vec![node], rest])
}

/// Splits the nodes into two random halves (the smaller one has
/// `⌊n/2⌋` nodes, so the bigger one keeps a majority).
pub fn random_halves(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let (small, big) = shuffled.split_at(nodes.len() / 2);
    from_groups(nodes, &[small.to_vec(), big.to_vec()])
}

/// Every node sees a majority (itself and its ring neighbours), but no two
/// nodes see the same majority: with 5 nodes in a random ring, each talks to
/// the two on either side. Raft stays available only through nodes that
/// relay terms, a classic source of dueling leaders.
pub fn majorities_ring(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let n = nodes.len();
    let mut ring = nodes.to_vec();
    ring.shuffle(rng);
    // Each node must see ⌊n/2⌋ others to be in a majority; reach that many
    // neighbours, split as evenly as possible around the ring.
    let reach = n / 2;
    let mut grudge = Grudge::new();
    for (i, &a) in ring.iter().enumerate() {
        let mut sees = BTreeSet::new();
        for step in 1..=reach.div_ceil(2) {
            sees.insert(ring[(i + step) % n]);
        }
        for step in 1..=reach / 2 {
            sees.insert(ring[(i + n - step) % n]);
        }
        let cut: BTreeSet<NodeId> = ring
            .iter()
            .copied()
            .filter(|&b| b != a && !sees.contains(&b))
            .collect();
        if !cut.is_empty() {
            grudge.insert(a, cut);
        }
    }
    // Seeing is symmetric only if both sides see each other; make the cut
    // symmetric so that TCP-level backends agree with iptables ones.
    let pairs: Vec<(NodeId, NodeId)> = grudge
        .iter()
        .flat_map(|(&a, s)| s.iter().map(move |&b| (b, a)))
        .collect();
    for (b, a) in pairs {
        grudge.entry(b).or_default().insert(a);
    }
    grudge
}

/// Two halves joined by one bridge node that sees both; the halves cannot
/// see each other.
pub fn bridge(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let n = shuffled.len();
    if n < 3 {
        return Grudge::new();
    }
    // shuffled[n / 2] is the bridge: it appears in no grudge.
    let left = &shuffled[..n / 2];
    let right = &shuffled[n / 2 + 1..];
    let mut grudge = Grudge::new();
    for &a in left {
        grudge.insert(a, right.iter().copied().collect());
    }
    for &b in right {
        grudge.insert(b, left.iter().copied().collect());
    }
    grudge
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;

    const FIVE: [NodeId; 5] = [1, 2, 3, 4, 5];

    fn connected(g: &Grudge, a: NodeId) -> usize {
        FIVE.iter().filter(|&&b| b != a && !is_cut(g, a, b)).count()
    }

    #[test]
    fn groups_cut_across_and_connect_within() {
        let g = from_groups(&FIVE, &[vec![1, 2], vec![3, 4, 5]]);
        assert!(!is_cut(&g, 1, 2));
        assert!(!is_cut(&g, 3, 5));
        assert!(is_cut(&g, 1, 3));
        assert!(is_cut(&g, 5, 2));
    }

    #[test]
    fn isolate_cuts_one_node_from_all() {
        let g = isolate(&FIVE, 3);
        assert_eq!(connected(&g, 3), 0);
        assert_eq!(connected(&g, 1), 3);
    }

    #[test]
    fn halves_leave_a_majority_side() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let g = random_halves(&FIVE, &mut rng);
        let mut sizes: Vec<usize> = FIVE.iter().map(|&a| connected(&g, a) + 1).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![2, 2, 3, 3, 3]);
    }

    #[test]
    fn majorities_ring_gives_every_node_a_majority_and_no_common_one() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let g = majorities_ring(&FIVE, &mut rng);
            for &a in &FIVE {
                assert_eq!(connected(&g, a), 2, "seed {seed}: node {a} sees a majority");
            }
            // No node sees everyone, so no single majority is shared by all.
            assert!(FIVE.iter().all(|&a| connected(&g, a) < 4));
        }
    }

    #[test]
    fn bridge_node_sees_both_halves_that_cannot_see_each_other() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let g = bridge(&FIVE, &mut rng);
        let bridges: Vec<NodeId> = FIVE
            .iter()
            .copied()
            .filter(|&a| connected(&g, a) == 4)
            .collect();
        assert_eq!(bridges.len(), 1);
        let others: Vec<NodeId> = FIVE
            .iter()
            .copied()
            .filter(|a| !bridges.contains(a))
            .collect();
        assert!(others.iter().all(|&a| connected(&g, a) == 2));
    }

    #[test]
    fn same_seed_same_partition() {
        let a = random_halves(&FIVE, &mut ChaCha8Rng::seed_from_u64(11));
        let b = random_halves(&FIVE, &mut ChaCha8Rng::seed_from_u64(11));
        assert_eq!(a, b);
    }
}

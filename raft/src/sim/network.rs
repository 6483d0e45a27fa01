//! The simulated network: per-message delay, loss, duplication and
//! reordering drawn from the cluster's seeded RNG, plus link cuts.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use crate::message::Message;
use crate::types::NodeId;

/// How messages travel. Delays are in simulated time units (think ms).
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Shortest delivery delay.
    pub min_delay: u64,
    /// Longest ordinary delivery delay; delays are uniform in
    /// `min_delay..=max_delay`, so messages overtake each other.
    pub max_delay: u64,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice.
    pub duplicate_rate: f64,
    /// Probability that a message is held back for up to `long_delay_max`,
    /// arriving long after newer ones.
    pub long_delay_rate: f64,
    /// Longest hold-back for delayed messages.
    pub long_delay_max: u64,
}

impl NetConfig {
    /// Short random delays, nothing lost.
    pub fn reliable() -> Self {
        NetConfig {
            min_delay: 1,
            max_delay: 5,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            long_delay_rate: 0.0,
            long_delay_max: 0,
        }
    }

    /// Like the 6.824 "unreliable" network: 10% loss, some duplicates,
    /// longer and occasionally very long delays.
    pub fn unreliable() -> Self {
        NetConfig {
            min_delay: 1,
            max_delay: 27,
            drop_rate: 0.1,
            duplicate_rate: 0.05,
            long_delay_rate: 0.05,
            long_delay_max: 200,
        }
    }

    /// Zero delay, in order, nothing lost: measures the Raft core alone.
    pub fn instant() -> Self {
        NetConfig {
            min_delay: 0,
            max_delay: 0,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            long_delay_rate: 0.0,
            long_delay_max: 0,
        }
    }
}

struct InFlight {
    at: u64,
    seq: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Traffic counters, for RPC-budget and byte-count tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages handed to a node.
    pub delivered: u64,
    /// Messages lost to drops, cut links or crashed receivers.
    pub dropped: u64,
    /// Application payload bytes (entries and snapshots) handed to the
    /// network.
    pub payload_bytes: u64,
    /// Messages handed to the network, by `MessageBody::kind`.
    pub sent_by_kind: BTreeMap<&'static str, u64>,
}

impl NetStats {
    /// Messages of one kind (e.g. `"InstallSnapshot"`) handed to the network.
    pub fn sent_of(&self, kind: &str) -> u64 {
        self.sent_by_kind.get(kind).copied().unwrap_or(0)
    }
}

pub(crate) struct Network {
    pub(crate) config: NetConfig,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    /// Nodes cut off from everyone.
    isolated: BTreeSet<NodeId>,
    /// Individual directed links that are down.
    cut: BTreeSet<(NodeId, NodeId)>,
    pub(crate) stats: NetStats,
}

impl Network {
    pub(crate) fn new(config: NetConfig) -> Self {
        Network {
            config,
            queue: BinaryHeap::new(),
            seq: 0,
            isolated: BTreeSet::new(),
            cut: BTreeSet::new(),
            stats: NetStats::default(),
        }
    }

    pub(crate) fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.isolated.contains(&from)
            && !self.isolated.contains(&to)
            && !self.cut.contains(&(from, to))
    }

    pub(crate) fn is_isolated(&self, id: NodeId) -> bool {
        self.isolated.contains(&id)
    }

    pub(crate) fn isolate(&mut self, id: NodeId, isolated: bool) {
        if isolated {
            self.isolated.insert(id);
        } else {
            self.isolated.remove(&id);
        }
    }

    pub(crate) fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        if up {
            self.cut.remove(&(from, to));
        } else {
            self.cut.insert((from, to));
        }
    }

    pub(crate) fn heal(&mut self) {
        self.isolated.clear();
        self.cut.clear();
    }

    pub(crate) fn send(&mut self, now: u64, msg: Message, rng: &mut ChaCha8Rng) {
        self.stats.sent += 1;
        self.stats.payload_bytes += msg.body.payload_len();
        *self.stats.sent_by_kind.entry(msg.body.kind()).or_insert(0) += 1;
        if !self.link_up(msg.from, msg.to) || chance(rng, self.config.drop_rate) {
            self.stats.dropped += 1;
            return;
        }
        if chance(rng, self.config.duplicate_rate) {
            let at = now + self.delay(rng);
            self.push(at, msg.clone());
        }
        let at = now + self.delay(rng);
        self.push(at, msg);
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> u64 {
        let c = &self.config;
        let mut delay = if c.max_delay > c.min_delay {
            rng.random_range(c.min_delay..=c.max_delay)
        } else {
            c.min_delay
        };
        if c.long_delay_max > 0 && chance(rng, c.long_delay_rate) {
            delay += rng.random_range(0..=c.long_delay_max);
        }
        delay
    }

    fn push(&mut self, at: u64, msg: Message) {
        self.seq += 1;
        self.queue.push(InFlight {
            at,
            seq: self.seq,
            msg,
        });
    }

    pub(crate) fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|m| m.at)
    }

    /// The next message due, if its link is still up when it arrives.
    pub(crate) fn pop(&mut self) -> Option<(u64, Option<Message>)> {
        let InFlight { at, msg, .. } = self.queue.pop()?;
        if self.link_up(msg.from, msg.to) {
            Some((at, Some(msg)))
        } else {
            self.stats.dropped += 1;
            Some((at, None))
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

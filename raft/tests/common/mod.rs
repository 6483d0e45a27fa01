//! Helpers shared by the scenario and randomized tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use bytes::Bytes;
use raft::sim::{Cluster, NetConfig, SimError, SimOptions};
use raft::{NodeId, Role};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// A command payload that is unique per test and counter, so the checker
/// can tell any two commands apart.
pub fn cmd(n: u64) -> Bytes {
    Bytes::from(format!("cmd-{n}"))
}

/// A fresh cluster with default options.
pub fn cluster(nodes: usize, seed: u64) -> Cluster {
    Cluster::new(SimOptions::new(nodes, seed))
}

/// The kinds of randomized schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Proposals mixed with crashes, restarts, partitions, lossy networks,
    /// leadership transfers and reads.
    MixedFaults,
    /// The 6.824 Figure 8 pattern: leaders crash shortly after taking
    /// office, leaving partly replicated entries of many terms behind.
    LeaderChurn,
}

/// What one randomized schedule did, for reporting.
#[derive(Debug, Default)]
pub struct ScheduleStats {
    /// Proposals a leader accepted.
    pub proposals: u64,
    pub committed: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub events: u64,
}

/// Runs one randomized schedule: random cluster size, Raft options and
/// network, then a random mix of proposals, crashes, restarts, partitions,
/// leadership transfers and reads, with every safety invariant checked after
/// every step. It ends by healing everything and requiring the cluster to
/// commit a new command on every node (liveness after faults stop).
/// `family` forces a kind of schedule (else drawn from the seed); `tweak`
/// may adjust the options (e.g. inject bugs).
pub fn run_schedule(
    seed: u64,
    family: Option<Family>,
    tweak: impl FnOnce(&mut SimOptions),
) -> Result<ScheduleStats, SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa17_11e5);
    let nodes = if rng.random_bool(0.6) { 3 } else { 5 };
    let mut opts = SimOptions::new(nodes, seed);
    let cfg = &mut opts.node_config;
    cfg.pre_vote = rng.random_bool(0.7);
    cfg.check_quorum = rng.random_bool(0.7);
    cfg.max_size_per_msg = [0, 16, 1 << 20][rng.random_range(0..3)];
    cfg.max_inflight_msgs = [1, 4, 256][rng.random_range(0..3)];
    opts.net = random_net(&mut rng);
    opts.snapshot_every = if rng.random_bool(0.4) {
        Some(rng.random_range(3..20))
    } else {
        None
    };
    let drawn = if rng.random_bool(0.3) {
        Family::LeaderChurn
    } else {
        Family::MixedFaults
    };
    let family = family.unwrap_or(drawn);
    let churn = family == Family::LeaderChurn;
    if churn {
        // Figure 8 needs entries of many terms replicated to some nodes but
        // not others: one entry per message over a very lossy network.
        opts.node_config.max_size_per_msg = 0;
        opts.net = NetConfig {
            min_delay: 1,
            max_delay: rng.random_range(2..40),
            drop_rate: rng.random_range(0.2..0.45),
            duplicate_rate: 0.02,
            long_delay_rate: 0.0,
            long_delay_max: 0,
        };
    }
    tweak(&mut opts);
    let mut c = Cluster::new(opts);
    let mut stats = ScheduleStats::default();
    let mut next_cmd = seed << 20;
    if churn {
        leader_churn(&mut c, &mut rng, &mut stats, &mut next_cmd)?;
    } else {
        mixed_faults(&mut c, &mut rng, &mut stats, &mut next_cmd)?;
    }
    // Faults stop: everything must heal and make progress.
    c.heal();
    c.set_net(NetConfig::reliable());
    for id in c.ids().collect::<Vec<_>>() {
        c.restart(id)?;
    }
    next_cmd += 1;
    c.one(cmd(next_cmd), nodes, true)?;
    if c.step_errors() > 0 {
        return Err(SimError::Expectation {
            at: c.now(),
            what: format!("{} messages were refused as malformed", c.step_errors()),
        });
    }
    stats.committed = c.max_committed();
    stats.events = c.net_stats().delivered;
    Ok(stats)
}

/// Random proposals, crashes, restarts, partitions, transfers and reads.
fn mixed_faults(
    c: &mut Cluster,
    rng: &mut ChaCha8Rng,
    stats: &mut ScheduleStats,
    next_cmd: &mut u64,
) -> Result<(), SimError> {
    let mut next_read = 0;
    let duration = 3_000;
    while c.now() < duration {
        let ids: Vec<NodeId> = c.ids().collect();
        let pick = |rng: &mut ChaCha8Rng| ids[rng.random_range(0..ids.len())];
        match rng.random_range(0..100) {
            0..45 => {
                let target = match c.leader() {
                    Some(l) if rng.random_bool(0.8) => l,
                    _ => pick(rng),
                };
                for _ in 0..rng.random_range(1..4) {
                    *next_cmd += 1;
                    if c.propose(target, cmd(*next_cmd))?.is_ok() {
                        stats.proposals += 1;
                    }
                }
            }
            45..53 => {
                let victim = match c.leader() {
                    Some(l) if rng.random_bool(0.5) => l,
                    _ => pick(rng),
                };
                stats.crashes += 1;
                c.crash(victim)?;
            }
            53..63 => c.restart(pick(rng))?,
            63..69 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for &id in &ids {
                    if rng.random_bool(0.5) {
                        a.push(id)
                    } else {
                        b.push(id)
                    }
                }
                stats.partitions += 1;
                c.partition(&[&a, &b]);
            }
            69..76 => c.heal(),
            76..80 => {
                let id = pick(rng);
                if rng.random_bool(0.5) {
                    c.disconnect(id)
                } else {
                    c.connect(id)
                }
            }
            80..84 => {
                if let Some(l) = c.leader() {
                    let _ = c.transfer_leader(l, pick(rng))?;
                }
            }
            84..92 => {
                // Any node that believes it leads, stale ones included.
                let leaders: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|&id| c.node(id).is_some_and(|n| n.role() == Role::Leader))
                    .collect();
                if !leaders.is_empty() {
                    next_read += 1;
                    let l = leaders[rng.random_range(0..leaders.len())];
                    let _ = c.read_index(l, next_read)?;
                }
            }
            _ => {
                let net = random_net(rng);
                c.set_net(net);
            }
        }
        let pause = rng.random_range(1..80);
        c.run_for(pause)?;
    }
    Ok(())
}

/// The 6.824 Figure 8 schedule: propose at every node, let a little (rarely
/// a lot of) time pass, crash the leader, restart nodes to keep a majority.
fn leader_churn(
    c: &mut Cluster,
    rng: &mut ChaCha8Rng,
    stats: &mut ScheduleStats,
    next_cmd: &mut u64,
) -> Result<(), SimError> {
    let ids: Vec<NodeId> = c.ids().collect();
    let quorum = ids.len() / 2 + 1;
    let mut up = ids.len();
    while c.now() < 20_000 {
        let mut leader = None;
        for &id in &ids {
            *next_cmd += 1;
            if c.propose(id, cmd(*next_cmd))?.is_ok() {
                stats.proposals += 1;
                leader = Some(id);
            }
        }
        let pause = if rng.random_bool(0.1) {
            rng.random_range(0..500)
        } else {
            rng.random_range(0..14)
        };
        c.run_for(pause)?;
        if let Some(l) = leader {
            stats.crashes += 1;
            c.crash(l)?;
            up -= 1;
        }
        if up < quorum {
            let id = ids[rng.random_range(0..ids.len())];
            if !c.is_up(id) {
                c.restart(id)?;
                up += 1;
            }
        }
    }
    Ok(())
}

fn random_net(rng: &mut ChaCha8Rng) -> NetConfig {
    if rng.random_bool(0.4) {
        NetConfig::reliable()
    } else {
        NetConfig {
            min_delay: 1,
            max_delay: rng.random_range(2..40),
            drop_rate: rng.random_range(0.0..0.3),
            duplicate_rate: rng.random_range(0.0..0.1),
            long_delay_rate: rng.random_range(0.0..0.1),
            long_delay_max: 300,
        }
    }
}

/// Whether exactly one running node leads.
pub fn single_leader(c: &Cluster) -> bool {
    c.ids()
        .filter(|&id| c.node(id).is_some_and(|r| r.role() == Role::Leader))
        .count()
        == 1
}

/// Number of seeds for randomized runs: `RAFT_FUZZ_SEEDS` or `default`.
pub fn seed_count(default: u64) -> u64 {
    std::env::var("RAFT_FUZZ_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

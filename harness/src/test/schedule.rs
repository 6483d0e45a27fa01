//! The nemesis schedule: which fault happens when, drawn from the seed
//! before the run starts.
//!
//! A run alternates fault and calm: every `nemesis_interval` a fault starts,
//! lasts 40–70% of the interval, and is repaired before the next. Drawing the
//! whole schedule up front makes it part of the replayable configuration:
//! `faultline replay` injects the same faults at the same offsets. Only
//! "the leader" stays a run-time choice, since who leads depends on timing.
//!
//! With `--nemesis-overlap` the faults are composed, as Jepsen composes
//! nemeses: each [`Lane`] (network, process, reconfiguration) runs its own
//! cycle, from its own random stream and with its own phase, so a node can
//! be killed while a partition is in force, or a shard move can start while
//! the leader is paused. Within a lane faults still never overlap, which
//! keeps every undo simple: healing lifts the one partition in force,
//! reviving restarts exactly the nodes that one fault stopped.

use std::time::Duration;

use nemesis::{Grudge, NodeId, grudge};
use rand::rngs::ChaCha8Rng;
use rand::seq::IndexedRandom;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::config::FaultKind;

/// Mixed into the run seed so the schedule's randomness is independent of
/// the workload's.
const SCHEDULE_SALT: u64 = 0x6e65_6d65_7369_7321;

/// Every fault of a run, in start order; faults of one [`Lane`] never
/// overlap, and without `--nemesis-overlap` no two faults do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The faults.
    #[serde(default)]
    pub faults: Vec<ScheduledFault>,
}

/// One fault window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Pairs the start and end events in `nemesis.jsonl`.
    pub id: u64,
    /// When it starts, in ms since the clients started.
    pub start_ms: u64,
    /// When it is repaired.
    pub end_ms: u64,
    /// What it is.
    pub fault: Fault,
}

/// A fault, with its random choices already made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// A network partition of a fixed shape: `cut` lists the node pairs
    /// that cannot talk.
    Partition {
        /// Which shape (for people reading the schedule).
        shape: String,
        /// Cut pairs.
        cut: Vec<[NodeId; 2]>,
    },
    /// The leader at the time of the fault, cut off from everyone.
    PartitionLeader,
    /// SIGKILL, restart on the same data directory when the fault ends.
    Kill {
        /// Whom.
        targets: Targets,
    },
    /// SIGSTOP, SIGCONT when the fault ends.
    Pause {
        /// Whom.
        targets: Targets,
    },
    /// A shard configuration change, chosen when it starts from the
    /// configuration of the moment (which depends on earlier changes that
    /// may have timed out) with this seed: join, leave or move.
    Reconfigure {
        /// Seeds the choice.
        seed: u64,
    },
}

/// A family of faults that may not overlap one another: one partition at a
/// time, one process fault at a time, one configuration change at a time.
/// Faults of different lanes may be in force together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Partitions.
    Network,
    /// Kills and pauses.
    Process,
    /// Shard configuration changes.
    Reconfigure,
}

impl Lane {
    /// Every lane, in a fixed order (each lane's random stream depends on
    /// its place here, not on which other lanes a run uses).
    pub const ALL: [Lane; 3] = [Lane::Network, Lane::Process, Lane::Reconfigure];

    /// The lane of faults of `kind`; `None` for `none`.
    pub fn of_kind(kind: FaultKind) -> Option<Lane> {
        match kind {
            FaultKind::None => None,
            FaultKind::Partition
            | FaultKind::PartitionHalves
            | FaultKind::PartitionOne
            | FaultKind::PartitionLeader
            | FaultKind::PartitionRing
            | FaultKind::PartitionBridge => Some(Lane::Network),
            FaultKind::Kill | FaultKind::KillLeader | FaultKind::Pause | FaultKind::PauseLeader => {
                Some(Lane::Process)
            }
            FaultKind::Reconfigure => Some(Lane::Reconfigure),
        }
    }
}

/// Which nodes a process fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "who", rename_all = "kebab-case")]
pub enum Targets {
    /// These nodes (`label` says how they were chosen: one, minority, ...).
    Nodes {
        /// How they were chosen.
        label: String,
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// Whoever leads when the fault starts.
    Leader,
}

impl Fault {
    /// The lane the fault runs in.
    pub fn lane(&self) -> Lane {
        match self {
            Fault::Partition { .. } | Fault::PartitionLeader => Lane::Network,
            Fault::Kill { .. } | Fault::Pause { .. } => Lane::Process,
            Fault::Reconfigure { .. } => Lane::Reconfigure,
        }
    }

    /// The fault's family, as recorded in `nemesis.jsonl`.
    pub fn family(&self) -> &'static str {
        match self {
            Fault::Partition { .. } | Fault::PartitionLeader => "partition",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Reconfigure { .. } => "reconfigure",
        }
    }
}

/// The cut pairs of a grudge, each pair once, smaller id first.
pub fn cut_pairs(grudge: &Grudge) -> Vec<[NodeId; 2]> {
    let mut pairs: Vec<[NodeId; 2]> = grudge
        .iter()
        .flat_map(|(&a, set)| set.iter().map(move |&b| [a.min(b), a.max(b)]))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// The grudge that cuts exactly `pairs`.
pub fn grudge_of(pairs: &[[NodeId; 2]]) -> Grudge {
    let mut grudge = Grudge::new();
    for &[a, b] in pairs {
        grudge.entry(a).or_default().insert(b);
        grudge.entry(b).or_default().insert(a);
    }
    grudge
}

impl Schedule {
    /// Draws the schedule of a run: `kinds` to choose from, cycles of
    /// `interval` over `time_limit`. The first fault waits half an interval
    /// (at most 5 s) so the cluster has a leader to lose. With `overlap`,
    /// each lane of `kinds` gets its own cycles (see the module doc).
    pub fn draw(
        seed: u64,
        nodes: u64,
        kinds: &[FaultKind],
        time_limit: Duration,
        interval: Duration,
        overlap: bool,
    ) -> Schedule {
        let kinds: Vec<FaultKind> = kinds
            .iter()
            .copied()
            .filter(|&k| k != FaultKind::None)
            .collect();
        let ids: Vec<NodeId> = (1..=nodes).collect();
        let (limit, interval) = (millis(time_limit), millis(interval));
        let first = (interval / 2).min(5_000);
        let mut faults = Vec::new();
        if !overlap {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SCHEDULE_SALT);
            faults = cycles(&kinds, &ids, first, limit, interval, &mut rng);
        } else {
            let lanes: Vec<Lane> = Lane::ALL
                .into_iter()
                .filter(|&lane| kinds.iter().any(|&k| Lane::of_kind(k) == Some(lane)))
                .collect();
            for (place, lane) in Lane::ALL.into_iter().enumerate() {
                let Some(rank) = lanes.iter().position(|&l| l == lane) else {
                    continue;
                };
                let lane_kinds: Vec<FaultKind> = kinds
                    .iter()
                    .copied()
                    .filter(|&k| Lane::of_kind(k) == Some(lane))
                    .collect();
                // Lanes start staggered across one interval, so their
                // windows overlap in part rather than start together.
                let phase = first + interval * rank as u64 / lanes.len() as u64;
                let mut rng =
                    ChaCha8Rng::seed_from_u64(seed ^ SCHEDULE_SALT ^ ((place as u64 + 1) << 56));
                faults.extend(cycles(&lane_kinds, &ids, phase, limit, interval, &mut rng));
            }
            faults.sort_by_key(|f| (f.start_ms, f.fault.lane()));
        }
        for (n, fault) in faults.iter_mut().enumerate() {
            fault.id = n as u64 + 1;
        }
        Schedule { faults }
    }
}

/// One fault of `kinds` every `interval` from `start` until `limit`, each
/// lasting 40–70% of the interval (ids are assigned by the caller).
fn cycles(
    kinds: &[FaultKind],
    ids: &[NodeId],
    mut start: u64,
    limit: u64,
    interval: u64,
    rng: &mut ChaCha8Rng,
) -> Vec<ScheduledFault> {
    let mut faults = Vec::new();
    if kinds.is_empty() {
        return faults;
    }
    while start < limit {
        let length = (interval as f64 * rng.random_range(0.4..0.7)) as u64;
        let kind = *kinds.choose(rng).expect("kinds is not empty");
        faults.push(ScheduledFault {
            id: 0,
            start_ms: start,
            end_ms: (start + length.max(1)).min(limit),
            fault: draw_fault(kind, ids, rng),
        });
        start += interval;
    }
    faults
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn draw_fault(kind: FaultKind, ids: &[NodeId], rng: &mut ChaCha8Rng) -> Fault {
    let partition = |shape: &str, g: Grudge| Fault::Partition {
        shape: shape.to_owned(),
        cut: cut_pairs(&g),
    };
    match kind {
        FaultKind::Partition => {
            let mut shapes = vec![
                FaultKind::PartitionHalves,
                FaultKind::PartitionOne,
                FaultKind::PartitionLeader,
            ];
            if ids.len() >= 3 {
                shapes.extend([FaultKind::PartitionRing, FaultKind::PartitionBridge]);
            }
            let shape = *shapes.choose(rng).expect("not empty");
            draw_fault(shape, ids, rng)
        }
        FaultKind::PartitionHalves => partition("halves", grudge::random_halves(ids, rng)),
        FaultKind::PartitionOne => {
            let node = *ids.choose(rng).expect("at least one node");
            partition("one", grudge::isolate(ids, node))
        }
        FaultKind::PartitionLeader => Fault::PartitionLeader,
        FaultKind::PartitionRing => partition("majorities-ring", grudge::majorities_ring(ids, rng)),
        FaultKind::PartitionBridge => partition("bridge", grudge::bridge(ids, rng)),
        FaultKind::Kill => Fault::Kill {
            targets: draw_targets(ids, rng, &["one", "minority", "majority", "all", "leader"]),
        },
        FaultKind::KillLeader => Fault::Kill {
            targets: Targets::Leader,
        },
        FaultKind::Pause => Fault::Pause {
            targets: draw_targets(ids, rng, &["one", "minority", "leader"]),
        },
        FaultKind::PauseLeader => Fault::Pause {
            targets: Targets::Leader,
        },
        FaultKind::Reconfigure => Fault::Reconfigure { seed: rng.random() },
        FaultKind::None => unreachable!("`none` is filtered out before drawing"),
    }
}

fn draw_targets(ids: &[NodeId], rng: &mut ChaCha8Rng, choices: &[&str]) -> Targets {
    let label = *choices.choose(rng).expect("choices are not empty");
    let n = ids.len();
    let count = match label {
        "one" => 1,
        "minority" => (n - 1) / 2,
        "majority" => n / 2 + 1,
        "all" => n,
        _ => return Targets::Leader,
    }
    .max(1);
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    let mut nodes = shuffled[..count].to_vec();
    nodes.sort_unstable();
    Targets::Nodes {
        label: label.to_owned(),
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, kinds: &[FaultKind]) -> Schedule {
        Schedule::draw(
            seed,
            5,
            kinds,
            Duration::from_secs(60),
            Duration::from_secs(10),
            false,
        )
    }

    fn draw_overlapping(seed: u64, kinds: &[FaultKind]) -> Schedule {
        Schedule::draw(
            seed,
            5,
            kinds,
            Duration::from_secs(60),
            Duration::from_secs(10),
            true,
        )
    }

    /// Whether faults `a` and `b` are in force at some common moment.
    fn overlap(a: &ScheduledFault, b: &ScheduledFault) -> bool {
        a.start_ms < b.end_ms && b.start_ms < a.end_ms
    }

    #[test]
    fn composed_faults_overlap_across_lanes_but_never_within_one() {
        let kinds = [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];
        let s = draw_overlapping(5, &kinds);
        // Two lanes (network; kill and pause share the process lane), each
        // with a fault every 10 s over 60 s: the network's from 5 s, the
        // process lane's half an interval later, from 10 s.
        assert_eq!(s.faults.len(), 6 + 5);
        let mut across = 0;
        for (i, a) in s.faults.iter().enumerate() {
            for b in &s.faults[i + 1..] {
                if !overlap(a, b) {
                    continue;
                }
                assert_ne!(a.fault.lane(), b.fault.lane(), "{a:?} overlaps {b:?}");
                across += 1;
            }
        }
        assert!(across > 0, "composed lanes never overlapped: {s:?}");
        let ids: Vec<u64> = s.faults.iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            (1..=11).collect::<Vec<u64>>(),
            "ids follow start order"
        );
        assert!(s.faults.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
        assert!(s.faults.iter().all(|f| f.end_ms <= 60_000));
    }

    #[test]
    fn a_lanes_faults_do_not_depend_on_the_other_lanes_of_the_run() {
        let network = |s: Schedule| -> Vec<Fault> {
            s.faults
                .into_iter()
                .filter(|f| f.fault.lane() == Lane::Network)
                .map(|f| f.fault)
                .collect()
        };
        let alone = network(draw_overlapping(9, &[FaultKind::Partition]));
        let composed = network(draw_overlapping(
            9,
            &[FaultKind::Partition, FaultKind::Kill],
        ));
        assert_eq!(alone, composed);
    }

    #[test]
    fn one_lane_with_overlap_is_the_plain_cycle_of_that_lane() {
        let s = draw_overlapping(4, &[FaultKind::Kill, FaultKind::Pause]);
        assert_eq!(s.faults.len(), 6);
        for pair in s.faults.windows(2) {
            assert!(!overlap(&pair[0], &pair[1]));
        }
    }

    #[test]
    fn same_seed_same_schedule_and_other_seed_differs() {
        let kinds = [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];
        assert_eq!(draw(7, &kinds), draw(7, &kinds));
        assert_ne!(draw(7, &kinds), draw(8, &kinds));
    }

    #[test]
    fn faults_do_not_overlap_and_end_by_the_time_limit() {
        let s = draw(3, &[FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(s.faults.len(), 6);
        for pair in s.faults.windows(2) {
            assert!(pair[0].end_ms <= pair[1].start_ms);
        }
        for f in &s.faults {
            assert!(f.start_ms < f.end_ms && f.end_ms <= 60_000);
        }
    }

    #[test]
    fn none_means_no_faults() {
        assert!(draw(1, &[FaultKind::None]).faults.is_empty());
    }

    #[test]
    fn kill_minority_never_takes_a_majority() {
        for seed in 0..50 {
            for f in draw(seed, &[FaultKind::Kill]).faults {
                if let Fault::Kill {
                    targets: Targets::Nodes { label, nodes },
                } = f.fault
                {
                    let expected = match label.as_str() {
                        "one" => 1,
                        "minority" => 2,
                        "majority" => 3,
                        "all" => 5,
                        other => panic!("unexpected label {other}"),
                    };
                    assert_eq!(nodes.len(), expected);
                }
            }
        }
    }

    #[test]
    fn schedule_survives_a_toml_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Wrapper {
            schedule: Schedule,
        }
        let w = Wrapper {
            schedule: draw(
                5,
                &[FaultKind::Partition, FaultKind::Kill, FaultKind::Pause],
            ),
        };
        let text = toml::to_string(&w).unwrap();
        assert_eq!(toml::from_str::<Wrapper>(&text).unwrap(), w);
    }

    #[test]
    fn cut_pairs_and_grudge_are_inverse() {
        let g = grudge::from_groups(&[1, 2, 3], &[vec![1], vec![2, 3]]);
        let pairs = cut_pairs(&g);
        assert_eq!(pairs, vec![[1, 2], [1, 3]]);
        assert_eq!(grudge_of(&pairs), g);
    }
}

//! Thousands of seeded random schedules (see `common::run_schedule`) with
//! every safety invariant checked after every step, and liveness required
//! once faults stop. `RAFT_FUZZ_SEEDS=<n>` runs more (default 10,000); a
//! failure prints its seed, and `RAFT_FUZZ_SEED=<seed>` replays just that
//! one, identically.

mod common;

use std::time::Instant;

const DEFAULT_SEEDS: u64 = 10_000;

fn replay_seed() -> Option<u64> {
    std::env::var("RAFT_FUZZ_SEED").ok()?.parse().ok()
}

fn run_seeds(seeds: std::ops::Range<u64>) {
    let started = Instant::now();
    let (mut proposals, mut committed, mut crashes) = (0, 0, 0);
    for seed in seeds.clone() {
        match common::run_schedule(seed, None, |_| {}) {
            Ok(stats) => {
                proposals += stats.proposals;
                committed += stats.committed;
                crashes += stats.crashes;
            }
            Err(e) => panic!(
                "seed {seed} failed: {e}\nreplay with: RAFT_FUZZ_SEED={seed} cargo test -p raft --test randomized"
            ),
        }
    }
    eprintln!(
        "seeds {seeds:?}: {proposals} proposals accepted, {committed} entries committed, \
         {crashes} crashes, in {:?}",
        started.elapsed()
    );
}

// Two halves so that the test harness runs them on both cores.
#[test]
fn random_schedules_keep_raft_safe_and_live_first_half() {
    if let Some(seed) = replay_seed() {
        run_seeds(seed..seed + 1);
        return;
    }
    let total = common::seed_count(DEFAULT_SEEDS);
    run_seeds(0..total / 2);
}

#[test]
fn random_schedules_keep_raft_safe_and_live_second_half() {
    if replay_seed().is_some() {
        return;
    }
    let total = common::seed_count(DEFAULT_SEEDS);
    run_seeds(total / 2..total);
}

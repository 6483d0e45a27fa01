//! The sharded service under concurrent clients while the controller keeps
//! moving shards, and while whole groups crash and restart mid-migration.
//! Every run records its history: each acknowledged append must be in the
//! final value exactly once, and the history must be linearizable.
//!
//! The pauses between configuration changes pace the churn so that clients
//! get work done in between; no check depends on them.

mod kvd_harness;
mod shard_support;

use std::time::Duration;

use client::GroupId;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use shard_support::recorded::Journal;
use shard_support::workload::{self, Workload};
use shard_support::{FIRST_GID, NSHARDS, Setup, ShardedCluster, shards_of};

const A: u64 = FIRST_GID;
const B: u64 = FIRST_GID + 1;
const C: u64 = FIRST_GID + 2;

/// How long a workload client waits on one operation before recording it
/// as unknown and starting a new session.
const OP_DEADLINE: Duration = Duration::from_secs(5);
const PACE: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_and_configuration_changes_lose_and_duplicate_nothing() {
    let c = ShardedCluster::start(Setup::new(3, 41)).await;
    c.join(&[A]).await;
    let workload = Workload {
        clients: 10,
        shared_keys: 0,
        register_keys: 0,
    };
    let journal = Journal::create(c.path());
    let client = std::sync::Arc::new(c.new_client(OP_DEADLINE));
    let running = workload::start(&client, &journal, &workload, 41);

    for step in [
        Churn::Join(B),
        Churn::Join(C),
        Churn::Leave(A),
        Churn::Join(A),
        Churn::Leave(B),
        Churn::Join(B),
        Churn::Leave(C),
    ] {
        tokio::time::sleep(PACE).await;
        step.apply(&c).await;
    }
    tokio::time::sleep(PACE).await;
    let tally = running.finish().await;
    eprintln!("workload outcomes: {tally:?}");

    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    workload::check_all(&journal, c.client(), &workload).await;
    assert!(tally.ok > 50, "too little got done to mean much: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_puts_and_configuration_changes_stay_linearizable() {
    let c = ShardedCluster::start(Setup::new(3, 42)).await;
    c.join(&[A, B]).await;
    let workload = Workload {
        clients: 10,
        shared_keys: 3,
        register_keys: 2,
    };
    let journal = Journal::create(c.path());
    let client = std::sync::Arc::new(c.new_client(OP_DEADLINE));
    let running = workload::start(&client, &journal, &workload, 42);

    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut changes = 0;
    for _ in 0..20 {
        tokio::time::sleep(PACE / 2).await;
        let config = c.latest_config().await;
        random_churn(&mut rng, &config).apply(&c).await;
        changes += 1;
    }
    tokio::time::sleep(PACE).await;
    let tally = running.finish().await;
    eprintln!("workload outcomes: {tally:?}");

    let config = c.latest_config().await;
    assert!(config.num > changes, "{config:?}");
    c.wait_all_settled(&config).await;
    workload::check_all(&journal, c.client(), &workload).await;
    assert!(tally.ok > 50, "too little got done to mean much: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_configuration_changes_and_restarts_of_whole_groups_lose_nothing() {
    let mut c = ShardedCluster::start(Setup::new(3, 43)).await;
    c.join(&[A, B]).await;
    let workload = Workload {
        clients: 8,
        shared_keys: 2,
        register_keys: 0,
    };
    let journal = Journal::create(c.path());
    // Impatient clients: operations caught by a dead group end unknown, and
    // their clients go on with new sessions.
    let client = std::sync::Arc::new(c.new_client(Duration::from_millis(700)));
    let running = workload::start(&client, &journal, &workload, 43);
    tokio::time::sleep(PACE).await;

    // A group restarts while shards move to a newcomer.
    c.join(&[C]).await;
    c.kill_group(A);
    tokio::time::sleep(PACE / 4).await;
    c.start_group(A).await;
    tokio::time::sleep(PACE).await;

    // Both ends of one migration die at once, right after it is decided.
    let config = c.latest_config().await;
    let shard = shards_of(&config, A)[0];
    c.move_shard(shard, B).await;
    c.kill_group(A);
    c.kill_group(B);
    // Down for longer than a client waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.start_group(B).await;
    c.start_group(A).await;
    tokio::time::sleep(PACE).await;

    // A leave with the receiving groups restarting one node at a time.
    c.leave(&[B]).await;
    for gid in [A, C] {
        for i in 0..shard_support::GROUP_SIZE {
            c.kill_node(gid, i);
            c.start_node(gid, i).await;
        }
    }
    c.join(&[B]).await;
    tokio::time::sleep(PACE).await;
    let tally = running.finish().await;
    eprintln!("workload outcomes: {tally:?}");

    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    workload::check_all(&journal, c.client(), &workload).await;
    assert!(tally.ok > 50, "too little got done to mean much: {tally:?}");
}

/// One configuration change.
#[derive(Debug, Clone, Copy)]
enum Churn {
    Join(GroupId),
    Leave(GroupId),
    Move(u32, GroupId),
}

impl Churn {
    async fn apply(self, c: &ShardedCluster) {
        match self {
            Churn::Join(gid) => c.join(&[gid]).await,
            Churn::Leave(gid) => c.leave(&[gid]).await,
            Churn::Move(shard, gid) => c.move_shard(shard, gid).await,
        }
    }
}

/// A random change that keeps at least one group in: a join of a group
/// that is out, a leave of one that is in, or a move between those in.
fn random_churn(rng: &mut ChaCha8Rng, config: &client::ShardConfig) -> Churn {
    let all = [A, B, C];
    let ins: Vec<GroupId> = all
        .iter()
        .copied()
        .filter(|g| config.groups.contains_key(g))
        .collect();
    let outs: Vec<GroupId> = all
        .iter()
        .copied()
        .filter(|g| !config.groups.contains_key(g))
        .collect();
    match rng.random_range(0..3) {
        0 if !outs.is_empty() => Churn::Join(outs[rng.random_range(0..outs.len())]),
        1 if ins.len() > 1 => Churn::Leave(ins[rng.random_range(0..ins.len())]),
        _ => Churn::Move(
            rng.random_range(0..NSHARDS),
            ins[rng.random_range(0..ins.len())],
        ),
    }
}

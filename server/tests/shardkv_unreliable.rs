//! The sharded service on an unreliable network, in three steps: lossy,
//! slow links under configuration churn; the same plus node crashes; and
//! all of it under concurrent clients whose history must be linearizable.
//!
//! Every replica group's Raft links and client addresses (which shard pulls
//! between groups use too) run through proxies that delay every chunk and
//! kill connections at random.

mod kvd_harness;
mod shard_support;

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use shard_support::recorded::Journal;
use shard_support::workload::{self, Workload};
use shard_support::{Expected, FIRST_GID, GROUP_SIZE, Setup, ShardedCluster, keys_in_every_shard};

const A: u64 = FIRST_GID;
const B: u64 = FIRST_GID + 1;
const C: u64 = FIRST_GID + 2;

fn unreliable(seed: u64) -> Setup {
    Setup {
        unreliable: true,
        ..Setup::new(3, seed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_1_lossy_links_under_joins_and_leaves_keep_every_value() {
    let c = ShardedCluster::start(unreliable(51)).await;
    c.set_unreliable(true);
    c.join(&[A]).await;
    let keys = keys_in_every_shard("u1", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    for (step, (join, gid)) in [(true, B), (true, C), (false, A), (false, B), (true, A)]
        .into_iter()
        .enumerate()
    {
        if join {
            c.join(&[gid]).await;
        } else {
            c.leave(&[gid]).await;
        }
        expected.append_all(&mut clerk, &format!("+{step}")).await;
        expected.check(&mut clerk).await;
    }
    let dropped = c.dropped_connections();
    c.set_unreliable(false);
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    expected.check(&mut clerk).await;
    eprintln!("the proxies dropped {dropped} connections");
    assert!(
        dropped > 0,
        "the unreliable links never dropped a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_2_lossy_links_and_crashing_nodes_keep_every_value() {
    let mut c = ShardedCluster::start(unreliable(52)).await;
    c.set_unreliable(true);
    c.join(&[A, B]).await;
    let keys = keys_in_every_shard("u2", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    let mut rng = ChaCha8Rng::seed_from_u64(52);
    for step in 0..6 {
        // One node of one group crashes across a configuration change.
        let gid = c.gids()[rng.random_range(0..3)];
        let node = rng.random_range(0..GROUP_SIZE);
        c.kill_node(gid, node);
        match step % 3 {
            0 => c.join(&[C]).await,
            1 => c.leave(&[A]).await,
            _ => c.join(&[A]).await,
        }
        expected.append_all(&mut clerk, &format!("+{step}")).await;
        c.start_node(gid, node).await;
        if step % 3 == 2 {
            c.leave(&[C]).await;
        }
        expected.check(&mut clerk).await;
    }
    let dropped = c.dropped_connections();
    c.set_unreliable(false);
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    expected.check(&mut clerk).await;
    eprintln!("the proxies dropped {dropped} connections");
    assert!(
        dropped > 0,
        "the unreliable links never dropped a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_3_concurrent_appends_with_churn_and_crashes_stay_linearizable() {
    let mut c = ShardedCluster::start(unreliable(53)).await;
    c.set_unreliable(true);
    c.join(&[A]).await;
    let workload = Workload {
        clients: 8,
        shared_keys: 2,
        register_keys: 1,
    };
    let journal = Journal::create(c.path());
    let client = Arc::new(c.new_client(Duration::from_secs(5)));
    let running = workload::start(&client, &journal, &workload, 53);

    let mut rng = ChaCha8Rng::seed_from_u64(53);
    for step in 0..9 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Everyone out joins; with everyone in, one group leaves.
        let config = c.latest_config().await;
        let outs: Vec<u64> = [A, B, C]
            .into_iter()
            .filter(|g| !config.groups.contains_key(g))
            .collect();
        if outs.is_empty() {
            c.leave(&[[A, B, C][step % 3]]).await;
        } else {
            c.join(&outs).await;
        }
        let gid = c.gids()[rng.random_range(0..3)];
        let node = rng.random_range(0..GROUP_SIZE);
        c.kill_node(gid, node);
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.start_node(gid, node).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tally = running.finish().await;
    eprintln!("workload outcomes: {tally:?}");
    let dropped = c.dropped_connections();

    c.set_unreliable(false);
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    workload::check_all(&journal, c.client(), &workload).await;
    assert!(tally.ok > 30, "too little got done to mean much: {tally:?}");
    eprintln!("the proxies dropped {dropped} connections");
    assert!(
        dropped > 0,
        "the unreliable links never dropped a connection"
    );
}

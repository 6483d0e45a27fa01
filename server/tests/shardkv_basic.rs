//! The sharded service with a reliable network: shards stay where the
//! controller puts them, data follows shards through joins and leaves,
//! snapshots carry shard state across restarts of every group, and nodes
//! that slept through configuration changes catch up.

mod kvd_harness;
mod shard_support;

use std::collections::BTreeSet;
use std::time::Duration;

use shard_support::{
    Expected, FIRST_GID, GROUP_SIZE, Setup, ShardedCluster, keys_in_every_shard, shard_of,
    shards_of,
};

const A: u64 = FIRST_GID;
const B: u64 = FIRST_GID + 1;
const C: u64 = FIRST_GID + 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_shards_a_dead_group_takes_only_its_own_shards_offline() {
    let mut c = ShardedCluster::start(Setup::new(2, 11)).await;
    c.join(&[A, B]).await;
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    let keys = keys_in_every_shard("static", 1);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    expected.check(&mut clerk).await;

    c.kill_group(B);
    // Every key at once, each with a bounded clerk of its own.
    let impatient = c.new_client(Duration::from_secs(2));
    let mut reads = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let mut clerk = impatient.clerk();
        reads.spawn(async move {
            let got = clerk.get(&key).await;
            (key, got)
        });
    }
    let mut served = BTreeSet::new();
    while let Some(done) = reads.join_next().await {
        let (key, got) = done.expect("read task");
        let owner = config.shards[shard_of(&key) as usize];
        match got {
            Ok(value) => {
                assert_eq!(owner, A, "{key} on the dead group {owner} was served");
                assert_eq!(value.as_deref(), expected.get(&key), "{key}");
                served.insert(shard_of(&key));
            }
            Err(e) => assert_eq!(owner, B, "{key} on the live group {owner} failed: {e}"),
        }
    }
    assert_eq!(
        served,
        shards_of(&config, A).into_iter().collect::<BTreeSet<_>>(),
        "the live group must serve all of its shards"
    );

    c.start_group(B).await;
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_then_leave_moves_every_value_to_the_group_that_stays() {
    let mut c = ShardedCluster::start(Setup::new(2, 12)).await;
    c.join(&[A]).await;
    let keys = keys_in_every_shard("jl", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "first").await;

    c.join(&[B]).await;
    expected.check(&mut clerk).await;
    expected.append_all(&mut clerk, "+after-join").await;
    expected.check(&mut clerk).await;

    c.leave(&[A]).await;
    expected.check(&mut clerk).await;
    expected.append_all(&mut clerk, "+after-leave").await;

    // Once B holds everything and A has given it all away, A is not needed.
    let config = c.latest_config().await;
    assert_eq!(shards_of(&config, B).len(), 10, "{config:?}");
    c.wait_all_settled(&config).await;
    c.kill_group(A);
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_with_join_and_leave_carry_every_shard_across_a_restart_of_all_groups() {
    let setup = Setup {
        snapshot_threshold: Some(8 * 1024),
        ..Setup::new(3, 13)
    };
    let mut c = ShardedCluster::start(setup).await;
    c.join(&[A]).await;
    let keys = keys_in_every_shard("snap", 3);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    let padding = "p".repeat(200);
    expected.put_all(&mut clerk, &keys, &padding).await;

    c.join(&[B, C]).await;
    expected
        .append_all(&mut clerk, &format!("+bc{padding}"))
        .await;
    c.leave(&[B]).await;
    expected.append_all(&mut clerk, "+no-b").await;
    c.join(&[B]).await;
    c.leave(&[A]).await;
    expected
        .append_all(&mut clerk, &format!("+no-a{padding}"))
        .await;
    expected.check(&mut clerk).await;
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;

    // The threshold really made every group snapshot (so the restart
    // recovers shard state from snapshots, not only from logs).
    for gid in c.gids() {
        let mut snapshotted = false;
        for i in 0..GROUP_SIZE {
            let status = c.group(gid).nodes.status(i).await.expect("status");
            snapshotted |= status.snapshot_index > 0;
        }
        assert!(snapshotted, "no node of group {gid} took a snapshot");
    }

    c.restart_all_groups().await;
    c.wait_all_settled(&config).await;
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_miss_configuration_changes_catch_up_and_serve() {
    let mut c = ShardedCluster::start(Setup::new(3, 14)).await;
    c.join(&[A]).await;
    let keys = keys_in_every_shard("miss", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    c.join(&[B]).await;
    expected.check(&mut clerk).await;

    // Node 0 of every group sleeps through several configurations.
    for gid in c.gids() {
        c.kill_node(gid, 0);
    }
    c.join(&[C]).await;
    expected.append_all(&mut clerk, "+c").await;
    c.leave(&[B]).await;
    expected.append_all(&mut clerk, "+no-b").await;
    c.leave(&[A]).await;
    expected.append_all(&mut clerk, "+no-a").await;
    c.join(&[A, B]).await;
    expected.append_all(&mut clerk, "+ab").await;
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;

    for gid in c.gids() {
        c.start_node(gid, 0).await;
    }
    for gid in c.gids() {
        c.wait_for_config(gid, config.num).await;
    }
    // Without node 1, every group's majority needs the node that missed
    // the changes.
    for gid in c.gids() {
        c.kill_node(gid, 1);
    }
    expected.check(&mut clerk).await;
    expected.append_all(&mut clerk, "+late").await;
    expected.check(&mut clerk).await;
}

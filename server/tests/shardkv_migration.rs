//! Shard migration in detail: an old owner deletes what it gave away (and
//! storage shrinks, and no restart brings the shard back), shards that do
//! not move stay served while a migration is stuck on a dead group, and a
//! shard that has arrived is served before the rest of its configuration
//! has.

mod kvd_harness;
mod shard_support;

use std::time::Duration;

use client::{AttemptError, ShardState};
use shard_support::{
    Expected, FIRST_GID, NSHARDS, Setup, ShardedCluster, key_in_shard, keys_in_every_shard,
    shard_of, shards_of,
};
use wire::{Op, Reply};

const A: u64 = FIRST_GID;
const B: u64 = FIRST_GID + 1;
const C: u64 = FIRST_GID + 2;

/// Short enough that a few hundred kilobytes snapshot many times over.
const THRESHOLD: u64 = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_deletion_shrinks_the_old_owners_storage_and_survives_its_restart() {
    let setup = Setup {
        snapshot_threshold: Some(THRESHOLD),
        ..Setup::new(2, 31)
    };
    let mut c = ShardedCluster::start(setup).await;
    c.join(&[A]).await;
    // A keeps shard 0 and gives every other shard away: 9 shards × 16 keys
    // × 4 KiB, far more than a few thresholds.
    let kept = 0;
    let keys: Vec<String> = (1..NSHARDS)
        .flat_map(|s| (0..16).map(move |n| key_in_shard(s, "del", n)))
        .collect();
    let value = "d".repeat(4096);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, &value).await;
    let filled = c.latest_config().await;
    c.wait_all_settled(&filled).await;
    // Node 2 sleeps through the whole migration and the deletion.
    c.kill_node(A, 2);
    let full = c.node_dir_bytes(A, 0).max(c.node_dir_bytes(A, 1));

    c.join(&[B]).await;
    let config = c.latest_config().await;
    for s in shards_of(&config, A) {
        if s != kept {
            c.move_shard(s, B).await;
        }
    }
    if config.shards[kept as usize] != A {
        c.move_shard(kept, A).await;
    }
    let config = c.latest_config().await;
    assert_eq!(shards_of(&config, A), vec![kept], "{config:?}");
    // A holds only the kept shard: the others were deleted after B got them.
    c.wait_all_settled(&config).await;
    expected.check(&mut clerk).await;

    // Writes to the kept shard grow A's log until each live node snapshots
    // past the deletions.
    let deleted_by: Vec<u64> = {
        let mut v = Vec::new();
        for i in 0..2 {
            v.push(
                c.group(A)
                    .nodes
                    .status(i)
                    .await
                    .expect("status")
                    .applied_index,
            );
        }
        v
    };
    let filler = key_in_shard(kept, "filler", 0);
    let deadline = tokio::time::Instant::now() + kvd_harness::PATIENCE;
    'snapshotted: loop {
        clerk
            .put(&filler, &value)
            .await
            .expect("put to the kept shard");
        let mut all = true;
        for (i, &index) in deleted_by.iter().enumerate() {
            let status = c.group(A).nodes.status(i).await.expect("status");
            all &= status.snapshot_index > index;
        }
        if all {
            break 'snapshotted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {A} never snapshotted past its deletions"
        );
    }
    // The snapshot reaches the disk (and the old one goes) a little after
    // the status reports it.
    let shrunk = || (0..2).all(|i| c.node_dir_bytes(A, i) * 3 < full);
    let deadline = tokio::time::Instant::now() + kvd_harness::PATIENCE;
    while !shrunk() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..2 {
        let now = c.node_dir_bytes(A, i);
        eprintln!(
            "old owner node {}: {full} bytes with every shard, {now} after deleting and snapshotting",
            i + 1
        );
        assert!(
            now * 3 < full,
            "node {} of the old owner still holds {now} bytes (it held {full} with every shard)",
            i + 1
        );
    }

    // Neither the node that missed it all nor a restart of the whole group
    // brings a deleted shard back.
    c.start_node(A, 2).await;
    let only_kept = |s: &client::ShardGroupStatus| {
        s.config_num >= config.num && s.shards.keys().copied().collect::<Vec<_>>() == vec![kept]
    };
    c.wait_group(A, "holding only the kept shard", only_kept)
        .await;
    c.kill_group(A);
    c.start_group(A).await;
    c.wait_group(A, "holding only the kept shard after a restart", only_kept)
        .await;
    let mut direct = c.group_client(A, Duration::from_secs(2)).clerk();
    let refused = direct.get(&keys[0]).await;
    assert!(
        matches!(
            refused.as_ref().map_err(|e| e.last_attempt()),
            Err(Some(AttemptError::WrongGroup { .. }))
        ),
        "the old owner answered for a shard it gave away: {refused:?}"
    );
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaffected_shards_stay_served_while_a_migration_waits_on_a_dead_group() {
    let mut c = ShardedCluster::start(Setup::new(2, 32)).await;
    c.join(&[A]).await;
    let keys = keys_in_every_shard("unaffected", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    c.join(&[B]).await;
    let before = c.latest_config().await;
    c.wait_all_settled(&before).await;

    // A dies, then leaves: its shards must move to B but cannot.
    c.kill_group(A);
    c.leave(&[A]).await;
    let after = c.latest_config().await;
    let stuck = shards_of(&before, A);
    let unaffected = shards_of(&before, B);
    c.wait_group(B, "pulling the dead group's shards", |s| {
        s.config_num >= after.num
            && stuck
                .iter()
                .all(|sh| s.shards.get(sh) == Some(&ShardState::Pulling))
    })
    .await;

    // B's own shards answer reads and writes within a bounded wait; the
    // stuck ones do not answer at all.
    let mut bounded = c.new_client(Duration::from_secs(5)).clerk();
    for key in expected.keys() {
        let shard = shard_of(&key);
        if unaffected.contains(&shard) {
            let got = bounded
                .get(&key)
                .await
                .expect("an unaffected shard is served");
            assert_eq!(got.as_deref(), expected.get(&key), "{key}");
            expected.append(&mut bounded, &key, "+meanwhile").await;
        } else {
            let mut brief = c.new_client(Duration::from_millis(500)).clerk();
            assert!(
                brief.get(&key).await.is_err(),
                "{key} answered while its shard is stuck"
            );
        }
    }

    c.start_group(A).await;
    c.wait_all_settled(&after).await;
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_migration_serves_an_arrived_shard_while_another_is_still_pulling() {
    let mut c = ShardedCluster::start(Setup::new(3, 33)).await;
    c.join(&[A, B, C]).await;
    let keys = keys_in_every_shard("partial", 2);
    let mut clerk = c.client().clerk();
    let mut expected = Expected::default();
    expected.put_all(&mut clerk, &keys, "v").await;
    let before = c.latest_config().await;
    c.wait_all_settled(&before).await;

    // One configuration moves A's and B's shards to C; A is dead, B is not.
    c.kill_group(A);
    c.leave(&[A, B]).await;
    let after = c.latest_config().await;
    assert_eq!(shards_of(&after, C).len(), NSHARDS as usize, "{after:?}");
    let from_dead = shards_of(&before, A);
    let from_live = shards_of(&before, B);
    c.wait_group(C, "B's shards arrived, A's still pulling", |s| {
        s.config_num >= after.num
            && from_live.iter().all(|sh| {
                matches!(
                    s.shards.get(sh),
                    Some(ShardState::Serving | ShardState::Arrived)
                )
            })
            && from_dead
                .iter()
                .all(|sh| s.shards.get(sh) == Some(&ShardState::Pulling))
    })
    .await;

    let mut bounded = c.new_client(Duration::from_secs(5)).clerk();
    for key in expected.keys() {
        let shard = shard_of(&key);
        if from_dead.contains(&shard) {
            let mut brief = c.new_client(Duration::from_millis(500)).clerk();
            assert!(
                brief.get(&key).await.is_err(),
                "{key} answered before its shard arrived"
            );
        } else {
            let got = bounded.get(&key).await.expect("an arrived shard is served");
            assert_eq!(got.as_deref(), expected.get(&key), "{key}");
        }
    }
    assert!(
        c.shard_states(C).await.values().all(|s| from_dead
            .iter()
            .all(|sh| s.shards[sh] == ShardState::Pulling)),
        "the dead group's shards arrived from nowhere"
    );

    c.start_group(A).await;
    c.wait_all_settled(&after).await;
    expected.check(&mut clerk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_append_is_not_applied_twice_after_its_shard_moves() {
    let c = ShardedCluster::start(Setup::new(2, 34)).await;
    c.join(&[A]).await;
    let key = key_in_shard(3, "retry", 0);
    let mut clerk = c.client().clerk();
    clerk.put(&key, "base").await.expect("put");

    // A client's append lands at A, but (as far as the client knows) its
    // answer is lost...
    let append = |value: &str, seq| Op::Append {
        key: key.clone(),
        value: value.into(),
        client_id: 0x5eed_0000_0000_0001,
        seq,
    };
    assert_eq!(c.group(A).nodes.call(append("[x]", 1)).await, Reply::Ok);

    // ...the shard moves to B, and the client retries there: B must know
    // the session from the shard's own table, and not apply it again.
    c.join(&[B]).await;
    let config = c.latest_config().await;
    if config.shards[3] != B {
        c.move_shard(3, B).await;
    }
    let config = c.latest_config().await;
    c.wait_all_settled(&config).await;
    assert_eq!(c.group(B).nodes.call(append("[x]", 1)).await, Reply::Ok);
    assert_eq!(
        clerk.get(&key).await.expect("get").as_deref(),
        Some("base[x]"),
        "the retried append was applied again by the shard's new owner"
    );
    // The session goes on: its next append does apply.
    assert_eq!(c.group(B).nodes.call(append("[y]", 2)).await, Reply::Ok);
    assert_eq!(
        clerk.get(&key).await.expect("get").as_deref(),
        Some("base[x][y]")
    );
}

//! kv service with snapshots: bounded data dirs, snapshots across restarts,
//! a follower brought up to date by snapshot, and everything at once.

mod support;

use std::time::Duration;

use support::recorded::Journal;
use support::workload::{self, Workload};
use support::{ClusterConfig, TestCluster, UNRELIABLE};
use tokio::time::Instant;

/// A small threshold so that a few hundred kilobytes of writes snapshot
/// many times over.
const THRESHOLD: u64 = 32 * 1024;

fn config(nodes: usize, seed: u64) -> ClusterConfig {
    ClusterConfig {
        snapshot_threshold: Some(THRESHOLD),
        ..ClusterConfig::new(nodes, seed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_snapshot_threshold_keeps_every_data_dir_bounded() {
    let cluster = TestCluster::start(config(3, 41)).await;
    let value = "v".repeat(1024);
    // 8 clients × 250 puts of 1 KiB to 10 keys: 2 MiB of log, a 10 KiB state.
    let mut tasks = Vec::new();
    for c in 0..8 {
        let mut clerk = cluster.clerk();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                clerk
                    .put(&format!("k{}", (c + i) % 10), &value)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let leader = cluster
        .wait_for_leader(&cluster.ids(), Duration::from_secs(10))
        .await;
    let commit = cluster.status(leader).await.unwrap().commit_index;
    cluster
        .wait_for_applied(&cluster.ids(), commit, Duration::from_secs(20))
        .await;

    // The classic bound: a few times the threshold (log not yet compacted,
    // the snapshot, one being written), never the 2 MiB written.
    let bound = 8 * THRESHOLD;
    for id in cluster.ids() {
        let bytes = cluster.data_dir_bytes(id);
        assert!(
            bytes <= bound,
            "node {id}'s data dir holds {bytes} bytes, over {bound}"
        );
        let status = cluster.status(id).await.unwrap();
        assert!(
            status.snapshot_index > 0,
            "node {id} never took a snapshot: {status:?}"
        );
    }
    let mut clerk = cluster.clerk();
    for k in 0..10 {
        assert_eq!(
            clerk.get(&format!("k{k}")).await.unwrap().as_deref(),
            Some(value.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_survive_restarts_of_every_node() {
    let cluster = TestCluster::start(config(3, 42)).await;
    let workload = Workload {
        clients: 5,
        duration: Duration::from_millis(1500),
        shared_keys: 1,
    };
    let journal = Journal::create(cluster.path());
    for round in 0..3 {
        let tally = workload::run(cluster.client(), &journal, &workload, 42 + round).await;
        assert!(tally.ok > 0, "round {round} made no progress: {tally:?}");
        cluster.kill_all().await;
        cluster.restart_all().await;
    }
    workload::check_all(&journal, cluster.client(), &workload).await;
    for id in cluster.ids() {
        let status = cluster.status(id).await.unwrap();
        assert!(
            status.snapshot_index > 0,
            "node {id} never took a snapshot: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_compacted_log_catches_up_by_snapshot() {
    let cluster = TestCluster::start(config(3, 43)).await;
    let mut clerk = cluster.clerk();
    clerk.put("a", "A").await.unwrap();

    // Cut node 3 off while the others write far past the threshold.
    cluster.network().partition(&[vec![1, 2], vec![3]]);
    let filler = "f".repeat(1024);
    for i in 0..100 {
        clerk.put(&format!("fill{}", i % 7), &filler).await.unwrap();
    }
    clerk.put("b", "B").await.unwrap();
    let lagging = cluster.status(3).await.unwrap();
    let leader = cluster
        .wait_for_leader(&[1, 2], Duration::from_secs(10))
        .await;
    let ahead = cluster.status(leader).await.unwrap();
    assert!(
        ahead.snapshot_index > lagging.last_log_index,
        "the leader's log was not compacted past node 3's ({ahead:?} vs {lagging:?})"
    );

    // Now node 3 is needed for a majority: nothing commits until it has
    // installed the snapshot.
    let partner = if leader == 1 { 2 } else { 1 };
    cluster
        .network()
        .partition(&[vec![leader, 3], vec![partner]]);
    clerk.put("c", "C").await.unwrap();
    assert_eq!(clerk.get("a").await.unwrap().as_deref(), Some("A"));
    assert_eq!(clerk.get("b").await.unwrap().as_deref(), Some("B"));
    assert_eq!(clerk.get("c").await.unwrap().as_deref(), Some("C"));
    let caught_up = cluster.status(3).await.unwrap();
    assert!(
        caught_up.snapshot_index > lagging.last_log_index,
        "{caught_up:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_with_crashes_partitions_and_lossy_links_stay_linearizable() {
    let cluster = TestCluster::start(config(5, 44)).await;
    cluster.set_all_link_faults(UNRELIABLE);
    let workload = Workload {
        clients: 5,
        duration: Duration::from_secs(5),
        shared_keys: 2,
    };
    let journal = Journal::create(cluster.path());
    let until = Instant::now() + workload.duration;
    let (tally, partitions, crashes) = tokio::join!(
        workload::run(cluster.client(), &journal, &workload, 44),
        workload::partition_randomly(cluster.network(), until, Duration::from_millis(700), 44),
        workload::crash_randomly(&cluster, until, Duration::from_millis(1000), 45),
    );
    cluster.set_all_link_faults(nemesis::LinkFaults::HEALTHY);
    cluster.restart_all().await;
    workload::check_all(&journal, cluster.client(), &workload).await;
    assert!(partitions > 0 && crashes > 0);
    assert!(tally.ok > 0, "{tally:?}");
}

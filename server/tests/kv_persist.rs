//! kv service across crashes: SIGKILL every node between rounds of load,
//! crash nodes during load beside partitions, and a restarted follower that
//! must catch up.

mod support;

use std::time::Duration;

use support::recorded::{Journal, Tally};
use support::workload::{self, Workload};
use support::{ClusterConfig, TestCluster};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_node_between_rounds_loses_no_acknowledged_write() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 31)).await;
    let workload = Workload {
        clients: 5,
        duration: Duration::from_millis(1500),
        shared_keys: 1,
    };
    let journal = Journal::create(cluster.path());
    let mut total = Tally::default();
    for round in 0..3 {
        let tally = workload::run(cluster.client(), &journal, &workload, 31 + round).await;
        assert!(tally.ok > 0, "round {round} made no progress: {tally:?}");
        total.ok += tally.ok;
        cluster.kill_all().await;
        cluster.restart_all().await;
    }
    workload::check_all(&journal, cluster.client(), &workload).await;
    assert!(total.ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_partitions_during_load_stay_linearizable() {
    let cluster = TestCluster::start(ClusterConfig::new(5, 32)).await;
    let workload = Workload {
        clients: 5,
        duration: Duration::from_secs(5),
        shared_keys: 2,
    };
    let journal = Journal::create(cluster.path());
    let until = Instant::now() + workload.duration;
    let (tally, partitions, crashes) = tokio::join!(
        workload::run(cluster.client(), &journal, &workload, 32),
        workload::partition_randomly(cluster.network(), until, Duration::from_millis(800), 32),
        workload::crash_randomly(&cluster, until, Duration::from_millis(1000), 33),
    );
    cluster.restart_all().await;
    workload::check_all(&journal, cluster.client(), &workload).await;
    assert!(partitions > 0 && crashes > 0);
    assert!(tally.ok > 0, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_and_can_then_serve() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 33)).await;
    let ids = cluster.ids();
    let leader = cluster.wait_for_leader(&ids, Duration::from_secs(10)).await;
    let follower = *ids.iter().find(|&&id| id != leader).unwrap();
    cluster.kill(follower).await;

    let mut clerk = cluster.clerk();
    for i in 0..100 {
        clerk.append("log", &format!("{i},")).await.unwrap();
    }
    let commit = cluster.status(leader).await.unwrap().commit_index;
    cluster.restart(follower).await;
    cluster
        .wait_for_applied(&[follower], commit, Duration::from_secs(20))
        .await;

    // Without the old leader, every commit and read needs the restarted
    // follower: it must have everything.
    let expected: String = (0..100).map(|i| format!("{i},")).collect();
    cluster.kill(leader).await;
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != leader).collect();
    cluster
        .wait_for_leader(&others, Duration::from_secs(10))
        .await;
    assert_eq!(
        clerk.get("log").await.unwrap().as_deref(),
        Some(expected.as_str())
    );
}

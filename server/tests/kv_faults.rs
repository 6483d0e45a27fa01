//! kv service under network faults: lossy and slow links, a leader cut off
//! in a minority, and random partitions under concurrent load.

mod support;

use std::time::Duration;

use client::{ClerkOptions, NodeRole};
use nemesis::LinkFaults;
use support::recorded::Journal;
use support::workload::{self, Workload};
use support::{ClusterConfig, TestCluster, UNRELIABLE, test_options};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_links_neither_lose_nor_duplicate_writes() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 21)).await;
    cluster.set_all_link_faults(UNRELIABLE);
    let workload = Workload {
        clients: 5,
        duration: Duration::from_secs(4),
        shared_keys: 2,
    };
    let journal = Journal::create(cluster.path());
    let tally = workload::run(cluster.client(), &journal, &workload, 21).await;
    let killed: u64 = cluster
        .network()
        .stats()
        .values()
        .map(|s| s.killed + s.refused)
        .sum();

    cluster.set_all_link_faults(LinkFaults::HEALTHY);
    workload::check_all(&journal, cluster.client(), &workload).await;
    assert!(tally.ok > 0, "{tally:?}");
    assert!(
        killed > 0,
        "the unreliable links never dropped a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_in_a_minority_cannot_serve_while_the_majority_elects_a_new_one() {
    let cluster = TestCluster::start(ClusterConfig::new(5, 22)).await;
    let ids = cluster.ids();
    let old_leader = cluster.wait_for_leader(&ids, Duration::from_secs(10)).await;
    cluster.clerk().put("k", "before").await.unwrap();

    let partner = *ids.iter().find(|&&id| id != old_leader).unwrap();
    let minority = vec![old_leader, partner];
    let majority: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster
        .network()
        .partition(&[minority.clone(), majority.clone()]);
    // A client that can only reach the minority, as if the partition split
    // it off with them: its write waits (no deadline) until the heal.
    let unbounded = ClerkOptions {
        overall_deadline: None,
        ..test_options(24)
    };
    let stranded_client = cluster.private_client(unbounded).await;
    stranded_client.cut_from(&majority);
    let mut stranded = stranded_client.client.clerk();
    let stranded_put = tokio::spawn(async move { stranded.put("k", "from-minority").await });

    // The old leader must neither read nor write for anyone while cut off.
    let bounded = ClerkOptions {
        overall_deadline: Some(Duration::from_millis(2500)),
        ..test_options(22)
    };
    let only_old_leader = cluster.client_for(&[old_leader], bounded.clone());
    let read = only_old_leader.clerk().get("k").await;
    assert!(
        read.is_err(),
        "a leader without a quorum answered a read: {read:?}"
    );
    let write = only_old_leader.clerk().put("k", "stale").await;
    assert!(
        write.is_err(),
        "a leader without a quorum acknowledged a write"
    );

    // The majority elects someone else and serves.
    let new_leader = cluster
        .wait_for_leader(&majority, Duration::from_secs(10))
        .await;
    assert_ne!(new_leader, old_leader);
    let majority_client = cluster.client_for(&majority, test_options(23));
    let mut clerk = majority_client.clerk();
    clerk.put("k", "from-majority").await.unwrap();
    assert_eq!(
        clerk.get("k").await.unwrap().as_deref(),
        Some("from-majority")
    );
    assert!(
        !stranded_put.is_finished(),
        "a write completed inside the minority"
    );
    let old_status = cluster.status(old_leader).await.unwrap();
    assert!(
        old_status.role != NodeRole::Leader
            || old_status.term < cluster.status(new_leader).await.unwrap().term,
        "two leaders in one term"
    );

    // Heal: the stranded write reaches the new leader and lands last; the
    // stale write of the old leader was never committed.
    cluster.network().heal_all();
    stranded_client.heal();
    let healed = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), stranded_put)
        .await
        .expect("the stranded write completes after the heal")
        .unwrap()
        .unwrap();
    eprintln!(
        "the stranded write completed {:?} after the heal",
        healed.elapsed()
    );
    assert_eq!(
        clerk.get("k").await.unwrap().as_deref(),
        Some("from-minority")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_partitions_under_concurrent_clients_stay_linearizable() {
    let cluster = TestCluster::start(ClusterConfig::new(5, 23)).await;
    let workload = Workload {
        clients: 5,
        duration: Duration::from_secs(5),
        shared_keys: 2,
    };
    let journal = Journal::create(cluster.path());
    let until = Instant::now() + workload.duration;
    let (tally, partitions) = tokio::join!(
        workload::run(cluster.client(), &journal, &workload, 23),
        workload::partition_randomly(cluster.network(), until, Duration::from_millis(700), 23),
    );
    workload::check_all(&journal, cluster.client(), &workload).await;
    assert!(partitions > 0);
    assert!(tally.ok > 0, "{tally:?}");
}

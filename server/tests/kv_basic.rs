//! kv service, fault-free: one client, concurrent clients, many clients, and
//! leadership transfer, over real kvd processes.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use support::recorded::{Journal, Outcome, Tally};
use support::workload::{self, Workload, own_key};
use support::{ClusterConfig, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_reads_back_exactly_what_it_wrote() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 11)).await;
    let mut clerk = cluster.clerk();
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for i in 0..150 {
        let key = format!("k{}", rng.random_range(0..5));
        match rng.random_range(0..3) {
            0 => {
                let value = format!("p{i}");
                clerk.put(&key, &value).await.unwrap();
                model.insert(key, value);
            }
            1 => {
                let value = format!("a{i}.");
                clerk.append(&key, &value).await.unwrap();
                model.entry(key).or_default().push_str(&value);
            }
            _ => assert_eq!(
                clerk.get(&key).await.unwrap(),
                model.get(&key).cloned(),
                "get {key}"
            ),
        }
    }
    assert_eq!(clerk.get("never-written").await.unwrap(), None);
    for (key, value) in &model {
        assert_eq!(clerk.get(key).await.unwrap().as_ref(), Some(value));
    }
}

/// Runs `workload` on a healthy cluster and checks everything: the
/// exactly-once append property per client key and linearizability.
async fn run_and_check(cluster: &TestCluster, workload: &Workload) -> (Arc<Journal>, Tally) {
    let journal = Journal::create(cluster.path());
    let tally = workload::run(cluster.client(), &journal, workload, cluster.config().seed).await;
    workload::check_all(&journal, cluster.client(), workload).await;
    (journal, tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_are_linearizable_and_apply_appends_exactly_once() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 12)).await;
    let workload = Workload {
        clients: 5,
        duration: Duration::from_secs(3),
        shared_keys: 3,
    };
    let (_, tally) = run_and_check(&cluster, &workload).await;
    // Healthy cluster: nothing should fail or time out.
    assert!(tally.ok > 0, "{tally:?}");
    assert_eq!(tally.failed + tally.unknown, 0, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_all_make_progress() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 13)).await;
    let workload = Workload {
        clients: 40,
        duration: Duration::from_secs(2),
        shared_keys: 0,
    };
    let (journal, tally) = run_and_check(&cluster, &workload).await;
    assert_eq!(tally.failed + tally.unknown, 0, "{tally:?}");
    for slot in 0..workload.clients {
        let acknowledged = journal
            .appends_to(&own_key(slot))
            .iter()
            .filter(|append| append.outcome == Outcome::Ok)
            .count();
        assert!(acknowledged > 0, "client {slot} never completed an append");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_transfer_hands_service_to_the_chosen_node() {
    let cluster = TestCluster::start(ClusterConfig::new(3, 14)).await;
    let ids = cluster.ids();
    let leader = cluster.wait_for_leader(&ids, Duration::from_secs(10)).await;
    let mut clerk = cluster.clerk();
    clerk.put("k", "before").await.unwrap();

    let target = ids.iter().copied().find(|&id| id != leader).unwrap();
    let mut moved = false;
    // A transfer can be turned down (e.g. the target is behind); ask again.
    'attempts: for _ in 0..5 {
        cluster.client().transfer_leader(target).await.unwrap();
        for _ in 0..40 {
            if cluster.wait_for_leader(&ids, Duration::from_secs(5)).await == target {
                moved = true;
                break 'attempts;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    assert!(moved, "leadership never reached node {target}");
    clerk.append("k", "+after").await.unwrap();
    assert_eq!(
        clerk.get("k").await.unwrap().as_deref(),
        Some("before+after")
    );
    assert_eq!(
        cluster.client().presumed_leader(),
        cluster.client().servers()[target as usize - 1]
    );
}

//! Client workloads that record a history (through a
//! [`Journal`](super::recorded::Journal)), the checks of a finished one, and
//! nemesis loops to run beside them.
//!
//! A client whose operation ends `info` retires its process number and its
//! Clerk (session) and carries on as a new process, as Jepsen requires.

use std::sync::Arc;
use std::time::Duration;

use client::{ClerkOptions, ClusterClient};
use nemesis::Network;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::recorded::{self, Journal, KvOp, Tally, WorkloadClient};

/// A closed-loop workload: `clients` concurrent clients for `duration`.
///
/// Client `c` appends unique values to its own key `own-c` (and reads it);
/// with `shared_keys > 0` clients also put, append and read keys
/// `shared-0..` that everyone touches.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: usize,
    /// How long they keep invoking.
    pub duration: Duration,
    /// Number of keys shared by all clients (0: own keys only).
    pub shared_keys: usize,
}

impl Workload {
    /// Every key the workload touches.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.clients).map(own_key).collect();
        keys.extend((0..self.shared_keys).map(|k| format!("shared-{k}")));
        keys
    }
}

/// Client `slot`'s own key.
pub fn own_key(slot: usize) -> String {
    format!("own-{slot}")
}

/// Runs `workload` against `client`, recording into `journal`; returns the
/// totals once every client has finished its last operation.
pub async fn run(
    client: &ClusterClient,
    journal: &Arc<Journal>,
    workload: &Workload,
    seed: u64,
) -> Tally {
    let stop_at = Instant::now() + workload.duration;
    let mut tasks = Vec::new();
    for slot in 0..workload.clients {
        let (client, journal, workload) = (client.clone(), journal.clone(), workload.clone());
        let rng = ChaCha8Rng::seed_from_u64(seed ^ ((slot as u64) << 32));
        tasks.push(tokio::spawn(drive_client(
            slot, client, journal, workload, stop_at, rng,
        )));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.add(task.await.expect("client task panicked"));
    }
    total
}

async fn drive_client(
    slot: usize,
    client: ClusterClient,
    journal: Arc<Journal>,
    workload: Workload,
    stop_at: Instant,
    mut rng: ChaCha8Rng,
) -> Tally {
    let own = own_key(slot);
    let mut me = WorkloadClient::new(journal, slot, client.clerk());
    while Instant::now() < stop_at {
        let value = me.next_value();
        let roll = rng.random_range(0..100);
        let mut shared = || {
            format!(
                "shared-{}",
                rng.random_range(0..workload.shared_keys.max(1))
            )
        };
        let op = match (workload.shared_keys, roll) {
            (0, 0..80) | (_, 0..40) => KvOp::Append(own.clone(), value),
            (0, _) | (_, 40..50) => KvOp::Get(own.clone()),
            (_, 50..70) => KvOp::Append(shared(), value),
            (_, 70..80) => KvOp::Put(shared(), value),
            _ => KvOp::Get(shared()),
        };
        me.perform(&op, || client.clerk()).await;
    }
    me.tally()
}

/// Checks a finished workload: final reads of every key (allowing the
/// cluster 30 s to answer), the exactly-once append property on each
/// client's own key, and linearizability of the whole history.
pub async fn check_all(journal: &Journal, client: &ClusterClient, workload: &Workload) {
    let mut clerk = client.clerk();
    *clerk.options_mut() = ClerkOptions {
        overall_deadline: Some(Duration::from_secs(30)),
        ..client.options().clone()
    };
    let finals = journal.final_reads(&mut clerk, &workload.keys()).await;
    for slot in 0..workload.clients {
        let key = own_key(slot);
        recorded::appends_exactly_once(journal, &key, finals[&key].as_deref());
    }
    recorded::linearizable(journal);
}

/// Until `until`, every `period` either heals the network or splits it into
/// a random minority and majority; heals at the end. Returns how many
/// partitions it made.
pub async fn partition_randomly(
    network: &Network,
    until: Instant,
    period: Duration,
    seed: u64,
) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ids = network.nodes();
    assert!(
        ids.len() >= 3,
        "a partition needs a minority and a majority"
    );
    let mut partitions = 0;
    while Instant::now() + period < until {
        if rng.random_range(0..3) == 0 {
            network.heal_all();
        } else {
            ids.shuffle(&mut rng);
            let minority = rng.random_range(1..=(ids.len() - 1) / 2);
            network.partition(&[ids[..minority].to_vec(), ids[minority..].to_vec()]);
            partitions += 1;
        }
        tokio::time::sleep(period).await;
    }
    network.heal_all();
    partitions
}

/// Until `until`, every `period` SIGKILLs a random node and restarts it
/// half a period later; every node runs at the end. Returns the number of
/// crashes.
pub async fn crash_randomly(
    cluster: &super::TestCluster,
    until: Instant,
    period: Duration,
    seed: u64,
) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids = cluster.ids();
    let mut crashes = 0;
    while Instant::now() + period < until {
        let victim = ids[rng.random_range(0..ids.len())];
        cluster.kill(victim).await;
        crashes += 1;
        tokio::time::sleep(period / 2).await;
        cluster.restart(victim).await;
        tokio::time::sleep(period / 2).await;
    }
    crashes
}

//! Workloads for the sharded service, recorded through a
//! [`Journal`](super::recorded::Journal), and the checks of a finished one.
//!
//! A client whose operation ends `info` retires its process number and its
//! session and carries on as a new process, as Jepsen requires.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use client::ShardedClient;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinHandle;

use super::recorded::{self, Journal, KvOp, Tally, WorkloadClient};
use super::{NSHARDS, key_in_shard};

/// A closed-loop workload of `clients` concurrent sequential clients.
///
/// Client `slot` appends to (and reads) its own key, `own_key(slot)`, which
/// lies in shard `slot % NSHARDS`, so ten clients touch every shard; it also
/// appends to shared keys everyone appends to, and overwrites and reads
/// register keys.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: usize,
    /// Keys every client appends to (0: own keys only).
    pub shared_keys: usize,
    /// Keys every client overwrites with put (0: none).
    pub register_keys: usize,
}

impl Workload {
    /// Keys that are only ever appended to.
    pub fn append_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.clients).map(own_key).collect();
        keys.extend((0..self.shared_keys).map(shared_key));
        keys
    }

    /// Every key the workload touches.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = self.append_keys();
        keys.extend((0..self.register_keys).map(register_key));
        keys
    }
}

/// Client `slot`'s own key (in shard `slot % NSHARDS`).
pub fn own_key(slot: usize) -> String {
    key_in_shard((slot % NSHARDS as usize) as u32, "own", slot)
}

/// Shared append key `k`, spread over the shards from the top down.
pub fn shared_key(k: usize) -> String {
    key_in_shard(NSHARDS - 1 - (k % NSHARDS as usize) as u32, "shared", k)
}

/// Register key `k`.
pub fn register_key(k: usize) -> String {
    key_in_shard((k * 3 % NSHARDS as usize) as u32, "register", k)
}

/// A workload running in the background until told to stop.
pub struct Running {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Running {
    /// Tells every client to stop after its current operation and returns
    /// the totals once all have.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            total.add(task.await.expect("client task panicked"));
        }
        total
    }
}

/// Starts `workload` against `client` in the background, recording into
/// `journal`.
pub fn start(
    client: &Arc<ShardedClient>,
    journal: &Arc<Journal>,
    workload: &Workload,
    seed: u64,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..workload.clients)
        .map(|slot| {
            let rng = ChaCha8Rng::seed_from_u64(seed ^ ((slot as u64) << 32));
            tokio::spawn(drive_client(
                slot,
                client.clone(),
                journal.clone(),
                workload.clone(),
                stop.clone(),
                rng,
            ))
        })
        .collect();
    Running { stop, tasks }
}

async fn drive_client(
    slot: usize,
    client: Arc<ShardedClient>,
    journal: Arc<Journal>,
    workload: Workload,
    stop: Arc<AtomicBool>,
    mut rng: ChaCha8Rng,
) -> Tally {
    let own = own_key(slot);
    let mut me = WorkloadClient::new(journal, slot, client.clerk());
    while !stop.load(Ordering::Relaxed) {
        let token = me.next_value();
        let roll = rng.random_range(0..100);
        let op = if roll < 50 || (workload.shared_keys == 0 && workload.register_keys == 0) {
            if roll < 80 {
                KvOp::Append(own.clone(), token)
            } else {
                KvOp::Get(own.clone())
            }
        } else if roll < 65 && workload.shared_keys > 0 {
            KvOp::Append(shared_key(rng.random_range(0..workload.shared_keys)), token)
        } else if roll < 80 && workload.register_keys > 0 {
            KvOp::Put(
                register_key(rng.random_range(0..workload.register_keys)),
                token,
            )
        } else if roll < 90 && workload.register_keys > 0 {
            KvOp::Get(register_key(rng.random_range(0..workload.register_keys)))
        } else {
            KvOp::Get(own.clone())
        };
        me.perform(&op, || client.clerk()).await;
    }
    me.tally()
}

/// Runs the whole check on a finished workload: final reads of every key
/// (through `client`), the append property on every append key, and
/// linearizability of the history.
pub async fn check_all(journal: &Journal, client: &ShardedClient, workload: &Workload) {
    let finals = journal
        .final_reads(&mut client.clerk(), &workload.keys())
        .await;
    for key in workload.append_keys() {
        recorded::appends_exactly_once(journal, &key, finals[&key].as_deref());
    }
    recorded::linearizable(journal);
}

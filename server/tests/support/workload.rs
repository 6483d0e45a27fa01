//! Client workloads that record a history, and nemesis loops to run beside
//! them.
//!
//! Every operation is recorded as an invoke and a completion (Jepsen's
//! `ok`/`fail`/`info`) in a JSONL history through `histories::Recorder`. A
//! client whose operation ends `info` retires its process number and its
//! Clerk (session) and carries on as a new process, as Jepsen requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Clerk, ClerkOptions, ClusterClient};
use histories::Recorder;
use nemesis::Network;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

/// How an operation ended, as the test knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Invoked, not completed yet.
    Pending,
    /// Acknowledged.
    Ok,
    /// Certainly not applied.
    Failed,
    /// May or may not have been applied.
    Unknown,
}

/// One kv operation.
#[derive(Debug, Clone)]
pub enum KvOp {
    /// Read a key.
    Get(String),
    /// Overwrite a key.
    Put(String, String),
    /// Extend a key.
    Append(String, String),
}

/// The recorded history plus, per key, every append and its outcome in
/// invocation order (for the classic exactly-once check).
pub struct Journal {
    recorder: Recorder,
    path: PathBuf,
    next_process: AtomicU64,
    appends: Mutex<BTreeMap<String, Vec<(String, Outcome)>>>,
}

/// Counts of a workload's outcomes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Acknowledged operations.
    pub ok: u64,
    /// Definitely failed operations.
    pub failed: u64,
    /// Operations with unknown outcome.
    pub unknown: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.unknown += other.unknown;
    }
}

impl Journal {
    /// A journal writing `history.jsonl` in `dir`.
    pub fn create(dir: &Path) -> Arc<Journal> {
        let path = dir.join("history.jsonl");
        let recorder = Recorder::create(&path).expect("create the history file");
        Arc::new(Journal {
            recorder,
            path,
            next_process: AtomicU64::new(0),
            appends: Mutex::new(BTreeMap::new()),
        })
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh process number.
    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Every append to `key` with its outcome, in invocation order.
    pub fn appends_to(&self, key: &str) -> Vec<(String, Outcome)> {
        self.appends
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Runs `op` with `clerk` as `process`, recording invoke and completion.
    pub async fn perform(&self, process: u64, clerk: &mut Clerk, op: &KvOp) -> Outcome {
        let (f, key, arg) = match op {
            KvOp::Get(k) => ("get", k, Value::Null),
            KvOp::Put(k, v) => ("put", k, Value::String(v.clone())),
            KvOp::Append(k, v) => ("append", k, Value::String(v.clone())),
        };
        let key_value = Value::String(key.clone());
        let slot = if let KvOp::Append(_, v) = op {
            let mut appends = self.appends.lock().unwrap();
            let list = appends.entry(key.clone()).or_default();
            list.push((v.clone(), Outcome::Pending));
            Some(list.len() - 1)
        } else {
            None
        };
        self.recorder
            .invoke(process, f, Some(&key_value), &arg)
            .expect("record invoke");
        let result = match op {
            KvOp::Get(k) => clerk
                .get(k)
                .await
                .map(|v| v.map_or(Value::Null, Value::String)),
            KvOp::Put(k, v) => clerk.put(k, v).await.map(|()| arg.clone()),
            KvOp::Append(k, v) => clerk.append(k, v).await.map(|()| arg.clone()),
        };
        let outcome = match result {
            Ok(observed) => {
                self.recorder
                    .ok(process, f, Some(&key_value), &observed)
                    .expect("record ok");
                Outcome::Ok
            }
            Err(e) if e.is_definite() => {
                self.recorder
                    .fail(process, f, Some(&key_value), &arg)
                    .expect("record fail");
                Outcome::Failed
            }
            Err(_) => {
                self.recorder
                    .info(process, f, Some(&key_value), &arg)
                    .expect("record info");
                Outcome::Unknown
            }
        };
        if let Some(slot) = slot {
            self.appends
                .lock()
                .unwrap()
                .get_mut(key)
                .expect("registered")[slot]
                .1 = outcome;
        }
        outcome
    }

    /// Reads `keys` once each after the faults are over, recording the reads;
    /// panics if the cluster does not answer within 30 s.
    pub async fn final_reads(
        &self,
        client: &ClusterClient,
        keys: &[String],
    ) -> BTreeMap<String, Option<String>> {
        let process = self.new_process();
        let mut clerk = client.clerk();
        *clerk.options_mut() = ClerkOptions {
            overall_deadline: Some(Duration::from_secs(30)),
            ..client.options().clone()
        };
        let mut values = BTreeMap::new();
        let started = Instant::now();
        for key in keys {
            let key_value = Value::String(key.clone());
            self.recorder
                .invoke(process, "get", Some(&key_value), &Value::Null)
                .expect("record");
            let value = clerk
                .get(key)
                .await
                .unwrap_or_else(|e| panic!("final read of {key:?} failed: {e}"));
            let observed = value.clone().map_or(Value::Null, Value::String);
            self.recorder
                .ok(process, "get", Some(&key_value), &observed)
                .expect("record");
            values.insert(key.clone(), value);
        }
        eprintln!(
            "final reads of {} keys took {:?}",
            keys.len(),
            started.elapsed()
        );
        values
    }
}

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
    let mut process = journal.new_process();
    let mut clerk = client.clerk();
    let mut tally = Tally::default();
    let mut n = 0u64;
    while Instant::now() < stop_at {
        n += 1;
        let roll = rng.random_range(0..100);
        let mut shared = || {
            format!(
                "shared-{}",
                rng.random_range(0..workload.shared_keys.max(1))
            )
        };
        let op = match (workload.shared_keys, roll) {
            (0, 0..80) | (_, 0..40) => KvOp::Append(own.clone(), format!("[{slot}.{process}.{n}]")),
            (0, _) | (_, 40..50) => KvOp::Get(own.clone()),
            (_, 50..70) => KvOp::Append(shared(), format!("<{process}.{n}>")),
            (_, 70..80) => KvOp::Put(shared(), format!("({process}.{n})")),
            _ => KvOp::Get(shared()),
        };
        match journal.perform(process, &mut clerk, &op).await {
            Outcome::Ok => tally.ok += 1,
            Outcome::Failed => tally.failed += 1,
            Outcome::Unknown | Outcome::Pending => {
                tally.unknown += 1;
                process = journal.new_process();
                clerk = client.clerk();
            }
        }
    }
    tally
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

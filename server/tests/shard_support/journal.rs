//! Recorded workloads for the sharded service, and the checks run on them.
//!
//! Every operation of a [`ShardedClerk`] is recorded as an invoke and a
//! completion (Jepsen's `ok`/`fail`/`info`) in a JSONL history, which the
//! `checker` crate's kv model then checks for linearizability. A client
//! whose operation ends `info` retires its process number and its session
//! and carries on as a new process, as Jepsen requires.
//!
//! Append values are unique bracketed tokens (`[slot.process.n]`), so a
//! final value can be taken apart again to see that each acknowledged
//! append landed exactly once, whoever wrote it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checker::{CheckOptions, Verdict, check_with_model};
use client::{ShardedClerk, ShardedClient};
use histories::{ReadOptions, Recorder, read_jsonl_file};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{NSHARDS, key_in_shard};

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

/// An append as the journal remembers it.
#[derive(Debug, Clone)]
pub struct AppendRecord {
    /// The appended token.
    pub value: String,
    /// The workload slot (a sequential client) that appended it.
    pub slot: usize,
    /// How it ended.
    pub outcome: Outcome,
}

/// The recorded history plus, per key, every append in invocation order.
pub struct Journal {
    recorder: Recorder,
    path: PathBuf,
    next_process: AtomicU64,
    appends: Mutex<BTreeMap<String, Vec<AppendRecord>>>,
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

    /// Every append to `key`, in invocation order.
    pub fn appends_to(&self, key: &str) -> Vec<AppendRecord> {
        self.appends
            .lock()
            .expect("not poisoned")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Runs `op` with `clerk` as `process` of workload slot `slot`,
    /// recording invoke and completion.
    pub async fn perform(
        &self,
        slot: usize,
        process: u64,
        clerk: &mut ShardedClerk,
        op: &KvOp,
    ) -> Outcome {
        let (f, key, arg) = match op {
            KvOp::Get(k) => ("get", k, Value::Null),
            KvOp::Put(k, v) => ("put", k, Value::String(v.clone())),
            KvOp::Append(k, v) => ("append", k, Value::String(v.clone())),
        };
        let key_value = Value::String(key.clone());
        let record_slot = if let KvOp::Append(_, v) = op {
            let mut appends = self.appends.lock().expect("not poisoned");
            let list = appends.entry(key.clone()).or_default();
            list.push(AppendRecord {
                value: v.clone(),
                slot,
                outcome: Outcome::Pending,
            });
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
        if let Some(index) = record_slot {
            self.appends
                .lock()
                .expect("not poisoned")
                .get_mut(key)
                .expect("registered above")[index]
                .outcome = outcome;
        }
        outcome
    }

    /// Reads `keys` once each after the faults are over, recording the
    /// reads; panics if a read does not succeed within the client's deadline.
    pub async fn final_reads(
        &self,
        client: &ShardedClient,
        keys: &[String],
    ) -> BTreeMap<String, Option<String>> {
        let process = self.new_process();
        let mut clerk = client.clerk();
        let mut values = BTreeMap::new();
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
        values
    }
}

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
            let t = task.await.expect("client task panicked");
            total.ok += t.ok;
            total.failed += t.failed;
            total.unknown += t.unknown;
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
    let mut process = journal.new_process();
    let mut clerk = client.clerk();
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let token = format!("[{slot}.{process}.{n}]");
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
        match journal.perform(slot, process, &mut clerk, &op).await {
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

/// The append property, for keys any number of clients append to: the
/// final value is a sequence of tokens that were each appended to this key,
/// none twice; every acknowledged append is among them; no failed one is;
/// and each client's acknowledged appends appear in the order it made them.
pub fn appends_exactly_once(journal: &Journal, key: &str, final_value: Option<&str>) {
    let appends = journal.appends_to(key);
    let value = final_value.unwrap_or("");
    let mut found: Vec<usize> = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let end = match (rest.starts_with('['), rest.find(']')) {
            (true, Some(end)) => end + 1,
            _ => panic!("{key}: malformed text {:?} in {value:?}", truncate(rest)),
        };
        let token = &rest[..end];
        let index = appends
            .iter()
            .position(|a| a.value == token)
            .unwrap_or_else(|| panic!("{key}: {token} in the final value was never appended"));
        assert!(
            !found.contains(&index),
            "{key}: append {token} applied twice in {value:?}"
        );
        assert_ne!(
            appends[index].outcome,
            Outcome::Failed,
            "{key}: append {token} failed definitely, yet was applied"
        );
        found.push(index);
        rest = &rest[end..];
    }
    for (index, a) in appends.iter().enumerate() {
        if a.outcome == Outcome::Ok {
            assert!(
                found.contains(&index),
                "{key}: acknowledged append {} is lost from {value:?}",
                a.value
            );
        }
    }
    // A client is sequential: an acknowledged append of one client comes
    // before everything that client invoked after it.
    for (position, &index) in found.iter().enumerate() {
        for &later in &found[position + 1..] {
            let (a, b) = (&appends[index], &appends[later]);
            if a.slot == b.slot && later < index {
                assert_ne!(
                    b.outcome,
                    Outcome::Ok,
                    "{key}: acknowledged append {} appears after {}, which its client made later",
                    b.value,
                    a.value
                );
            }
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Checks the recorded history for linearizability against the kv model,
/// partitioned by key; panics with the counterexample if it is not.
pub fn linearizable(journal: &Journal) {
    let history =
        read_jsonl_file(journal.path(), ReadOptions::default()).expect("read the history back");
    let operations = history.operations().expect("a well-formed history");
    let options = CheckOptions {
        time_budget: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    let started = std::time::Instant::now();
    let result = check_with_model("kv", &operations, &options).expect("kv model fits the history");
    eprintln!(
        "checked {} operations of {} for linearizability in {:?}: {:?}",
        operations.len(),
        journal.path().display(),
        started.elapsed(),
        result.verdict
    );
    match result.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable => {
            let counterexample = result
                .counterexample
                .map(|c| c.to_string())
                .unwrap_or_else(|| "(no counterexample)".to_string());
            panic!(
                "history {} is not linearizable ({} operations):\n{counterexample}",
                journal.path().display(),
                operations.len()
            );
        }
        Verdict::Unknown { reason } => panic!(
            "could not decide linearizability of {} ({} operations): {reason:?}",
            journal.path().display(),
            operations.len()
        ),
    }
}

/// Runs the whole check on a finished workload: final reads of every key
/// (through `client`), the append property on every append key, and
/// linearizability of the history.
pub async fn check_all(journal: &Journal, client: &ShardedClient, workload: &Workload) {
    let finals = journal.final_reads(client, &workload.keys()).await;
    for key in workload.append_keys() {
        appends_exactly_once(journal, &key, finals[&key].as_deref());
    }
    linearizable(journal);
}

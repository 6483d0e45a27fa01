//! Recorded client operations and the checks run on them, shared by the kv
//! suite (`support`) and the sharded suite (`shard_support`).
//!
//! Every operation is recorded as an invoke and a completion (Jepsen's
//! `ok`/`fail`/`info`) in a JSONL history through `histories::Recorder`,
//! which the `checker` crate's kv model then checks for linearizability. A
//! client whose operation ends `info` must retire its process number and its
//! session and carry on as a new process, as Jepsen requires; the workloads
//! that drive a [`Journal`] do that.
//!
//! Append values are unique bracketed tokens (`[slot.process.n]`), so a final
//! value can be taken apart again to see that each acknowledged append
//! landed exactly once, whoever wrote it ([`appends_exactly_once`]).
//!
//! Included by path from both support modules, so each test binary gets one
//! copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checker::{CheckOptions, Verdict, check_with_model};
use client::{Clerk, ClerkError, ShardedClerk};
use histories::{ReadOptions, Recorder, read_jsonl_file};
use serde_json::Value;

/// A session that can run the three kv operations: a group's [`Clerk`] or
/// a [`ShardedClerk`], so one journal records both suites.
pub trait KvSession {
    /// Reads `key`.
    fn get(&mut self, key: &str) -> impl Future<Output = Result<Option<String>, ClerkError>>;
    /// Overwrites `key`.
    fn put(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>>;
    /// Extends `key`.
    fn append(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>>;
}

impl KvSession for Clerk {
    fn get(&mut self, key: &str) -> impl Future<Output = Result<Option<String>, ClerkError>> {
        Clerk::get(self, key)
    }
    fn put(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>> {
        Clerk::put(self, key, value)
    }
    fn append(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>> {
        Clerk::append(self, key, value)
    }
}

impl KvSession for ShardedClerk {
    fn get(&mut self, key: &str) -> impl Future<Output = Result<Option<String>, ClerkError>> {
        ShardedClerk::get(self, key)
    }
    fn put(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>> {
        ShardedClerk::put(self, key, value)
    }
    fn append(&mut self, key: &str, value: &str) -> impl Future<Output = Result<(), ClerkError>> {
        ShardedClerk::append(self, key, value)
    }
}

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

impl Outcome {
    /// Whether the operation may or may not have taken effect, so that its
    /// process must retire (Jepsen's `info`).
    pub fn is_unknown(self) -> bool {
        matches!(self, Outcome::Unknown | Outcome::Pending)
    }
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
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.unknown += other.unknown;
    }

    /// Counts one more operation that ended `outcome`.
    pub fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Unknown | Outcome::Pending => self.unknown += 1,
        }
    }
}

/// The recorded history plus, per key, every append in invocation order.
pub struct Journal {
    recorder: Recorder,
    path: PathBuf,
    next_process: AtomicU64,
    appends: Mutex<BTreeMap<String, Vec<AppendRecord>>>,
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

    /// Runs `op` with `session` as `process` of workload slot `slot`,
    /// recording invoke and completion.
    pub async fn perform(
        &self,
        slot: usize,
        process: u64,
        session: &mut impl KvSession,
        op: &KvOp,
    ) -> Outcome {
        let (f, key, arg) = match op {
            KvOp::Get(k) => ("get", k, Value::Null),
            KvOp::Put(k, v) => ("put", k, Value::String(v.clone())),
            KvOp::Append(k, v) => ("append", k, Value::String(v.clone())),
        };
        let key_value = Value::String(key.clone());
        let record_index = if let KvOp::Append(_, v) = op {
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
            KvOp::Get(k) => session
                .get(k)
                .await
                .map(|v| v.map_or(Value::Null, Value::String)),
            KvOp::Put(k, v) => session.put(k, v).await.map(|()| arg.clone()),
            KvOp::Append(k, v) => session.append(k, v).await.map(|()| arg.clone()),
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
        if let Some(index) = record_index {
            self.appends
                .lock()
                .expect("not poisoned")
                .get_mut(key)
                .expect("registered above")[index]
                .outcome = outcome;
        }
        outcome
    }

    /// Reads `keys` once each with `session` after the faults are over,
    /// recording the reads as one new process; panics if a read fails (give
    /// the session the deadline the test can afford).
    pub async fn final_reads(
        &self,
        session: &mut impl KvSession,
        keys: &[String],
    ) -> BTreeMap<String, Option<String>> {
        let process = self.new_process();
        let started = std::time::Instant::now();
        let mut values = BTreeMap::new();
        for key in keys {
            let key_value = Value::String(key.clone());
            self.recorder
                .invoke(process, "get", Some(&key_value), &Value::Null)
                .expect("record");
            let value = session
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

/// One sequential client of a workload: its slot, its current process
/// number and session, and what its operations came to. An operation of
/// unknown outcome retires the process and the session.
pub struct WorkloadClient<S> {
    journal: Arc<Journal>,
    slot: usize,
    process: u64,
    session: S,
    values: u64,
    tally: Tally,
}

impl<S: KvSession> WorkloadClient<S> {
    /// Client `slot` of a workload recorded in `journal`, with a fresh
    /// process number.
    pub fn new(journal: Arc<Journal>, slot: usize, session: S) -> WorkloadClient<S> {
        let process = journal.new_process();
        WorkloadClient {
            journal,
            slot,
            process,
            session,
            values: 0,
            tally: Tally::default(),
        }
    }

    /// A value no other operation of the workload writes, `[slot.process.n]`:
    /// bracketed, so appends can be taken apart again.
    pub fn next_value(&mut self) -> String {
        self.values += 1;
        format!("[{}.{}.{}]", self.slot, self.process, self.values)
    }

    /// Performs `op`, recording it; after an unknown outcome carries on as
    /// a new process with `new_session()`.
    pub async fn perform(&mut self, op: &KvOp, new_session: impl FnOnce() -> S) {
        let outcome = self
            .journal
            .perform(self.slot, self.process, &mut self.session, op)
            .await;
        self.tally.count(outcome);
        if outcome.is_unknown() {
            self.process = self.journal.new_process();
            self.session = new_session();
        }
    }

    /// What this client's operations came to so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }
}

/// The append property, for keys any number of sequential clients append
/// bracketed tokens to: the final value is a sequence of tokens that were
/// each appended to this key, none twice; every acknowledged append is among
/// them; no failed one is; and each client's acknowledged appends appear in
/// the order it made them (an append of unknown outcome may be missing, but
/// never lands before something its client had acknowledged earlier).
pub fn appends_exactly_once(journal: &Journal, key: &str, final_value: Option<&str>) {
    let appends = journal.appends_to(key);
    let value = final_value.unwrap_or("");
    // Position in `appends` of each token found, in final-value order.
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

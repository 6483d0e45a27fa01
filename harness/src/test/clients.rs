//! The client side of a run: seeded workload generators feeding concurrent
//! workers, each a Clerk, every operation recorded as an invoke and a
//! completion.
//!
//! Outcomes follow Jepsen: `ok` when acknowledged, `fail` when the Clerk
//! knows it did not happen, `info` when it may have (a timeout). A worker
//! whose operation ended `info` retires its process number and session and
//! carries on as a fresh process, because the old one might still be
//! executing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use client::{Clerk, ClerkError, ClerkOptions, ClusterClient, ShardedClerk, ShardedClient};
use histories::{EventType, Recorder};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

use super::config::{TestConfig, Workload};
use super::store::Counts;

/// Mixed into the run seed for client randomness.
const CLIENT_SALT: u64 = 0x636c_6965_6e74_7321;

/// Live outcome counters, shared with the progress line.
#[derive(Debug, Default)]
pub struct LiveCounts {
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

impl LiveCounts {
    /// A snapshot of the counters.
    pub fn get(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            fail: self.fail.load(Ordering::Relaxed),
            info: self.info.load(Ordering::Relaxed),
        }
    }
}

/// One operation a generator produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read a key.
    Get(String),
    /// Overwrite a key.
    Put(String, String),
    /// Extend a key.
    Append(String, String),
}

impl Op {
    fn f(&self) -> &'static str {
        match self {
            Op::Get(_) => "get",
            Op::Put(..) => "put",
            Op::Append(..) => "append",
        }
    }

    fn key(&self) -> &str {
        match self {
            Op::Get(k) | Op::Put(k, _) | Op::Append(k, _) => k,
        }
    }

    fn argument(&self) -> Value {
        match self {
            Op::Get(_) => Value::Null,
            Op::Put(_, v) | Op::Append(_, v) => Value::String(v.clone()),
        }
    }
}

/// Draws operations for one worker. Written values are unique in the run
/// (they name the process and a counter), which is what lets the checker
/// tell every write apart.
pub struct Generator {
    workload: Workload,
    keys: usize,
    rng: ChaCha8Rng,
    counter: u64,
}

impl Generator {
    /// The generator of worker `worker` in a run seeded `seed`.
    pub fn new(workload: Workload, keys: usize, seed: u64, worker: usize) -> Generator {
        let seed = seed ^ CLIENT_SALT ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Generator {
            workload,
            keys,
            rng: ChaCha8Rng::seed_from_u64(seed),
            counter: 0,
        }
    }

    /// The next operation, for `process`.
    pub fn next_op(&mut self, process: u64) -> Op {
        self.counter += 1;
        let key = format!("k{}", self.rng.random_range(0..self.keys));
        let roll = self.rng.random_range(0..100);
        let n = self.counter;
        match self.workload {
            // Reads show the whole append order; rare puts reset a key so
            // values stay short and puts are exercised too.
            Workload::KvAppend => match roll {
                0..50 => Op::Get(key),
                50..98 => Op::Append(key, format!("[{process}.{n}]")),
                _ => Op::Put(key, format!("({process}.{n})")),
            },
            Workload::Register => match roll {
                0..50 => Op::Get(key),
                _ => Op::Put(key, format!("{process}.{n}")),
            },
        }
    }

    /// Pause before the next operation for a target of `rate_per_worker`
    /// ops/s: uniform in `[0, 2/rate)`, so arrivals are staggered rather
    /// than in lockstep (Jepsen's `stagger`).
    fn pause(&mut self, rate_per_worker: f64) -> Duration {
        if rate_per_worker <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.rng.random_range(0.0..2.0) / rate_per_worker)
    }
}

/// Shared state of the client workers.
///
/// Each process gets its own `ClusterClient` whose server list starts at a
/// different node (process `p` first tries node `p mod n`), as Jepsen binds
/// each client to a node: requests reach followers and deposed leaders, not
/// only whoever the whole run last found leading, so a node that answers
/// when it should not is caught.
pub struct Clients {
    target: Target,
    /// `None` only for `--no-history` runs that measure the recorder's cost.
    recorder: Option<Arc<Recorder>>,
    next_process: AtomicU64,
    counts: Arc<LiveCounts>,
    config: TestConfig,
}

/// What the clients talk to.
pub enum Target {
    /// One kv group: its nodes' client addresses.
    Group(Vec<String>),
    /// A sharded deployment, reached through the controller at these
    /// client addresses.
    Sharded(Vec<String>),
}

/// One process's session: a plain Clerk, or a sharded one that routes
/// each key to the group owning its shard.
enum KvClerk {
    Plain(Clerk),
    Sharded(ShardedClerk),
}

impl KvClerk {
    async fn get(&mut self, key: &str) -> Result<Option<String>, ClerkError> {
        match self {
            KvClerk::Plain(c) => c.get(key).await,
            KvClerk::Sharded(c) => c.get(key).await,
        }
    }

    async fn put(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        match self {
            KvClerk::Plain(c) => c.put(key, value).await,
            KvClerk::Sharded(c) => c.put(key, value).await,
        }
    }

    async fn append(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        match self {
            KvClerk::Plain(c) => c.append(key, value).await,
            KvClerk::Sharded(c) => c.append(key, value).await,
        }
    }

    fn options_mut(&mut self) -> &mut ClerkOptions {
        match self {
            KvClerk::Plain(c) => c.options_mut(),
            KvClerk::Sharded(c) => c.options_mut(),
        }
    }
}

/// The Clerk options of a run: one attempt waits at most half the
/// operation timeout, and the whole operation at most the timeout.
pub fn clerk_options(config: &TestConfig) -> ClerkOptions {
    ClerkOptions {
        request_timeout: (config.op_timeout / 2).max(Duration::from_millis(100)),
        overall_deadline: Some(config.op_timeout),
        connect_timeout: Duration::from_millis(500),
        seed: Some(config.seed ^ CLIENT_SALT),
        ..ClerkOptions::default()
    }
}

impl Clients {
    /// Clients of `target`, recording into `recorder`.
    pub fn new(
        config: &TestConfig,
        target: Target,
        recorder: Option<Arc<Recorder>>,
        counts: Arc<LiveCounts>,
    ) -> Result<Arc<Clients>> {
        if let Target::Group(addrs) | Target::Sharded(addrs) = &target
            && addrs.is_empty()
        {
            anyhow::bail!("no servers to send requests to");
        }
        Ok(Arc::new(Clients {
            target,
            recorder,
            next_process: AtomicU64::new(0),
            counts,
            config: config.clone(),
        }))
    }

    /// A fresh process number and its Clerk, with a client of its own
    /// (own seed, own leader guesses) that first tries node `process mod n`
    /// of its group, so that requests reach followers and deposed leaders
    /// too. Sharded, the same holds within every replica group.
    fn new_process(&self) -> (u64, KvClerk) {
        let process = self.next_process.fetch_add(1, Ordering::Relaxed);
        let mut options = clerk_options(&self.config);
        options.seed = options
            .seed
            .map(|s| s ^ process.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let clerk = match &self.target {
            Target::Group(addrs) => {
                let first = (process % addrs.len() as u64) as usize;
                let rotated = addrs[first..].iter().chain(&addrs[..first]).cloned();
                let cluster =
                    ClusterClient::new(rotated, options).expect("the server list is not empty");
                KvClerk::Plain(cluster.clerk())
            }
            Target::Sharded(ctrlers) => {
                let client = ShardedClient::starting_at(ctrlers.clone(), options, process as usize)
                    .expect("the controller list is not empty");
                KvClerk::Sharded(client.clerk())
            }
        };
        (process, clerk)
    }

    /// Runs every worker until `until`; returns when the last operation
    /// has completed. A recording failure stops the run.
    pub async fn run(self: &Arc<Self>, until: Instant) -> Result<()> {
        let mut workers = tokio::task::JoinSet::new();
        let rate_per_worker = self.config.rate / self.config.concurrency as f64;
        for worker in 0..self.config.concurrency {
            let clients = Arc::clone(self);
            workers.spawn(async move { clients.worker(worker, rate_per_worker, until).await });
        }
        let mut first_error = None;
        while let Some(joined) = workers.join_next().await {
            let outcome = joined.context("a client worker panicked").and_then(|r| r);
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn worker(&self, worker: usize, rate: f64, until: Instant) -> Result<()> {
        let mut generator = Generator::new(
            self.config.workload,
            self.config.keys,
            self.config.seed,
            worker,
        );
        let (mut process, mut clerk) = self.new_process();
        let mut next_at = Instant::now() + generator.pause(rate);
        loop {
            tokio::time::sleep_until(next_at.min(until)).await;
            if Instant::now() >= until {
                return Ok(());
            }
            let op = generator.next_op(process);
            let outcome = self.perform(process, &mut clerk, &op).await?;
            if outcome == Outcome::Info {
                (process, clerk) = self.new_process();
            }
            next_at = next_at.max(Instant::now() - Duration::from_secs(1)) + generator.pause(rate);
        }
    }

    /// Runs `op` as `process`, recording its invoke and completion.
    async fn perform(&self, process: u64, clerk: &mut KvClerk, op: &Op) -> Result<Outcome> {
        let f = op.f();
        let key = Value::String(op.key().to_owned());
        let argument = op.argument();
        let record = |kind: EventType, value: &Value| -> Result<()> {
            if let Some(recorder) = &self.recorder {
                recorder
                    .record(process, kind, f, Some(&key), value)
                    .context("cannot record to history.jsonl")?;
            }
            Ok(())
        };
        record(EventType::Invoke, &argument)?;
        let result = match op {
            Op::Get(k) => clerk
                .get(k)
                .await
                .map(|v| v.map_or(Value::Null, Value::String)),
            Op::Put(k, v) => clerk.put(k, v).await.map(|()| argument.clone()),
            Op::Append(k, v) => clerk.append(k, v).await.map(|()| argument.clone()),
        };
        let outcome = match result {
            Ok(observed) => {
                record(EventType::Ok, &observed)?;
                self.counts.ok.fetch_add(1, Ordering::Relaxed);
                Outcome::Ok
            }
            Err(e) if e.is_definite() => {
                record(EventType::Fail, &argument)?;
                self.counts.fail.fetch_add(1, Ordering::Relaxed);
                Outcome::Fail
            }
            Err(_) => {
                record(EventType::Info, &argument)?;
                self.counts.info.fetch_add(1, Ordering::Relaxed);
                Outcome::Info
            }
        };
        Ok(outcome)
    }

    /// Reads every key once, after the faults are healed, with a patient
    /// Clerk (`deadline` per read); these reads pin down the final state.
    /// Returns whether every read succeeded.
    pub async fn final_reads(&self, deadline: Duration) -> Result<bool> {
        let patient = |(process, mut clerk): (u64, KvClerk)| {
            clerk.options_mut().overall_deadline = Some(deadline);
            (process, clerk)
        };
        let (mut process, mut clerk) = patient(self.new_process());
        let mut all_read = true;
        for k in 0..self.config.keys {
            let op = Op::Get(format!("k{k}"));
            if self.perform(process, &mut clerk, &op).await? != Outcome::Ok {
                all_read = false;
                (process, clerk) = patient(self.new_process());
            }
        }
        Ok(all_read)
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fail,
    Info,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_seeded_per_worker() {
        let ops = |seed, worker| {
            let mut g = Generator::new(Workload::KvAppend, 8, seed, worker);
            (0..50).map(|_| g.next_op(1)).collect::<Vec<_>>()
        };
        assert_eq!(ops(1, 0), ops(1, 0));
        assert_ne!(ops(1, 0), ops(1, 1));
        assert_ne!(ops(1, 0), ops(2, 0));
    }

    #[test]
    fn written_values_are_unique_across_processes() {
        let mut a = Generator::new(Workload::KvAppend, 2, 9, 0);
        let mut b = Generator::new(Workload::KvAppend, 2, 9, 1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            for op in [a.next_op(0), b.next_op(1)] {
                if let Op::Put(_, v) | Op::Append(_, v) = op {
                    assert!(seen.insert(v), "a value was written twice");
                }
            }
        }
    }

    #[test]
    fn register_workload_only_puts_and_gets() {
        let mut g = Generator::new(Workload::Register, 4, 3, 0);
        assert!((0..200).all(|_| !matches!(g.next_op(0), Op::Append(..))));
    }
}

//! Closed-loop load from concurrent sessions: the engine behind `kvctl
//! bench` and `faultline bench`.
//!
//! Each of [`LoadSpec::clients`] tasks runs its own session (a [`Clerk`], or
//! a [`ShardedClerk`] against a sharded deployment) in a loop: pick an
//! operation from the [`Mix`] and a key uniformly from [`LoadSpec::keys`],
//! run it, repeat; a client never has more than one operation in flight, so
//! the offered load is the number of clients (closed loop). Operations
//! started during the warm-up are not measured, nor those still running when
//! the measured window ends; every other completed operation's latency goes
//! into a per-client HdrHistogram (microseconds, 3 significant digits),
//! merged at the end. Errors (an operation given up at the client's
//! deadline) are counted, not timed.
//!
//! Against a sharded deployment the keys hash over the shards, so the load
//! spreads over the groups as the configuration assigns shards. Measured
//! operations are counted per shard and, at the end, summed per group that
//! owns each shard in the latest configuration ([`GroupCounts`]).
//!
//! Key and operation choices come from ChaCha8 seeded per client from
//! [`LoadSpec::seed`], so two runs with one seed offer the same sequence of
//! operations (their timing, and so their interleaving, still differs).

use std::collections::BTreeMap;
use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::{Clerk, ClerkError, ClusterClient, GroupId, ShardConfig, ShardedClerk, ShardedClient};

/// The operations a load can issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A linearizable read of one key.
    Get,
    /// Overwrite one key with a fresh value.
    Put,
    /// Append a value to one key.
    Append,
}

impl OpKind {
    /// The name used in mixes and reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Append => "append",
        }
    }
}

/// Why a mix such as `put=80,get=20` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// A part names an operation that does not exist.
    #[error("unknown operation {0:?} (get, put, append)")]
    UnknownOp(String),
    /// A part's weight is not a whole number.
    #[error("weight of {name:?} is not a whole number: {source}")]
    BadWeight {
        /// The operation whose weight is wrong.
        name: String,
        /// What the number parser said.
        source: ParseIntError,
    },
    /// The weights overflow.
    #[error("the weights add up to more than 2^32")]
    TooHeavy,
    /// No operation has a positive weight.
    #[error("the mix {0:?} has no operation with a positive weight")]
    Empty(String),
}

/// Weighted choice of operations, parsed from `put=80,get=20`; a bare name
/// (`append`) weighs 1. The same grammar serves every tool, so one mix
/// means the same load everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Operations with a positive weight, in [`OpKind`] order.
    weights: Vec<(OpKind, u32)>,
    total: u32,
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Mix, MixError> {
        let mut weights: BTreeMap<OpKind, u32> = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let kind = match name.trim() {
                "get" => OpKind::Get,
                "put" => OpKind::Put,
                "append" => OpKind::Append,
                other => return Err(MixError::UnknownOp(other.to_string())),
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|source| MixError::BadWeight {
                    name: name.trim().to_string(),
                    source,
                })?;
            let entry = weights.entry(kind).or_default();
            *entry = entry.checked_add(weight).ok_or(MixError::TooHeavy)?;
        }
        let total = weights
            .values()
            .try_fold(0u32, |a, &w| a.checked_add(w))
            .ok_or(MixError::TooHeavy)?;
        if total == 0 {
            return Err(MixError::Empty(s.to_string()));
        }
        Ok(Mix {
            weights: weights.into_iter().filter(|(_, w)| *w > 0).collect(),
            total,
        })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Mix {
    /// Draws the next operation.
    pub fn pick(&self, rng: &mut ChaCha8Rng) -> OpKind {
        let mut roll = rng.random_range(0..self.total);
        for &(kind, weight) in &self.weights {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        self.weights[self.weights.len() - 1].0
    }

    /// The operation, when the mix has only one: reference figures are
    /// published per operation, so only such a mix compares with them.
    pub fn only(&self) -> Option<OpKind> {
        match self.weights.as_slice() {
            [(kind, _)] => Some(*kind),
            _ => None,
        }
    }

    /// The operations with a positive weight, in a fixed order.
    pub fn kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.weights.iter().map(|(kind, _)| *kind)
    }
}

/// What a load runs against.
#[derive(Clone)]
pub enum Target {
    /// One Raft group.
    Group(ClusterClient),
    /// A sharded deployment, through its controller.
    Sharded(ShardedClient),
}

impl Target {
    fn clerk(&self) -> LoadClerk {
        match self {
            Target::Group(cluster) => LoadClerk::Group(cluster.clerk()),
            Target::Sharded(sharded) => LoadClerk::Sharded(sharded.clerk()),
        }
    }
}

/// One load client's session, plain or sharded.
enum LoadClerk {
    Group(Clerk),
    Sharded(ShardedClerk),
}

impl LoadClerk {
    async fn run(&mut self, kind: OpKind, key: &str, value: &str) -> Result<(), ClerkError> {
        match (self, kind) {
            (LoadClerk::Group(c), OpKind::Get) => c.get(key).await.map(|_| ()),
            (LoadClerk::Group(c), OpKind::Put) => c.put(key, value).await,
            (LoadClerk::Group(c), OpKind::Append) => c.append(key, value).await,
            (LoadClerk::Sharded(c), OpKind::Get) => c.get(key).await.map(|_| ()),
            (LoadClerk::Sharded(c), OpKind::Put) => c.put(key, value).await,
            (LoadClerk::Sharded(c), OpKind::Append) => c.append(key, value).await,
        }
    }

    fn is_sharded(&self) -> bool {
        matches!(self, LoadClerk::Sharded(_))
    }
}

/// The key of index `i`: every load and preload names keys the same way, so
/// a preload fills exactly the keys a later load touches.
pub fn key_name(i: u64) -> String {
    format!("bench-{i}")
}

/// What to offer: how many clients, for how long, over which keys.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Concurrent clients, each with its own session.
    pub clients: usize,
    /// How long to run before measuring (new sessions find their leader,
    /// connections and caches warm up).
    pub warmup: Duration,
    /// How long to measure, after the warm-up.
    pub duration: Duration,
    /// Number of distinct keys, drawn uniformly.
    pub keys: u64,
    /// Bytes per value written.
    pub value_size: usize,
    /// Which operations, in what proportion.
    pub mix: Mix,
    /// Seed of the key and operation choices.
    pub seed: u64,
}

/// Why a load could not be run or summed up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec asks for an empty load.
    #[error("a load needs at least one {0}")]
    Empty(&'static str),
    /// The latency histogram could not be built.
    #[error("cannot create a latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// Per-client histograms could not be merged.
    #[error("cannot merge latency histograms: {0}")]
    Merge(#[from] hdrhistogram::AdditionError),
    /// A client task panicked or was cancelled.
    #[error("a load client failed: {0}")]
    Client(#[from] tokio::task::JoinError),
}

/// Operations completed and failed so far, over every client and phase
/// (warm-up included): for progress displays while a load runs.
#[derive(Debug, Default)]
pub struct LiveCounts {
    completed: AtomicU64,
    failed: AtomicU64,
}

impl LiveCounts {
    /// Operations that succeeded so far.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Operations given up on so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The measured figures of one operation kind.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// Measured successful operations.
    pub ops: u64,
    /// Measured operations given up on.
    pub errors: u64,
    /// Their latencies.
    pub latency_us: Latency,
}

/// What a load measured (`kvctl bench --json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Warm-up before it, seconds.
    pub warmup_s: f64,
    /// Distinct keys.
    pub keys: u64,
    /// Bytes per value written.
    pub value_size: usize,
    /// The mix, as `get=1,put=3`.
    pub mix: String,
    /// Seed of the key and operation choices.
    pub seed: u64,
    /// Measured successful operations.
    pub ops: u64,
    /// Measured operations given up on.
    pub errors: u64,
    /// Successful operations per second of the measured window.
    pub ops_per_sec: f64,
    /// Latencies of every measured successful operation.
    pub latency_us: Latency,
    /// The same per operation kind.
    pub by_op: BTreeMap<OpKind, OpReport>,
    /// Sharded runs: measured operations per group, each shard counted for
    /// its owner in `config_num`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_group: Option<GroupCounts>,
}

/// Operations per group, by the owners in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    /// The configuration whose owners the shards were counted for.
    pub config_num: u64,
    /// gid → operations; gid 0 collects shards the configuration leaves
    /// unassigned.
    pub ops: BTreeMap<GroupId, u64>,
}

impl GroupCounts {
    /// Sums per-shard counts into their owners in `config`.
    pub fn of(by_shard: &[u64], config: &ShardConfig) -> GroupCounts {
        let mut ops: BTreeMap<GroupId, u64> = BTreeMap::new();
        for (shard, &count) in by_shard.iter().enumerate() {
            let owner = config.shards.get(shard).copied().unwrap_or(0);
            *ops.entry(owner).or_default() += count;
        }
        GroupCounts {
            config_num: config.num,
            ops,
        }
    }
}

/// What one client measured.
struct ClientTally {
    latency: BTreeMap<OpKind, Histogram<u64>>,
    errors: BTreeMap<OpKind, u64>,
    /// Measured successful operations per shard (sharded runs only).
    by_shard: Vec<u64>,
}

fn new_histogram() -> Result<Histogram<u64>, LoadError> {
    // 1 µs to 1 hour, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// Runs `spec` against `target` and sums up what it measured; `live` counts
/// as it goes, for whoever shows progress.
pub async fn run(
    target: &Target,
    spec: &LoadSpec,
    live: Arc<LiveCounts>,
) -> Result<LoadReport, LoadError> {
    if spec.clients == 0 {
        return Err(LoadError::Empty("client"));
    }
    if spec.keys == 0 {
        return Err(LoadError::Empty("key"));
    }
    if spec.duration.is_zero() {
        return Err(LoadError::Empty("measured instant (the duration is zero)"));
    }

    let started = Instant::now();
    let measure_from = started + spec.warmup;
    let end = measure_from + spec.duration;
    let template = new_histogram()?;
    let value: Arc<str> = "v".repeat(spec.value_size).into();

    let mut tasks = Vec::with_capacity(spec.clients);
    for index in 0..spec.clients {
        let clerk = target.clerk();
        let rng = ChaCha8Rng::seed_from_u64(spec.seed.wrapping_add(index as u64));
        let client = LoadClient {
            mix: spec.mix.clone(),
            keys: spec.keys,
            value: Arc::clone(&value),
            measure_from,
            end,
            live: Arc::clone(&live),
            template: template.clone(),
        };
        tasks.push(tokio::spawn(client.drive(clerk, rng)));
    }

    let mut total = template.clone();
    let mut by_op: BTreeMap<OpKind, (Histogram<u64>, u64)> = BTreeMap::new();
    let mut by_shard = vec![0u64; wire::NSHARDS.get() as usize];
    for task in tasks {
        let tally = task.await?;
        for (total, count) in by_shard.iter_mut().zip(&tally.by_shard) {
            *total += count;
        }
        for (kind, h) in tally.latency {
            total.add(&h)?;
            let entry = by_op.entry(kind).or_insert_with(|| (template.clone(), 0));
            entry.0.add(&h)?;
        }
        for (kind, errors) in tally.errors {
            by_op.entry(kind).or_insert_with(|| (template.clone(), 0)).1 += errors;
        }
    }
    let by_group = match target {
        Target::Group(_) => None,
        Target::Sharded(sharded) => match sharded.latest_config().await {
            Ok(config) => Some(GroupCounts::of(&by_shard, &config)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the final configuration; using the cached one");
                sharded
                    .cached_config()
                    .map(|config| GroupCounts::of(&by_shard, &config))
            }
        },
    };

    let measured = spec.duration.as_secs_f64();
    Ok(LoadReport {
        clients: spec.clients,
        duration_s: measured,
        warmup_s: spec.warmup.as_secs_f64(),
        keys: spec.keys,
        value_size: spec.value_size,
        mix: spec.mix.to_string(),
        seed: spec.seed,
        ops: total.len(),
        errors: by_op.values().map(|(_, e)| e).sum(),
        ops_per_sec: total.len() as f64 / measured,
        latency_us: Latency::of(&total),
        by_op: by_op
            .iter()
            .map(|(kind, (h, errors))| {
                let report = OpReport {
                    ops: h.len(),
                    errors: *errors,
                    latency_us: Latency::of(h),
                };
                (*kind, report)
            })
            .collect(),
        by_group,
    })
}

/// One client's share of a load.
struct LoadClient {
    mix: Mix,
    keys: u64,
    value: Arc<str>,
    measure_from: Instant,
    end: Instant,
    live: Arc<LiveCounts>,
    /// An empty histogram with the right bounds, cloned per operation kind.
    template: Histogram<u64>,
}

impl LoadClient {
    async fn drive(self, mut clerk: LoadClerk, mut rng: ChaCha8Rng) -> ClientTally {
        let shards = if clerk.is_sharded() {
            wire::NSHARDS.get() as usize
        } else {
            0
        };
        let mut tally = ClientTally {
            latency: BTreeMap::new(),
            errors: BTreeMap::new(),
            by_shard: vec![0; shards],
        };
        while Instant::now() < self.end {
            let kind = self.mix.pick(&mut rng);
            let key = key_name(rng.random_range(0..self.keys));
            let began = Instant::now();
            let result = clerk.run(kind, &key, &self.value).await;
            let took = began.elapsed();
            let measured = began >= self.measure_from && Instant::now() <= self.end;
            match result {
                Ok(()) => {
                    self.live.completed.fetch_add(1, Ordering::Relaxed);
                    if measured {
                        let h = tally
                            .latency
                            .entry(kind)
                            .or_insert_with(|| self.template.clone());
                        h.saturating_record(
                            u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1),
                        );
                        let shard = wire::key_to_shard(&key, wire::NSHARDS) as usize;
                        if let Some(count) = tally.by_shard.get_mut(shard) {
                            *count += 1;
                        }
                    }
                }
                Err(e) => {
                    self.live.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "load operation failed");
                    if measured {
                        *tally.errors.entry(kind).or_default() += 1;
                    }
                }
            }
        }
        tally
    }
}

/// Writes every key of `0..keys` once with a `value_size`-byte value, over
/// `writers` concurrent sessions, so that a load's gets read real values
/// and every load over the same keys finds the same amount of data.
/// Returns how many writes failed (given up at the client's deadline).
pub async fn preload(
    target: &Target,
    keys: u64,
    value_size: usize,
    writers: usize,
) -> Result<u64, LoadError> {
    if writers == 0 {
        return Err(LoadError::Empty("writer"));
    }
    let value: Arc<str> = "v".repeat(value_size).into();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let mut clerk = target.clerk();
        let next = Arc::clone(&next);
        let value = Arc::clone(&value);
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    return failed;
                }
                if let Err(e) = clerk.run(OpKind::Put, &key_name(i), &value).await {
                    tracing::warn!(error = %e, "preload write failed");
                    failed += 1;
                }
            }
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights_and_picks_in_proportion() {
        let mix: Mix = "put=3, get=1".parse().unwrap();
        assert_eq!(mix.to_string(), "get=1,put=3");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let puts = (0..4000)
            .filter(|_| mix.pick(&mut rng) == OpKind::Put)
            .count();
        assert!((2800..3200).contains(&puts), "{puts} puts out of 4000");
    }

    #[test]
    fn a_bare_operation_name_weighs_one() {
        let mix: Mix = "append".parse().unwrap();
        assert_eq!(mix.to_string(), "append=1");
        assert_eq!(mix.only(), Some(OpKind::Append));
        let mix: Mix = "put,get=2".parse().unwrap();
        assert_eq!(mix.to_string(), "get=2,put=1");
    }

    #[test]
    fn only_names_the_single_operation_of_a_pure_mix() {
        assert_eq!("put=5".parse::<Mix>().unwrap().only(), Some(OpKind::Put));
        assert_eq!(
            "get=1,put=0".parse::<Mix>().unwrap().only(),
            Some(OpKind::Get)
        );
        assert_eq!("get=1,put=1".parse::<Mix>().unwrap().only(), None);
        let kinds: Vec<OpKind> = "put=1,append=2,get=1"
            .parse::<Mix>()
            .unwrap()
            .kinds()
            .collect();
        assert_eq!(kinds, [OpKind::Get, OpKind::Put, OpKind::Append]);
    }

    #[test]
    fn group_counts_sum_each_shard_into_its_owner() {
        let config = ShardConfig {
            num: 6,
            shards: vec![1, 1, 2, 2, 2, 0, 1, 2, 1, 1],
            groups: BTreeMap::from([(1, vec!["a:1".into()]), (2, vec!["b:1".into()])]),
        };
        let by_shard = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let counts = GroupCounts::of(&by_shard, &config);
        assert_eq!(counts.config_num, 6);
        assert_eq!(
            counts.ops,
            BTreeMap::from([(0, 6), (1, 1 + 2 + 7 + 9 + 10), (2, 3 + 4 + 5 + 8)])
        );
    }

    #[test]
    fn mix_rejects_unknown_operations_and_empty_weights() {
        assert!(matches!(
            "delete=1".parse::<Mix>(),
            Err(MixError::UnknownOp(op)) if op == "delete"
        ));
        assert!(matches!(
            "put=0,get=0".parse::<Mix>(),
            Err(MixError::Empty(_))
        ));
        assert!(matches!("".parse::<Mix>(), Err(MixError::Empty(_))));
        assert!(matches!(
            "put=-1".parse::<Mix>(),
            Err(MixError::BadWeight { .. })
        ));
        assert!(matches!(
            "put=4294967295,get=1".parse::<Mix>(),
            Err(MixError::TooHeavy)
        ));
        assert!(matches!(
            "put=4294967295,put=1".parse::<Mix>(),
            Err(MixError::TooHeavy)
        ));
    }
}

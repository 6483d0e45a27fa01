//! `kvctl bench`: closed-loop load from concurrent Clerks.
//!
//! Each of `--clients` tasks runs its own Clerk in a loop: pick an operation
//! from the mix and a key uniformly from `--keys`, run it, repeat. Operations
//! started during the warm-up are not measured; after it, every completed
//! operation's latency goes into a per-client HdrHistogram (microseconds, 3
//! significant digits), merged at the end. Errors (gave up at the deadline)
//! are counted, not timed.
//!
//! Against a sharded deployment (`--ctrlers`) each client is a
//! [`ShardedClerk`]; the keys hash over the shards, so the load spreads over
//! the groups as the configuration assigns shards. Measured operations are
//! counted per shard and, at the end, summed per group that owns each shard
//! in the latest configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use client::{Clerk, ClerkError, ClusterClient, GroupId, ShardedClerk, ShardedClient};
use hdrhistogram::Histogram;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// Options of `kvctl bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients (each a Clerk, or a sharded clerk with --ctrlers,
    /// with its own session).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to run before measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Number of distinct keys, drawn uniformly.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Operation mix as weights, e.g. `put=80,get=20` or `append=1,get=1`.
    #[arg(long, default_value = "put=100")]
    mix: Mix,
    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// The three operations a benchmark can issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum OpKind {
    Get,
    Put,
    Append,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Append => "append",
        }
    }
}

/// Weighted operation choice, parsed from `put=80,get=20`.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(OpKind, u32)>,
    total: u32,
}

impl FromStr for Mix {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Mix> {
        let mut weights: BTreeMap<OpKind, u32> = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("{part:?} is not op=weight"))?;
            let kind = match name.trim() {
                "get" => OpKind::Get,
                "put" => OpKind::Put,
                "append" => OpKind::Append,
                other => bail!("unknown operation {other:?} (get, put, append)"),
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .with_context(|| format!("weight of {name:?} is not a whole number"))?;
            *weights.entry(kind).or_default() += weight;
        }
        let total = weights.values().try_fold(0u32, |a, &w| a.checked_add(w));
        let total = total.context("the weights add up to more than 2^32")?;
        ensure!(
            total > 0,
            "the mix {s:?} has no operation with a positive weight"
        );
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
    fn pick(&self, rng: &mut ChaCha8Rng) -> OpKind {
        let mut roll = rng.random_range(0..self.total);
        for &(kind, weight) in &self.weights {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        self.weights[self.weights.len() - 1].0
    }
}

/// What the benchmark runs against.
pub enum Target {
    /// One Raft group (`--servers`).
    Group(ClusterClient),
    /// A sharded deployment (`--ctrlers`).
    Sharded(ShardedClient),
}

impl Target {
    fn clerk(&self) -> BenchClerk {
        match self {
            Target::Group(cluster) => BenchClerk::Group(cluster.clerk()),
            Target::Sharded(sharded) => BenchClerk::Sharded(sharded.clerk()),
        }
    }
}

/// One benchmark client's session, plain or sharded.
enum BenchClerk {
    Group(Clerk),
    Sharded(ShardedClerk),
}

impl BenchClerk {
    async fn run(&mut self, kind: OpKind, key: &str, value: &str) -> Result<(), ClerkError> {
        match (self, kind) {
            (BenchClerk::Group(c), OpKind::Get) => c.get(key).await.map(|_| ()),
            (BenchClerk::Group(c), OpKind::Put) => c.put(key, value).await,
            (BenchClerk::Group(c), OpKind::Append) => c.append(key, value).await,
            (BenchClerk::Sharded(c), OpKind::Get) => c.get(key).await.map(|_| ()),
            (BenchClerk::Sharded(c), OpKind::Put) => c.put(key, value).await,
            (BenchClerk::Sharded(c), OpKind::Append) => c.append(key, value).await,
        }
    }

    fn is_sharded(&self) -> bool {
        matches!(self, BenchClerk::Sharded(_))
    }
}

/// What one client measured.
struct ClientTally {
    latency: BTreeMap<OpKind, Histogram<u64>>,
    errors: BTreeMap<OpKind, u64>,
    /// Measured successful operations per shard (sharded runs only).
    by_shard: Vec<u64>,
}

/// Latency summary in microseconds.
#[derive(Debug, Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
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

#[derive(Debug, Serialize)]
struct OpReport {
    ops: u64,
    errors: u64,
    latency_us: Latency,
}

/// The machine-readable result (`--json`).
#[derive(Debug, Serialize)]
struct Report {
    clients: usize,
    duration_s: f64,
    warmup_s: f64,
    keys: u64,
    value_size: usize,
    mix: String,
    seed: u64,
    ops: u64,
    errors: u64,
    ops_per_sec: f64,
    latency_us: Latency,
    by_op: BTreeMap<OpKind, OpReport>,
    /// Sharded runs: measured operations per group, each shard counted for
    /// its owner in `config_num`.
    #[serde(skip_serializing_if = "Option::is_none")]
    by_group: Option<GroupCounts>,
}

/// Operations per group, by the owners in one configuration.
#[derive(Debug, Serialize)]
struct GroupCounts {
    config_num: u64,
    /// gid → operations; gid 0 collects shards the configuration leaves
    /// unassigned.
    ops: BTreeMap<GroupId, u64>,
}

impl GroupCounts {
    /// Sums per-shard counts into their owners in `config`.
    fn of(by_shard: &[u64], config: &client::ShardConfig) -> GroupCounts {
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

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("cannot create a latency histogram")
}

/// Runs the benchmark and prints its result.
pub async fn run(target: &Target, args: &BenchArgs, seed: u64) -> anyhow::Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(args.keys > 0, "--keys must be at least 1");
    ensure!(!args.duration.is_zero(), "--duration must be positive");

    let started = Instant::now();
    let measure_from = started + args.warmup;
    let end = measure_from + args.duration;
    let completed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let template = new_histogram()?;

    let mut tasks = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let clerk = target.clerk();
        let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(index as u64));
        let load = Load {
            mix: args.mix.clone(),
            keys: args.keys,
            value: "v".repeat(args.value_size),
            measure_from,
            end,
            completed: completed.clone(),
            failed: failed.clone(),
            template: template.clone(),
        };
        tasks.push(tokio::spawn(load.drive(clerk, rng)));
    }
    let progress = tokio::spawn(report_progress(
        started,
        measure_from,
        end,
        completed.clone(),
        failed.clone(),
    ));

    let mut total = template.clone();
    let mut by_op: BTreeMap<OpKind, (Histogram<u64>, u64)> = BTreeMap::new();
    let mut by_shard = vec![0u64; wire::NSHARDS.get() as usize];
    for task in tasks {
        let tally = task.await.context("a benchmark client panicked")?;
        for (total, count) in by_shard.iter_mut().zip(&tally.by_shard) {
            *total += count;
        }
        for (kind, h) in tally.latency {
            total.add(&h).context("merging histograms")?;
            let entry = by_op.entry(kind).or_insert_with(|| (template.clone(), 0));
            entry.0.add(&h).context("merging histograms")?;
        }
        for (kind, errors) in tally.errors {
            by_op.entry(kind).or_insert_with(|| (template.clone(), 0)).1 += errors;
        }
    }
    progress.abort();
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

    let measured = args.duration.as_secs_f64();
    let report = Report {
        clients: args.clients,
        duration_s: measured,
        warmup_s: args.warmup.as_secs_f64(),
        keys: args.keys,
        value_size: args.value_size,
        mix: args.mix.to_string(),
        seed,
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
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

/// One client's workload.
struct Load {
    mix: Mix,
    keys: u64,
    value: String,
    measure_from: Instant,
    end: Instant,
    completed: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    /// An empty histogram with the right bounds, cloned per operation kind.
    template: Histogram<u64>,
}

impl Load {
    async fn drive(self, mut clerk: BenchClerk, mut rng: ChaCha8Rng) -> ClientTally {
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
            let key = format!("bench-{}", rng.random_range(0..self.keys));
            let began = Instant::now();
            let result = clerk.run(kind, &key, &self.value).await;
            let took = began.elapsed();
            let measured = began >= self.measure_from && Instant::now() <= self.end;
            match result {
                Ok(()) => {
                    self.completed.fetch_add(1, Ordering::Relaxed);
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
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "benchmark operation failed");
                    if measured {
                        *tally.errors.entry(kind).or_default() += 1;
                    }
                }
            }
        }
        tally
    }
}

/// Prints one line per second to stderr: phase, throughput, errors.
async fn report_progress(
    started: Instant,
    measure_from: Instant,
    end: Instant,
    completed: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut last = 0;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now > end {
            return;
        }
        let done = completed.load(Ordering::Relaxed);
        let phase = if now < measure_from {
            "warm-up"
        } else {
            "measure"
        };
        eprintln!(
            "[{:>4.0}s {phase}] {:>8} ops/s  errors {}",
            (now - started).as_secs_f64(),
            done - last,
            failed.load(Ordering::Relaxed)
        );
        last = done;
    }
}

fn print_text(r: &Report) {
    println!(
        "kvctl bench: {} clients, {:.1}s measured after {:.1}s warm-up, {} keys, {}-byte values, mix {}",
        r.clients, r.duration_s, r.warmup_s, r.keys, r.value_size, r.mix
    );
    println!(
        "  throughput  {:.0} ops/s ({} ops, {} errors)",
        r.ops_per_sec, r.ops, r.errors
    );
    println!("  latency     {}", latency_line(&r.latency_us));
    for (kind, op) in &r.by_op {
        println!(
            "  {:<10}  {} ops, {} errors; {}",
            kind.name(),
            op.ops,
            op.errors,
            latency_line(&op.latency_us)
        );
    }
    if let Some(groups) = &r.by_group {
        let parts: Vec<String> = groups
            .ops
            .iter()
            .map(|(gid, ops)| {
                let share = 100.0 * *ops as f64 / r.ops.max(1) as f64;
                let name = if *gid == 0 {
                    "unassigned".to_string()
                } else {
                    format!("group {gid}")
                };
                format!("{name}: {ops} ops ({share:.0}%)")
            })
            .collect();
        println!(
            "  by group    {} (owners in configuration {})",
            parts.join(", "),
            groups.config_num
        );
    }
}

fn latency_line(l: &Latency) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
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
    fn group_counts_sum_each_shard_into_its_owner() {
        let config = client::ShardConfig {
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
        assert!("delete=1".parse::<Mix>().is_err());
        assert!("put=0,get=0".parse::<Mix>().is_err());
        assert!("put".parse::<Mix>().is_err());
        assert!("put=-1".parse::<Mix>().is_err());
    }
}

//! What a run is: the `faultline test` flags, and the replayable
//! configuration written to the store as `config.toml`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;

/// Flags of `faultline test`.
#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    /// Number of kvd nodes in the Raft group.
    #[arg(long, default_value_t = 5)]
    pub nodes: u64,
    /// Concurrent client workers; a worker whose operation times out
    /// (`info`) continues as a fresh process, as in Jepsen.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// How long clients keep invoking operations (faults included).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub time_limit: Duration,
    /// Target operations per second over all clients; 0 runs every client
    /// flat out (closed loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// What clients do.
    #[arg(long, value_enum, default_value_t = Workload::KvAppend)]
    pub workload: Workload,
    /// Number of keys the clients share.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Faults to inject, comma-separated (`partition,kill,pause`, a specific
    /// shape such as `partition-ring`, or `none`); each nemesis cycle picks
    /// one at random (seeded).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "partition,kill"
    )]
    pub nemesis: Vec<FaultKind>,
    /// Length of one nemesis cycle: a fault, then its repair and a quiet
    /// stretch before the next.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub nemesis_interval: Duration,
    /// Seed for the workload, the nemesis schedule and the servers; random
    /// (and printed) when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How faults reach the network: `netns` (a namespace per node,
    /// iptables; root only), `proxy` (userspace TCP relays per link), or
    /// `auto` (netns when available, else proxy).
    #[arg(long, value_enum, default_value_t = NetChoice::Auto)]
    pub net: NetChoice,
    /// Run the test this many times (seeds `seed`, `seed+1`, ...); the exit
    /// code is the worst verdict.
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    /// A kvd executable to test instead of this binary's built-in server.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Extra argument passed to every server, repeatable (e.g.
    /// `--server-arg=--snapshot-threshold=65536`).
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// How long a client waits for one operation before recording it as
    /// `info` (outcome unknown).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub op_timeout: Duration,
    /// Root of the run store; each run writes `<store>/<name>/<time>-<seed>/`.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Test name in the store; default from the workload and nemesis.
    #[arg(long)]
    pub name: Option<String>,
    /// Also write a JUnit XML report here, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Do not record the history (nor check it): only for measuring what
    /// recording costs, by comparing the rate with and without. The
    /// verdict of such a run is `unknown`.
    #[arg(long)]
    pub no_history: bool,
    /// Time budget of the linearizability check; past it the verdict is
    /// `unknown`.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub check_time_limit: Duration,
}

/// The workloads `faultline test` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Appends of unique values and reads of whole values over a few keys
    /// (plus an occasional put): reads reveal the order of every append, so
    /// lost, duplicated and reordered writes and stale reads all show.
    KvAppend,
    /// Puts of unique values and gets: each key a linearizable register.
    Register,
}

impl Workload {
    /// The name used in reports and store paths.
    pub fn name(self) -> &'static str {
        match self {
            Workload::KvAppend => "kv-append",
            Workload::Register => "register",
        }
    }
}

/// A kind of fault the nemesis may choose for a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// No faults at all (only valid alone).
    None,
    /// Any of the partition shapes below.
    Partition,
    /// Two random halves; the bigger keeps a majority.
    PartitionHalves,
    /// One random node cut off from the rest.
    PartitionOne,
    /// The current leader cut off from the rest.
    PartitionLeader,
    /// Every node sees a majority, no two the same one.
    PartitionRing,
    /// Two halves joined by one node that sees both.
    PartitionBridge,
    /// SIGKILL one node, a minority, a majority, all nodes or the leader;
    /// restarted on the same data directory when the fault ends.
    Kill,
    /// SIGKILL the current leader.
    KillLeader,
    /// SIGSTOP one node, a minority or the leader; SIGCONT when the fault
    /// ends.
    Pause,
    /// SIGSTOP the current leader.
    PauseLeader,
}

impl FaultKind {
    /// The flag spelling.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::Partition => "partition",
            FaultKind::PartitionHalves => "partition-halves",
            FaultKind::PartitionOne => "partition-one",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::PartitionRing => "partition-ring",
            FaultKind::PartitionBridge => "partition-bridge",
            FaultKind::Kill => "kill",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::Pause => "pause",
            FaultKind::PauseLeader => "pause-leader",
        }
    }
}

/// The network backend asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetChoice {
    /// netns when this process may use it, else proxy.
    Auto,
    /// Userspace TCP relays per peer link.
    Proxy,
    /// A network namespace per node and iptables (root).
    Netns,
}

/// The network backend a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetBackend {
    /// Userspace TCP relays per peer link.
    Proxy,
    /// A network namespace per node and iptables.
    Netns,
}

impl NetBackend {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            NetBackend::Proxy => "proxy",
            NetBackend::Netns => "netns",
        }
    }
}

/// Everything needed to run (or replay) one test: written to the store as
/// `config.toml` and read back by `faultline replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    /// Test name (the store folder).
    pub name: String,
    /// Seed of the workload, the schedule and the servers.
    pub seed: u64,
    /// Raft group size.
    pub nodes: u64,
    /// Concurrent client workers.
    pub concurrency: usize,
    /// Client phase length, e.g. "60s".
    #[serde(with = "humantime_serde_str")]
    pub time_limit: Duration,
    /// Target ops/s over all clients (0: flat out).
    pub rate: f64,
    /// Client workload.
    pub workload: Workload,
    /// Number of keys.
    pub keys: usize,
    /// Fault kinds the schedule drew from.
    pub nemesis: Vec<FaultKind>,
    /// Nemesis cycle length.
    #[serde(with = "humantime_serde_str")]
    pub nemesis_interval: Duration,
    /// Network backend.
    pub net: NetBackend,
    /// Server executable (absent: the harness itself, `faultline kvd`).
    pub server_bin: Option<PathBuf>,
    /// Extra server arguments.
    pub server_args: Vec<String>,
    /// Per-operation client timeout.
    #[serde(with = "humantime_serde_str")]
    pub op_timeout: Duration,
    /// Check time budget.
    #[serde(with = "humantime_serde_str")]
    pub check_time_limit: Duration,
    /// Skip recording and checking (overhead measurements only).
    #[serde(default)]
    pub no_history: bool,
    /// The concrete fault schedule, drawn from the seed.
    pub schedule: Schedule,
}

impl TestArgs {
    /// Checks the flags and turns them into a run configuration for
    /// `seed` on `net`.
    pub fn to_config(&self, seed: u64, net: NetBackend) -> Result<TestConfig> {
        if !(1..=9).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 9, got {}", self.nodes);
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.keys == 0 {
            bail!("--keys must be at least 1");
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            bail!("--rate must be a number of operations per second, 0 or more");
        }
        if self.time_limit.is_zero() {
            bail!("--time-limit must be above zero");
        }
        if self.nemesis_interval < Duration::from_millis(500) {
            bail!("--nemesis-interval must be at least 500ms");
        }
        if self.op_timeout < Duration::from_millis(100) {
            bail!("--op-timeout must be at least 100ms");
        }
        if self.test_count == 0 {
            bail!("--test-count must be at least 1");
        }
        let mut nemesis = self.nemesis.clone();
        nemesis.sort();
        nemesis.dedup();
        if nemesis.contains(&FaultKind::None) && nemesis.len() > 1 {
            bail!("--nemesis none cannot be combined with other faults");
        }
        let name = self.name.clone().unwrap_or_else(|| {
            let faults: Vec<&str> = nemesis.iter().map(|k| k.name()).collect();
            format!("{}-{}", self.workload.name(), faults.join("+"))
        });
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            bail!("--name {name:?} must be a plain folder name");
        }
        let schedule = Schedule::draw(
            seed,
            self.nodes,
            &nemesis,
            self.time_limit,
            self.nemesis_interval,
        );
        Ok(TestConfig {
            name,
            seed,
            nodes: self.nodes,
            concurrency: self.concurrency,
            time_limit: self.time_limit,
            rate: self.rate,
            workload: self.workload,
            keys: self.keys,
            nemesis,
            nemesis_interval: self.nemesis_interval,
            net,
            server_bin: self.server_bin.clone(),
            server_args: self.server_args.clone(),
            op_timeout: self.op_timeout,
            check_time_limit: self.check_time_limit,
            no_history: self.no_history,
            schedule,
        })
    }
}

/// Durations in TOML as humantime strings ("60s"), for people reading and
/// editing `config.toml`.
mod humantime_serde_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {text:?}: {e}")))
    }
}

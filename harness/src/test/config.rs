//! What a run is: the `faultline test` flags, and the replayable
//! configuration written to the store as `config.toml`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::schedule::{Lane, Schedule};

/// Flags of `faultline test`.
#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    /// Number of kvd nodes in the Raft group (with --groups: in each
    /// replica group).
    #[arg(long, default_value_t = 5)]
    pub nodes: u64,
    /// Test a sharded deployment: a 3-node shard controller and this many
    /// replica groups of --nodes nodes each, all joined before the clients
    /// start; clients route keys by shard. 0 tests one plain kv group.
    #[arg(long, default_value_t = 0)]
    pub groups: u64,
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
    /// Compose the faults, as Jepsen composes nemeses: network faults,
    /// process faults (kill, pause) and reconfigurations each run their own
    /// cycle, so faults of different families may be in force at once.
    #[arg(long)]
    pub nemesis_overlap: bool,
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
    /// Change the shard configuration through the controller (with
    /// --groups): join a group that is out, make one leave, or move a shard;
    /// shards then migrate while clients keep going.
    Reconfigure,
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
            FaultKind::Reconfigure => "reconfigure",
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
    /// Raft group size (of each replica group, when sharded).
    pub nodes: u64,
    /// Replica groups of a sharded deployment; 0 for one plain kv group.
    #[serde(default)]
    pub groups: u64,
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
    /// Whether fault families ran their own, overlapping cycles.
    #[serde(default)]
    pub nemesis_overlap: bool,
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
        if self.groups > 5 {
            bail!(
                "--groups must be between 0 (one plain kv group) and 5, got {}",
                self.groups
            );
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
        if nemesis.contains(&FaultKind::Reconfigure) && self.groups < 2 {
            bail!(
                "--nemesis reconfigure needs a sharded deployment of at least two groups (--groups 2 or more)"
            );
        }
        if self.nemesis_overlap {
            let mut lanes: Vec<Lane> = nemesis.iter().filter_map(|&k| Lane::of_kind(k)).collect();
            lanes.dedup();
            if lanes.len() < 2 {
                bail!(
                    "--nemesis-overlap needs faults of two families or more (partitions; kill or pause; reconfigure), got --nemesis {}",
                    nemesis
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        let name = self.name.clone().unwrap_or_else(|| {
            let faults: Vec<&str> = nemesis.iter().map(|k| k.name()).collect();
            let composed = if self.nemesis_overlap {
                "-overlapping"
            } else {
                ""
            };
            format!("{}-{}{composed}", self.workload.name(), faults.join("+"))
        });
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            bail!("--name {name:?} must be a plain folder name");
        }
        let schedule = Schedule::draw(
            seed,
            Layout::new(self.nodes, self.groups).total(),
            &nemesis,
            self.time_limit,
            self.nemesis_interval,
            self.nemesis_overlap,
        );
        Ok(TestConfig {
            name,
            seed,
            nodes: self.nodes,
            groups: self.groups,
            concurrency: self.concurrency,
            time_limit: self.time_limit,
            rate: self.rate,
            workload: self.workload,
            keys: self.keys,
            nemesis,
            nemesis_interval: self.nemesis_interval,
            nemesis_overlap: self.nemesis_overlap,
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

/// Which node ids make up which Raft group. Node ids are global to the run
/// (the nemesis picks among all of them): a plain run is nodes `1..=n`; a
/// sharded run puts the controller on nodes 1–3 and replica group `g`
/// (gid `g`, from 1) on the `n` nodes after group `g - 1`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    nodes: u64,
    groups: u64,
}

/// Size of the shard controller group in sharded runs.
pub const CTRLER_NODES: u64 = 3;

impl Layout {
    /// The layout for `nodes` per group and `groups` replica groups.
    pub fn new(nodes: u64, groups: u64) -> Layout {
        Layout { nodes, groups }
    }

    /// The layout of a run.
    pub fn of(config: &TestConfig) -> Layout {
        Layout::new(config.nodes, config.groups)
    }

    /// Whether this is a sharded deployment.
    pub fn is_sharded(self) -> bool {
        self.groups > 0
    }

    /// Every node of the run.
    pub fn total(self) -> u64 {
        if self.is_sharded() {
            CTRLER_NODES + self.groups * self.nodes
        } else {
            self.nodes
        }
    }

    /// The controller's nodes (none in a plain run).
    pub fn ctrler(self) -> Vec<u64> {
        if self.is_sharded() {
            (1..=CTRLER_NODES).collect()
        } else {
            Vec::new()
        }
    }

    /// The kv groups: `(gid, nodes)`; gid 0 is the plain run's only group.
    pub fn kv_groups(self) -> Vec<(u64, Vec<u64>)> {
        if !self.is_sharded() {
            return vec![(0, (1..=self.nodes).collect())];
        }
        (1..=self.groups)
            .map(|g| {
                let first = CTRLER_NODES + (g - 1) * self.nodes + 1;
                (g, (first..first + self.nodes).collect())
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_run_is_one_group_of_every_node() {
        let plain = Layout::new(5, 0);
        assert!(!plain.is_sharded());
        assert_eq!(plain.total(), 5);
        assert!(plain.ctrler().is_empty());
        assert_eq!(plain.kv_groups(), vec![(0, vec![1, 2, 3, 4, 5])]);
    }

    #[test]
    fn a_sharded_run_puts_the_controller_first_then_each_group() {
        let sharded = Layout::new(3, 2);
        assert_eq!(sharded.total(), 9);
        assert_eq!(sharded.ctrler(), vec![1, 2, 3]);
        assert_eq!(
            sharded.kv_groups(),
            vec![(1, vec![4, 5, 6]), (2, vec![7, 8, 9])]
        );
    }
}

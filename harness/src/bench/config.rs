//! What a benchmark is: the `faultline bench` flags, checked into a
//! [`BenchConfig`] that is also written, as is, into `bench.json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use client::load::Mix;
use serde::{Serialize, Serializer};

use crate::test::config::{CTRLER_NODES, Layout};

/// The most clients one point may have: each is a task with its own
/// session, and far beyond this the load generator measures itself.
pub const MAX_CLIENTS: usize = 10_000;

/// Bytes per value written, as in the reference figures.
pub const VALUE_SIZE: usize = 256;

/// Flags of `faultline bench`. The defaults are the etcd reference setup of
/// BENCHMARKS.md, so the figures compare.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Nodes in the Raft group (with --groups: in each replica group).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Bench a sharded deployment: a 3-node shard controller and this many
    /// replica groups of --nodes nodes, all joined before the load starts;
    /// clients route keys by shard. 0 benches one plain group.
    #[arg(long, default_value_t = 0)]
    pub groups: u64,
    /// Concurrent clients of each point, comma-separated; the points run in
    /// ascending order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64,256",
        value_parser = parse_client_count
    )]
    pub clients: Vec<usize>,
    /// Operation mix as weights: `put=1`, `get=1`, `put=3,get=1`, `append`
    /// (a bare name weighs 1).
    #[arg(long, default_value = "put=1")]
    pub mix: Mix,
    /// Number of distinct keys, drawn uniformly; all are written once before
    /// the first point.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// How long each point runs before measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// How long each point measures, after its warm-up.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Repeat the whole sweep this many times, each on a fresh cluster;
    /// every point then shows the median over the runs.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// A kvd executable to bench instead of this binary's built-in server.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Extra argument passed to every server, repeatable (e.g.
    /// `--server-arg=--snapshot-threshold=65536`).
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Root of the run store; each bench writes `<store>/bench/<time>-<label>/`.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

/// One client count: a whole number from 1 to [`MAX_CLIENTS`].
fn parse_client_count(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of clients"))?;
    if n == 0 {
        return Err("a point needs at least 1 client".to_string());
    }
    if n > MAX_CLIENTS {
        return Err(format!("at most {MAX_CLIENTS} clients per point"));
    }
    Ok(n)
}

/// A checked benchmark: what runs, and what `bench.json` says ran.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Nodes per group.
    pub nodes: u64,
    /// Replica groups; 0 for one plain group.
    pub groups: u64,
    /// Controller nodes (sharded only, else 0).
    pub ctrler_nodes: u64,
    /// Client counts, ascending, each once.
    pub clients: Vec<usize>,
    /// The operation mix.
    #[serde(serialize_with = "as_text")]
    pub mix: Mix,
    /// Distinct keys.
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Warm-up per point, seconds.
    #[serde(rename = "warmup_s", serialize_with = "as_secs")]
    pub warmup: Duration,
    /// Measured window per point, seconds.
    #[serde(rename = "duration_s", serialize_with = "as_secs")]
    pub duration: Duration,
    /// Sweeps, each on a fresh cluster.
    pub runs: u32,
    /// Server executable (absent: `faultline kvd`).
    pub server_bin: Option<PathBuf>,
    /// Extra server arguments.
    pub server_args: Vec<String>,
    /// How the servers reach each other.
    pub network: &'static str,
}

fn as_text<S: Serializer>(mix: &Mix, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(mix)
}

fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl BenchArgs {
    /// Checks the flags that clap cannot and makes the configuration.
    pub fn to_config(&self) -> Result<BenchConfig> {
        if !(1..=9).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 9, got {}", self.nodes);
        }
        if self.groups > 5 {
            bail!(
                "--groups must be between 0 (one plain group) and 5, got {}",
                self.groups
            );
        }
        let mut clients = self.clients.clone();
        clients.sort_unstable();
        clients.dedup();
        if clients.is_empty() {
            bail!("--clients needs at least one client count");
        }
        if self.keys == 0 {
            bail!("--keys must be at least 1");
        }
        if self.duration.is_zero() {
            bail!("--duration must be above zero");
        }
        if self.runs == 0 || self.runs > 100 {
            bail!("--runs must be between 1 and 100, got {}", self.runs);
        }
        if let Some(bin) = &self.server_bin
            && !bin.is_file()
        {
            bail!("--server-bin {} is not a file", bin.display());
        }
        Ok(BenchConfig {
            nodes: self.nodes,
            groups: self.groups,
            ctrler_nodes: if self.groups > 0 { CTRLER_NODES } else { 0 },
            clients,
            mix: self.mix.clone(),
            keys: self.keys,
            value_size: VALUE_SIZE,
            warmup: self.warmup,
            duration: self.duration,
            runs: self.runs,
            server_bin: self.server_bin.clone(),
            server_args: self.server_args.clone(),
            network: "direct loopback TCP",
        })
    }
}

impl BenchConfig {
    /// Which node ids form which group.
    pub fn layout(&self) -> Layout {
        Layout::new(self.nodes, self.groups)
    }

    /// The deployment in words: `3 nodes`, `2 groups × 3 nodes`.
    pub fn deployment(&self) -> String {
        if self.groups == 0 {
            format!("{} nodes", self.nodes)
        } else {
            format!(
                "{} groups × {} nodes + {}-node controller",
                self.groups, self.nodes, CTRLER_NODES
            )
        }
    }

    /// The deployment in a few words, for headlines: `3 nodes`, `2 groups
    /// × 3 nodes`.
    pub fn shape(&self) -> String {
        if self.groups == 0 {
            format!("{} nodes", self.nodes)
        } else {
            format!("{} groups × {} nodes", self.groups, self.nodes)
        }
    }

    /// The mix in a few characters: `put`, or `get=1,put=3` when mixed.
    pub fn mix_name(&self) -> String {
        match self.mix.only() {
            Some(kind) => kind.name().to_string(),
            None => self.mix.to_string(),
        }
    }

    /// The run directory's name after its time: what ran, on what, e.g.
    /// `put-3n` or `get+put-2g3n`.
    pub fn label(&self) -> String {
        let ops: Vec<&str> = self.mix.kinds().map(|k| k.name()).collect();
        let shape = if self.groups == 0 {
            format!("{}n", self.nodes)
        } else {
            format!("{}g{}n", self.groups, self.nodes)
        };
        format!("{}-{shape}", ops.join("+"))
    }
}

/// The configuration `faultline bench LINE` makes, or clap's or the
/// check's message: for tests across the bench modules.
#[cfg(test)]
pub(crate) fn config_from_flags(line: &str) -> Result<BenchConfig, String> {
    use clap::Parser;

    /// `faultline bench`'s flags alone, as clap parses them.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    let argv = std::iter::once("bench").chain(line.split_whitespace());
    let args = Cli::try_parse_from(argv).map_err(|e| e.to_string())?.bench;
    args.to_config().map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(line: &str) -> Result<BenchConfig, String> {
        config_from_flags(line)
    }

    #[test]
    fn the_defaults_are_the_etcd_reference_setup() {
        let c = config("").unwrap();
        assert_eq!((c.nodes, c.groups, c.ctrler_nodes), (3, 0, 0));
        assert_eq!(c.clients, [1, 16, 64, 256]);
        assert_eq!(c.mix.to_string(), "put=1");
        assert_eq!((c.keys, c.value_size), (10_000, 256));
        assert_eq!(c.warmup, Duration::from_secs(2));
        assert_eq!(c.duration, Duration::from_secs(8));
        assert_eq!(c.runs, 1);
        assert_eq!(c.label(), "put-3n");
        assert_eq!(c.deployment(), "3 nodes");
    }

    #[test]
    fn client_counts_are_sorted_and_each_measured_once() {
        let c = config("--clients 64,1,16,64").unwrap();
        assert_eq!(c.clients, [1, 16, 64]);
    }

    #[test]
    fn bad_client_counts_are_refused_with_the_reason() {
        let zero = config("--clients 0").unwrap_err();
        assert!(zero.contains("at least 1 client"), "{zero}");
        let word = config("--clients abc").unwrap_err();
        assert!(
            word.contains("\"abc\" is not a number of clients"),
            "{word}"
        );
        let negative = config("--clients 1,-4").unwrap_err();
        assert!(negative.contains("not a number of clients"), "{negative}");
        let huge = config("--clients 1000000").unwrap_err();
        assert!(huge.contains("at most 10000"), "{huge}");
    }

    #[test]
    fn a_mix_of_unknown_operations_is_refused() {
        let err = config("--mix foo=1").unwrap_err();
        assert!(err.contains("unknown operation \"foo\""), "{err}");
        let err = config("--mix put=0").unwrap_err();
        assert!(err.contains("no operation with a positive weight"), "{err}");
    }

    #[test]
    fn bare_and_mixed_operations_name_the_run() {
        let c = config("--mix append").unwrap();
        assert_eq!(
            (c.mix_name(), c.label()),
            ("append".into(), "append-3n".into())
        );
        let c = config("--mix put=1,get=1 --groups 2").unwrap();
        assert_eq!(c.mix_name(), "get=1,put=1");
        assert_eq!(c.label(), "get+put-2g3n");
        assert_eq!(c.ctrler_nodes, 3);
        assert_eq!(c.deployment(), "2 groups × 3 nodes + 3-node controller");
        assert_eq!(c.shape(), "2 groups × 3 nodes");
    }

    #[test]
    fn empty_or_impossible_settings_are_refused() {
        for (line, says) in [
            ("--duration 0s", "--duration must be above zero"),
            ("--duration soon", "invalid value"),
            ("--keys 0", "--keys must be at least 1"),
            ("--runs 0", "--runs must be between 1 and 100"),
            ("--nodes 0", "--nodes must be between 1 and 9"),
            ("--groups 6", "--groups must be between 0"),
            ("--server-bin /nonexistent/kvd", "is not a file"),
        ] {
            let err = config(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn the_configuration_in_bench_json_reads_as_plain_numbers() {
        let c = config("--mix get --warmup 500ms --duration 1s").unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["mix"], "get=1");
        assert_eq!(json["warmup_s"], 0.5);
        assert_eq!(json["duration_s"], 1.0);
        assert_eq!(json["clients"], serde_json::json!([1, 16, 64, 256]));
    }
}

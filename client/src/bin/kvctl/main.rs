//! `kvctl`: read, write, inspect and benchmark a kvd cluster from the shell.
//!
//! `--servers` names one Raft group's nodes (a plain kv group, or the
//! controller for `ctrl`); `--ctrlers` names a sharded deployment's
//! controller group, and `get`, `put`, `append` and `bench` then go to
//! whichever replica group owns each key's shard.
//!
//! ```text
//! kvctl --servers 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 put x 1
//! kvctl --servers ... get x
//! kvctl --servers ... status
//! kvctl --servers ... bench --clients 64 --duration 10s --mix put=50,get=50 --json
//! kvctl --servers <controllers> ctrl join 1=127.0.0.1:7101,127.0.0.1:7102
//! kvctl --servers <controllers> ctrl query
//! kvctl --ctrlers <controllers> put x 1
//! kvctl --ctrlers <controllers> status
//! kvctl --ctrlers <controllers> bench --clients 64
//! ```

mod bench;
mod ctrl;
mod status;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Parser, Subcommand};
use client::{ClerkOptions, ClusterClient, ShardedClient};

#[derive(Debug, Parser)]
#[command(
    name = "kvctl",
    version,
    about = "Talk to a kvd cluster: read, write, inspect, benchmark, operate the shard controller",
    group(ArgGroup::new("target").required(true).args(["servers", "ctrlers"]))
)]
struct Cli {
    /// Client addresses (host:port) of one group's servers, comma-separated:
    /// a plain kv group, or the controller group for `ctrl`.
    #[arg(long, short = 's', env = "KVCTL_SERVERS", value_delimiter = ',')]
    servers: Vec<String>,

    /// Client addresses of a sharded deployment's controller group
    /// (`kvd --role ctrler`), comma-separated. `get`, `put`, `append` and
    /// `bench` then route each key to the group owning its shard, `status`
    /// shows the controller and every group, and `ctrl` talks to the
    /// controller. Not with --servers.
    #[arg(long, short = 'c', env = "KVCTL_CTRLERS", value_delimiter = ',')]
    ctrlers: Vec<String>,

    /// Give up on an operation after this long; its outcome is then reported
    /// as unknown or failed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// How long one attempt waits for its reply before retrying elsewhere.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,

    /// Seed for client ids and retry jitter. By default derived from the
    /// clock; never reuse a seed against the same cluster, or the servers
    /// will take the new writes for duplicates of old ones.
    #[arg(long)]
    seed: Option<u64>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a key's value (nothing on stdout when the key is absent).
    Get {
        /// The key to read.
        key: String,
    },
    /// Set a key to a value.
    Put {
        /// The key to write.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Append a value to a key (an absent key counts as empty).
    Append {
        /// The key to extend.
        key: String,
        /// The suffix to append.
        value: String,
    },
    /// Print every server's Raft view as a table (with --ctrlers: the
    /// controller's and every group's in the latest configuration), and
    /// what each shard group node holds.
    Status,
    /// Ask the leader to hand leadership to node ID (needs --servers).
    TransferLeader {
        /// The node that should lead.
        id: u64,
    },
    /// Measure throughput and latency with concurrent clients (with
    /// --ctrlers, over every group, with per-group operation counts).
    Bench(bench::BenchArgs),
    /// Operate the shard controller (--servers or --ctrlers name the
    /// controller group's nodes, started with `kvd --role ctrler`).
    Ctrl {
        #[command(subcommand)]
        command: ctrl::CtrlCommand,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kvctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let options = ClerkOptions {
        request_timeout: cli.request_timeout,
        overall_deadline: Some(cli.timeout),
        seed: cli.seed,
        ..ClerkOptions::default()
    };
    let bench_seed = cli.seed.unwrap_or_else(rand_seed);
    if cli.ctrlers.is_empty() {
        let cluster = ClusterClient::new(cli.servers, options).context("bad --servers")?;
        run_on_group(&cluster, cli.command, bench_seed).await
    } else {
        let sharded = ShardedClient::new(cli.ctrlers, options).context("bad --ctrlers")?;
        run_sharded(&sharded, cli.command, bench_seed).await
    }
}

/// Runs a command against one Raft group (`--servers`).
async fn run_on_group(
    cluster: &ClusterClient,
    command: Command,
    bench_seed: u64,
) -> anyhow::Result<()> {
    match command {
        Command::Get { key } => print_value(&key, cluster.clerk().get(&key).await?),
        Command::Put { key, value } => cluster.clerk().put(&key, &value).await?,
        Command::Append { key, value } => cluster.clerk().append(&key, &value).await?,
        Command::Status => {
            let statuses = cluster.status_all().await;
            print!("{}", status::render(&statuses));
            anyhow::ensure!(
                statuses.iter().any(|(_, s)| s.is_ok()),
                "no server answered"
            );
        }
        Command::TransferLeader { id } => {
            cluster.transfer_leader(id).await?;
            eprintln!("the leader started handing over to node {id}");
        }
        Command::Bench(args) => {
            bench::run(&bench::Target::Group(cluster.clone()), &args, bench_seed).await?;
        }
        Command::Ctrl { command } => ctrl::run(cluster, command).await?,
    }
    Ok(())
}

/// Runs a command against a sharded deployment (`--ctrlers`).
async fn run_sharded(
    sharded: &ShardedClient,
    command: Command,
    bench_seed: u64,
) -> anyhow::Result<()> {
    match command {
        Command::Get { key } => print_value(&key, sharded.clerk().get(&key).await?),
        Command::Put { key, value } => sharded.clerk().put(&key, &value).await?,
        Command::Append { key, value } => sharded.clerk().append(&key, &value).await?,
        Command::Status => status::run_sharded(sharded).await?,
        Command::TransferLeader { .. } => bail!(
            "transfer-leader acts on one group: give that group's nodes with --servers instead of --ctrlers"
        ),
        Command::Bench(args) => {
            bench::run(&bench::Target::Sharded(sharded.clone()), &args, bench_seed).await?;
        }
        Command::Ctrl { command } => ctrl::run(sharded.ctrler(), command).await?,
    }
    Ok(())
}

/// Prints a read's result: the value on stdout, absence on stderr.
fn print_value(key: &str, value: Option<String>) {
    match value {
        Some(value) => println!("{value}"),
        None => eprintln!("{key:?} is absent"),
    }
}

/// A seed for the benchmark's key and operation choices when none is given.
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

//! `faultline model`: model-check protocols with stateright.
//!
//! `faultline model raft` checks the real Raft core (the `raft` crate `kvd`
//! runs) wrapped in stateright actors; see `checker::raft_model` for the
//! model, its properties and what each bound means for what a pass proves.
//! It prints progress while the checker runs, then per property whether it
//! held (or was witnessed) and, for a violation, the path that breaks it,
//! step by step.
//!
//! Exit codes follow Jepsen: 0 when every Always property held and every
//! Sometimes property was witnessed, 1 when a property is violated, 2 when
//! an example is missing within the bounds or the command failed.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use checker::raft_model::{
    self, Bounds, NetworkKind, Progress, RaftModelConfig, RunOptions, RunReport, Strategy, Verdict,
};
use clap::{Args, Subcommand, ValueEnum};

/// Models that `faultline model` can check.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// The Raft core (`raft` crate) as `kvd` drives it, with register clients.
    Raft(RaftModelArgs),
}

/// Network semantics, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// Any message in flight may arrive next; nothing is lost or duplicated.
    Unordered,
    /// FIFO per pair of actors.
    Ordered,
    /// Unordered, and any message in flight may be lost.
    Lossy,
}

impl From<NetworkArg> for NetworkKind {
    fn from(arg: NetworkArg) -> Self {
        match arg {
            NetworkArg::Unordered => NetworkKind::Unordered,
            NetworkArg::Ordered => NetworkKind::Ordered,
            NetworkArg::Lossy => NetworkKind::Lossy,
        }
    }
}

/// Default depth (steps) of a breadth-first check: finishes in well under a
/// minute for 3 servers on 2 cores, and reaches a committed client value.
pub const DEFAULT_BFS_DEPTH: usize = 18;
/// Default longest walk of a simulation.
pub const DEFAULT_SIMULATION_DEPTH: usize = 200;
/// Default state budget of a simulation.
pub const DEFAULT_SIMULATION_STATES: usize = 1_000_000;

/// Arguments of `faultline model raft`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("strategy").args(["bfs", "dfs", "simulate"]))]
pub struct RaftModelArgs {
    /// Number of Raft servers.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Number of clients, each putting its own value and then reading.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Most servers crashed at the same time (0: no crashes). A crash loses
    /// volatile state; the restart recovers from what was persisted.
    #[arg(long, default_value_t = 0)]
    pub crashes: usize,
    /// How the network treats messages.
    #[arg(long, value_enum, default_value_t = NetworkArg::Unordered)]
    pub network: NetworkArg,
    /// Only explore runs in which election timeouts start at most this many
    /// elections in total (a pre-vote round counts); this also bounds terms.
    #[arg(long, default_value_t = Bounds::default().max_elections)]
    pub max_elections: u8,
    /// Only explore runs in which leaders' clocks run at most this many
    /// heartbeat intervals in total.
    #[arg(long, default_value_t = Bounds::default().max_heartbeats)]
    pub max_heartbeats: u8,
    /// Only explore states where every log has at most this many entries.
    #[arg(long, default_value_t = Bounds::default().max_log)]
    pub max_log: u64,
    /// Only explore states with at most this many messages in flight.
    #[arg(long, default_value_t = Bounds::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Check every state within this many steps of the start (breadth
    /// first; default 18), or the longest walk (simulation; default 200).
    /// Not available with --dfs.
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Stop after about this many states (simulation default: 1000000).
    #[arg(long)]
    pub max_states: Option<usize>,
    /// Breadth-first search (the default): short counterexamples, and a
    /// depth bound.
    #[arg(long)]
    pub bfs: bool,
    /// Depth-first search, bounded by the election, heartbeat, log and
    /// in-flight budgets only (exhaustive unless --max-states stops it).
    #[arg(long)]
    pub dfs: bool,
    /// Random walks instead of an exhaustive search.
    #[arg(long)]
    pub simulate: bool,
    /// Seed of the random walks.
    #[arg(long, requires = "simulate", default_value_t = 0)]
    pub seed: u64,
    /// Checker threads. Several breadth-first threads under a depth bound
    /// are not exhaustive (stateright does not keep depths in order across
    /// threads); depth-first and simulation runs scale without that caveat.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Serve stateright's web explorer on this loopback address (e.g.
    /// 127.0.0.1:3000) to walk the state space by hand, instead of checking.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["strategy", "max_depth", "max_states", "threads"])]
    pub explore: Option<SocketAddr>,
}

/// Runs a `faultline model` subcommand and returns the exit code.
pub fn run(cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Raft(args) => run_raft(&args),
    }
}

fn run_raft(args: &RaftModelArgs) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let verdict = check_raft(args, &mut stdout)?;
    Ok(match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
        Verdict::Unknown => ExitCode::from(2),
    })
}

/// Builds the model, then serves the explorer (which returns only on an
/// error) or checks it, writing the header, progress and results to `out`.
fn check_raft(args: &RaftModelArgs, out: &mut impl Write) -> Result<Verdict> {
    let mut config = RaftModelConfig::new(args.servers);
    config.clients = args.clients;
    config.crashes = args.crashes;
    config.network = args.network.into();
    config.bounds = Bounds {
        max_elections: args.max_elections,
        max_heartbeats: args.max_heartbeats,
        max_log: args.max_log,
        max_in_flight: args.max_in_flight,
    };
    let model = raft_model::build_model(&config).context("cannot build the Raft model")?;

    let crashes = match args.crashes {
        0 => "no crashes".to_string(),
        k => format!("up to {k} server(s) down at once"),
    };
    writeln!(
        out,
        "faultline model raft: {} servers, {} client(s), {} network, {crashes}",
        args.servers,
        args.clients,
        network_name(args.network)
    )?;

    if let Some(addr) = args.explore {
        let mut announced = Ok(());
        raft_model::explore(model, addr, || {
            announced = writeln!(
                out,
                "serving stateright's explorer on http://{addr}/ (Ctrl-C to stop)"
            )
            .and_then(|()| out.flush());
        })?;
        announced?;
        return Ok(Verdict::Pass);
    }

    let options = run_options(args)?;
    let depth = match options.max_depth {
        Some(d) => format!(", depth ≤ {d} steps"),
        None => String::new(),
    };
    writeln!(
        out,
        "bounds: elections ≤ {}, heartbeats ≤ {}, log ≤ {}, in flight ≤ {}{depth}; {} on {} thread(s)",
        args.max_elections,
        args.max_heartbeats,
        args.max_log,
        args.max_in_flight,
        strategy_name(options.strategy),
        options.threads
    )?;
    out.flush()?;

    let report = raft_model::run(model.clone(), &options, |p| {
        // Progress is best effort: a closed pipe must not stop the check.
        let _ = writeln!(out, "{}", progress_line(p)).and_then(|()| out.flush());
    })?;
    print_report(out, &model, &options, &report)?;
    Ok(report.verdict())
}

fn run_options(args: &RaftModelArgs) -> Result<RunOptions> {
    let strategy = if args.dfs {
        Strategy::Dfs
    } else if args.simulate {
        Strategy::Simulation { seed: args.seed }
    } else {
        Strategy::Bfs
    };
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let threads = args.threads;
    let (max_depth, max_states) = match strategy {
        Strategy::Bfs => (
            Some(args.max_depth.unwrap_or(DEFAULT_BFS_DEPTH)),
            args.max_states,
        ),
        Strategy::Dfs => {
            if args.max_depth.is_some() {
                bail!(
                    "--max-depth is not available with --dfs: stateright's depth-first search misses \
                     states under a depth bound; use --bfs, or bound --dfs with --max-elections/--max-heartbeats/--max-log/--max-in-flight"
                );
            }
            (None, args.max_states)
        }
        Strategy::Simulation { .. } => (
            Some(args.max_depth.unwrap_or(DEFAULT_SIMULATION_DEPTH)),
            Some(args.max_states.unwrap_or(DEFAULT_SIMULATION_STATES)),
        ),
    };
    Ok(RunOptions {
        strategy,
        threads,
        max_depth,
        max_states,
        progress_every: std::time::Duration::from_secs(1),
    })
}

fn network_name(network: NetworkArg) -> &'static str {
    match network {
        NetworkArg::Unordered => "unordered",
        NetworkArg::Ordered => "ordered",
        NetworkArg::Lossy => "lossy",
    }
}

fn strategy_name(strategy: Strategy) -> String {
    match strategy {
        Strategy::Bfs => "breadth-first".to_string(),
        Strategy::Dfs => "depth-first".to_string(),
        Strategy::Simulation { seed } => format!("simulation (seed {seed})"),
    }
}

fn progress_line(p: &Progress) -> String {
    format!(
        "  {:>6.1}s  {:>12} states  {:>11} unique  depth {:>3}  {:>9.0} states/s",
        p.elapsed.as_secs_f64(),
        p.states,
        p.unique_states,
        p.depth,
        p.states_per_sec()
    )
}

fn print_report(
    out: &mut impl Write,
    model: &raft_model::RaftModel,
    options: &RunOptions,
    report: &RunReport,
) -> Result<()> {
    let coverage = if report.exhaustive {
        match options.max_depth {
            Some(depth) => format!("every state within the bounds and {depth} steps explored"),
            None => "every state within the bounds explored".to_string(),
        }
    } else if report.verdict() == Verdict::Fail {
        "stopped at the first violation".to_string()
    } else if let Strategy::Simulation { .. } = report.strategy {
        "sampled by random walks, not exhaustive".to_string()
    } else if options.max_states.is_some_and(|n| report.states >= n) {
        "stopped at --max-states, not exhaustive".to_string()
    } else {
        "not exhaustive: several breadth-first threads under a depth bound".to_string()
    };
    writeln!(
        out,
        "done in {:.1}s: {} states, {} unique, depth {} steps, {:.0} states/s ({coverage})",
        report.elapsed.as_secs_f64(),
        report.states,
        report.unique_states,
        report.depth,
        report.states_per_sec()
    )?;
    writeln!(out, "properties:")?;
    write!(out, "{}", raft_model::describe_results(model, report))?;
    let verdict = match report.verdict() {
        Verdict::Pass => "PASS: every property held within the bounds",
        Verdict::Fail => "FAIL: a property is violated",
        Verdict::Unknown => "UNKNOWN: no violation, but an example is missing within the bounds",
    };
    writeln!(out, "{verdict}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Stands in for the binary's command line.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        model: ModelCommand,
    }

    fn parse(args: &[&str]) -> Result<RaftModelArgs, clap::Error> {
        let argv = ["faultline-model", "raft"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| match cli.model {
            ModelCommand::Raft(args) => args,
        })
    }

    #[test]
    fn defaults_are_breadth_first_to_the_default_depth_on_one_thread() {
        let args = parse(&[]).expect("valid");
        let options = run_options(&args).expect("valid");
        assert_eq!(options.strategy, Strategy::Bfs);
        assert_eq!(options.max_depth, Some(DEFAULT_BFS_DEPTH));
        assert_eq!(options.threads, 1);
        assert_eq!((args.servers, args.clients, args.crashes), (3, 1, 0));
    }

    #[test]
    fn search_strategies_exclude_each_other() {
        assert!(parse(&["--bfs", "--dfs"]).is_err());
        assert!(parse(&["--dfs", "--simulate"]).is_err());
        assert!(parse(&["--seed", "3"]).is_err(), "--seed needs --simulate");
        assert!(parse(&["--explore", "127.0.0.1:3000", "--max-depth", "4"]).is_err());
    }

    #[test]
    fn depth_first_refuses_a_depth_bound() {
        let args = parse(&["--dfs", "--max-depth", "10"]).expect("parses");
        let err = run_options(&args).expect_err("refused");
        assert!(err.to_string().contains("--max-depth"));
        let args = parse(&["--dfs", "--max-states", "1000"]).expect("parses");
        assert_eq!(run_options(&args).expect("valid").max_states, Some(1000));
    }

    #[test]
    fn simulation_gets_a_seed_a_walk_length_and_a_budget() {
        let args = parse(&["--simulate", "--seed", "7"]).expect("parses");
        let options = run_options(&args).expect("valid");
        assert_eq!(options.strategy, Strategy::Simulation { seed: 7 });
        assert_eq!(options.max_depth, Some(DEFAULT_SIMULATION_DEPTH));
        assert_eq!(options.max_states, Some(DEFAULT_SIMULATION_STATES));
    }

    #[test]
    fn a_shallow_check_prints_every_property_and_passes() {
        let args = parse(&["--max-depth", "8", "--clients", "0"]).expect("parses");
        let mut out = Vec::new();
        let verdict = check_raft(&args, &mut out).expect("runs");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(verdict, Verdict::Pass, "{text}");
        assert!(text.contains("every state within the bounds and 8 steps explored"));
        for name in ["election safety", "log matching", "leader completeness"] {
            assert!(text.contains(&format!("✓ {name} (always): held")), "{text}");
        }
        assert!(text.contains("✓ a leader is elected (sometimes): example found"));
        assert!(!text.contains("linearizable"), "no clients, no register");
    }

    #[test]
    fn bounds_too_tight_for_an_election_are_unknown_not_pass() {
        let args = parse(&["--max-depth", "8", "--max-elections", "0"]).expect("parses");
        let mut out = Vec::new();
        let verdict = check_raft(&args, &mut out).expect("runs");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(verdict, Verdict::Unknown, "{text}");
        assert!(text.contains("? a leader is elected (sometimes): no example within the bounds"));
    }

    #[test]
    fn an_impossible_cluster_is_an_error_not_a_panic() {
        let args = parse(&["--servers", "0"]).expect("parses");
        let err = check_raft(&args, &mut Vec::new()).expect_err("refused");
        assert!(format!("{err:#}").contains("1 to 9 servers"), "{err:#}");
    }

    #[test]
    fn zero_threads_is_refused() {
        let args = parse(&["--threads", "0"]).expect("parses");
        assert!(run_options(&args).is_err());
    }
}

//! `faultline test`: start a real cluster, hammer it with concurrent clients
//! while a nemesis injects faults, record everything, check it and report.
//!
//! One run, step by step:
//!
//! 1. **Configure** ([`config`]): flags become a [`config::TestConfig`] with
//!    a seed and the whole fault [`schedule`] drawn from it, written to the
//!    run [`store`] as `config.toml` so `faultline replay` can repeat it.
//! 2. **Start** the [`cluster`]: one kvd process per node (by default this
//!    very binary, `faultline kvd`), each with its own data directory and
//!    log, on a network the nemesis can cut — per-node network namespaces
//!    with iptables (root) or userspace proxies on every peer link.
//! 3. **Drive** the [`clients`]: seeded generators feed concurrent workers,
//!    each a Clerk; every invoke and completion goes to `history.jsonl`.
//! 4. **Break things** ([`faults`]) on the schedule beside the clients:
//!    partitions of Jepsen's shapes, kills, pauses; each start and end goes
//!    to `nemesis.jsonl` on the history's clock.
//! 5. **Recover**: heal the network, restart and resume every node, read
//!    every key once more, stop the nodes.
//! 6. **Check** the history with the kv model, write `results.json`, the
//!    report and the exit code: 0 valid, 1 invalid, 2 unknown or error.

pub mod clients;
pub mod cluster;
pub mod config;
pub mod faults;
mod progress;
pub mod schedule;
pub mod store;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use histories::Recorder;
use tokio::sync::{Mutex as AsyncMutex, watch};
use tokio::time::Instant;

use self::clients::LiveCounts;
use self::cluster::Cluster;
use self::config::{NetBackend, NetChoice, TestArgs, TestConfig};
use self::store::{NemesisLog, Results};

/// How long the final reads may take per key once everything is healed.
const FINAL_READ_DEADLINE: Duration = Duration::from_secs(30);

/// What one run came to.
pub struct RunOutcome {
    /// The run's store directory.
    pub dir: PathBuf,
    /// Test name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// 0 valid, 1 invalid, 2 unknown or error.
    pub exit_code: u8,
    /// One line for people.
    pub summary: String,
    /// Start to verdict.
    pub duration: Duration,
}

/// Runs `faultline test`.
pub fn run(args: TestArgs) -> Result<ExitCode> {
    let net = resolve_net(args.net)?;
    let first_seed = args.seed.unwrap_or_else(random_seed);
    let runtime = runtime()?;
    let mut outcomes = Vec::new();
    for i in 0..args.test_count {
        let config = args.to_config(first_seed.wrapping_add(u64::from(i)), net)?;
        let outcome = runtime.block_on(run_interruptible(config, &args.store))?;
        outcomes.push(outcome);
    }
    if let Some(path) = &args.junit {
        crate::junit::write(path, &outcomes)?;
    }
    let worst = outcomes.iter().map(|o| o.exit_code).max().unwrap_or(2);
    Ok(ExitCode::from(worst))
}

/// Re-runs a stored run's configuration on a fresh cluster.
pub fn replay(store_dir: &Path, store_root: Option<&Path>) -> Result<ExitCode> {
    let config = store::read_config(store_dir)?;
    if config.net == NetBackend::Netns {
        nemesis::netns::NetnsNetwork::check_available()
            .context("the stored run used --net netns, which is not available here")?;
    }
    let root = match store_root {
        Some(root) => root.to_path_buf(),
        // <root>/<test>/<run>: replay into the same root.
        None => store_dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", store_dir.display()))?
            .parent()
            .and_then(Path::parent)
            .context("a run directory sits two levels below its store root")?
            .to_path_buf(),
    };
    let runtime = runtime()?;
    let outcome = runtime.block_on(run_interruptible(config, &root))?;
    Ok(ExitCode::from(outcome.exit_code))
}

/// The runtime a run's clients, nemesis and cluster control share.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("faultline")
        .build()?)
}

/// The backend to use for `choice`.
fn resolve_net(choice: NetChoice) -> Result<NetBackend> {
    match choice {
        NetChoice::Proxy => Ok(NetBackend::Proxy),
        NetChoice::Netns => {
            nemesis::netns::NetnsNetwork::check_available()
                .context("--net netns is not available here (use --net proxy)")?;
            Ok(NetBackend::Netns)
        }
        NetChoice::Auto => match nemesis::netns::NetnsNetwork::check_available() {
            Ok(()) => Ok(NetBackend::Netns),
            Err(e) => {
                tracing::info!(reason = %e, "network namespaces unavailable; using proxies");
                Ok(NetBackend::Proxy)
            }
        },
    }
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // Keep seeds short enough to type.
    (nanos ^ u64::from(std::process::id()).rotate_left(17)) % 1_000_000_000
}

/// One run, stopped cleanly (nodes killed, namespaces removed) on Ctrl-C.
async fn run_interruptible(config: TestConfig, store_root: &Path) -> Result<RunOutcome> {
    tokio::select! {
        outcome = run_one(config, store_root) => outcome,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; the cluster was stopped"),
    }
}

/// Runs one test end to end and prints its verdict.
pub async fn run_one(config: TestConfig, store_root: &Path) -> Result<RunOutcome> {
    let started = std::time::Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let dir = store::create_run_dir(store_root, &config)?;
    store::write_config(&dir, &config)?;
    store::update_latest(store_root, &dir)?;
    let layout = if config.groups == 0 {
        format!("{} nodes", config.nodes)
    } else {
        format!(
            "{} replica groups of {} nodes and a {}-node controller",
            config.groups,
            config.nodes,
            self::config::CTRLER_NODES
        )
    };
    eprintln!(
        "faultline: {} seed {} ({layout}, {} net, {} clients, {} at {}/s, nemesis {}) → {}",
        config.name,
        config.seed,
        config.net.name(),
        config.concurrency,
        config.workload.name(),
        config.rate,
        config
            .nemesis
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        dir.display()
    );

    let counts = Arc::new(LiveCounts::default());
    let phase = drive(&config, &dir, &counts).await;
    let (error, recovered, client_phase) = match phase {
        Ok(p) => (p.error, p.recovered, p.client_phase),
        Err(e) => (Some(format!("{e:#}")), false, Duration::ZERO),
    };
    if let Some(e) = &error {
        eprintln!("faultline: run error: {e}");
    }

    // Check whatever history there is, even after an error: an invalid
    // history is a finding however the run ended.
    eprintln!("faultline: checking the history ...");
    let check_dir = dir.clone();
    let check_limit = config.check_time_limit;
    let checked =
        tokio::task::spawn_blocking(move || crate::check::check_store(&check_dir, check_limit))
            .await
            .context("the checker panicked")?;
    let (checked, check_error) = match checked {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let check_code = checked.as_ref().map_or(2, |c| c.exit_code);
    let error = error
        .or(check_error)
        .or_else(|| (!recovered).then(|| "the cluster did not answer every final read".to_owned()));
    let exit_code = match (check_code, &error) {
        (1, _) => 1,
        (0, None) => 0,
        _ => 2,
    };
    let counts = counts.get();
    let results = Results {
        test: &config.name,
        verdict: store::verdict_name(exit_code),
        exit_code,
        error: error.clone(),
        seed: config.seed,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        net: config.net.name(),
        nodes: config.nodes,
        concurrency: config.concurrency,
        workload: config.workload.name(),
        nemesis: config.nemesis.iter().map(|k| k.name()).collect(),
        counts,
        rate_ok_per_s: if client_phase.is_zero() {
            0.0
        } else {
            counts.ok as f64 / client_phase.as_secs_f64()
        },
        recovered,
        checker: checked.as_ref().map(|c| c.report.clone()),
        timeline: checked
            .as_ref()
            .and_then(|c| store::relative_name(&dir, c.visualization.as_deref())),
    };
    store::write_results(&dir, &results)?;
    let report = crate::report::write_report(&dir);
    if let Err(e) = &report {
        eprintln!("faultline: warning: could not write the report: {e:#}");
    }

    let verdict = store::verdict_name(exit_code).to_uppercase();
    let summary = format!(
        "{verdict}: {} ok, {} fail, {} info{}",
        counts.ok,
        counts.fail,
        counts.info,
        error
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default()
    );
    if let Some(c) = &checked
        && exit_code == 1
    {
        eprint!("{}", c.text);
    }
    println!("{summary}");
    match &report {
        Ok(path) => println!("report: {}", path.display()),
        Err(_) => println!("store: {}", dir.display()),
    }
    if exit_code != 0 {
        println!(
            "reproduce: faultline replay {}   (seed {})",
            dir.display(),
            config.seed
        );
    }
    Ok(RunOutcome {
        dir,
        name: config.name.clone(),
        seed: config.seed,
        exit_code,
        summary,
        duration: started.elapsed(),
    })
}

/// How the cluster phase of a run ended.
struct Phase {
    /// A harness or cluster failure, if any.
    error: Option<String>,
    /// Every final read answered.
    recovered: bool,
    /// Length of the client phase.
    client_phase: Duration,
}

/// Starts the cluster, runs clients and nemesis, recovers and stops it.
async fn drive(config: &TestConfig, dir: &Path, counts: &Arc<LiveCounts>) -> Result<Phase> {
    let cluster = Cluster::start(config, &dir.join("nodes")).await?;
    let target = if cluster.is_sharded() {
        clients::Target::Sharded(cluster.ctrler_addrs())
    } else {
        clients::Target::Group(cluster.client_addrs())
    };
    let cluster = Arc::new(AsyncMutex::new(cluster));

    let epoch = Instant::now();
    let recorder = if config.no_history {
        None
    } else {
        Some(Arc::new(
            Recorder::create_with_epoch(dir.join("history.jsonl"), epoch.into_std())
                .context("cannot create history.jsonl")?,
        ))
    };
    let nemesis_log = Arc::new(NemesisLog::create(dir, epoch.into_std())?);
    let active = Arc::new(Mutex::new(Default::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let nemesis = tokio::spawn(faults::run(
        config.schedule.clone(),
        Arc::clone(&cluster),
        Arc::clone(&nemesis_log),
        epoch,
        Arc::clone(&active),
        stop_rx,
    ));
    let progress = progress::Progress::start(
        config.time_limit,
        Arc::clone(counts),
        Arc::clone(&active),
        std::io::stderr().is_terminal(),
    );

    let clients = clients::Clients::new(config, target, recorder.clone(), Arc::clone(counts))?;
    let client_result = clients.run(epoch + config.time_limit).await;
    let client_phase = epoch.elapsed();
    let _ = stop_tx.send(true);
    let nemesis_result = nemesis.await.context("the nemesis task panicked")?;
    progress.finish();

    let mut error = client_result
        .err()
        .map(|e| format!("clients: {e:#}"))
        .or_else(|| nemesis_result.err().map(|e| format!("nemesis: {e:#}")));
    let mut cluster = cluster.lock().await;
    eprintln!("faultline: healing the cluster and reading every key ...");
    if let Err(e) = cluster.heal_everything().await {
        error.get_or_insert(format!("recovery: {e:#}"));
    }
    let recovered = clients.final_reads(FINAL_READ_DEADLINE).await?;
    cluster.stop().await;
    if let Some(recorder) = &recorder {
        recorder.sync().context("cannot sync history.jsonl")?;
    }
    Ok(Phase {
        error,
        recovered,
        client_phase,
    })
}

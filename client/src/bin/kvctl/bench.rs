//! `kvctl bench`: closed-loop load from concurrent Clerks against a cluster
//! someone else started.
//!
//! The load itself is [`client::load`] (shared with `faultline bench`);
//! this module owns the flags, the per-second progress on stderr and the
//! text or JSON result on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
pub use client::load::Target;
use client::load::{self, LiveCounts, LoadReport, LoadSpec, Mix};

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

/// Runs the benchmark and prints its result.
pub async fn run(target: &Target, args: &BenchArgs, seed: u64) -> anyhow::Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(args.keys > 0, "--keys must be at least 1");
    ensure!(!args.duration.is_zero(), "--duration must be positive");

    let spec = LoadSpec {
        clients: args.clients,
        warmup: args.warmup,
        duration: args.duration,
        keys: args.keys,
        value_size: args.value_size,
        mix: args.mix.clone(),
        seed,
    };
    let live = Arc::new(LiveCounts::default());
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(
        started,
        started + args.warmup,
        started + args.warmup + args.duration,
        Arc::clone(&live),
    ));
    let report = load::run(target, &spec, live).await;
    progress.abort();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

/// Prints one line per second to stderr: phase, throughput, errors.
async fn report_progress(
    started: Instant,
    measure_from: Instant,
    end: Instant,
    live: Arc<LiveCounts>,
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
        let done = live.completed();
        let phase = if now < measure_from {
            "warm-up"
        } else {
            "measure"
        };
        eprintln!(
            "[{:>4.0}s {phase}] {:>8} ops/s  errors {}",
            (now - started).as_secs_f64(),
            done - last,
            live.failed()
        );
        last = done;
    }
}

fn print_text(r: &LoadReport) {
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

fn latency_line(l: &load::Latency) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

//! `faultline bench`: measure kvd the way BENCHMARKS.md measured etcd, and
//! say how it compares.
//!
//! A bench is a sweep over client counts (1, 16, 64, 256 by default):
//!
//! 1. **Configure** ([`config`]): flags become a [`config::BenchConfig`];
//!    the defaults are the etcd reference setup (3 nodes, 256-byte values,
//!    10,000 keys, 2 s warm-up then 8 s measured).
//! 2. **Sweep** ([`sweep`]): start a fresh cluster of real kvd processes on
//!    loopback (the cluster code `faultline test` uses, wired without
//!    proxies), wait for a leader in every group, write every key once,
//!    then run each client count's closed-loop load ([`client::load`], the
//!    engine `kvctl bench` uses) and stop the cluster.
//! 3. **Sum up** ([`figures`]): one point per client count, the median over
//!    `--runs` sweeps, beside etcd's figure at the same count
//!    ([`reference`](mod@reference)) and the ratio.
//! 4. **Write** ([`store`]): `bench.json` for machines (with a one-line
//!    `summary`) and `bench.html` with the table and the [`charts`]
//!    ([`page`]); print the table and the page's path.
//!
//! Each run gets a fresh cluster, and the points of one run share it.
//! Fresh per run, because repeated runs are there to sample what differs
//! between clusters (which node leads, where its log sits on disk), and a
//! median over one cluster would hide that. Shared within a run, because
//! the keys are written before the first point, so every point finds the
//! same data; a cluster per point would add a start-up and a preload to
//! every 10 s point and measure nothing more.

mod charts;
mod config;
mod figures;
mod page;
mod reference;
mod store;
mod sweep;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Result, bail};

pub use self::config::BenchArgs;
use self::config::BenchConfig;
use self::figures::{BenchReport, Point, Reference};

/// Runs `faultline bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let config = args.to_config()?;
    let runtime = crate::test::runtime()?;
    runtime.block_on(async {
        tokio::select! {
            done = bench(config, &args.store) => done,
            _ = tokio::signal::ctrl_c() => bail!("interrupted; the cluster was stopped"),
        }
    })
}

/// Every sweep, then the figures, the files and the table.
async fn bench(config: BenchConfig, store_root: &Path) -> Result<ExitCode> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let dir = store::create_dir(store_root, &config.label())?;
    eprintln!(
        "faultline bench: kvd {}, mix {}, clients {}, {} keys, {} → {}",
        config.deployment(),
        config.mix,
        config
            .clients
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        config.keys,
        figures::plural(u64::from(config.runs), "run"),
        dir.display()
    );

    let mut by_point: Vec<Vec<_>> = vec![Vec::new(); config.clients.len()];
    for run in 1..=config.runs {
        let reports = sweep::sweep(&config, run, &dir).await?;
        for (runs, report) in by_point.iter_mut().zip(reports) {
            runs.push(report);
        }
    }
    let only = config.mix.only();
    let points: Vec<Point> = config
        .clients
        .iter()
        .zip(by_point)
        .map(|(&clients, runs)| Point::of(clients, runs, only))
        .collect();
    let report = BenchReport {
        summary: figures::summary(&config, &points),
        started_at,
        elapsed_s: started.elapsed().as_secs_f64(),
        reference: Reference::of(&config),
        config,
        points,
    };
    let page = store::write(&dir, &report)?;

    print!("{}", figures::table(&report.points));
    if let Some(reference) = &report.reference
        && report.points.iter().any(|p| p.etcd.is_some())
    {
        println!("etcd: {}", reference.source);
        if !reference.departures.is_empty() {
            println!("this bench differs: {}", reference.departures.join("; "));
        }
    }
    println!("{}", report.summary);
    println!("report: {}", page.display());
    Ok(ExitCode::SUCCESS)
}

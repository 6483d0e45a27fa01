//! One sweep over the client counts: a fresh cluster of real kvd processes,
//! a leader in every group, every key written once, then each count's load
//! in turn (its own warm-up, then the measured window), and the cluster
//! stopped.
//!
//! The nodes' peer links are wired directly ([`Wiring::Direct`]): no proxy
//! sits between them, as none did between etcd's members, so the figures
//! are the servers' own. Data directories live under the run directory, so
//! every write is fsynced to the same disk the reference used.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use client::load::{self, GroupCounts, LiveCounts, LoadReport, LoadSpec, Target};
use client::{ClerkOptions, ClusterClient, NodeRole, ShardedClient};
use tokio::time::Instant;

use super::config::BenchConfig;
use super::figures::{format_ms, plural, thousands};
use crate::test::cluster::{Cluster, ClusterSpec, Wiring};

/// How long every group may take to elect a leader once its nodes are up.
const LEADER_PATIENCE: Duration = Duration::from_secs(20);

/// How long a load operation may take before it counts as an error.
const OP_DEADLINE: Duration = Duration::from_secs(10);

/// Sessions that write the keys before the first point.
const PRELOAD_WRITERS: usize = 64;

/// Runs sweep number `run` (from 1) of `config`, with its nodes under
/// `run_dir/run-<run>/nodes/`, printing a status line per step to stderr.
/// Returns one report per client count, in `config.clients` order.
pub async fn sweep(config: &BenchConfig, run: u32, run_dir: &Path) -> Result<Vec<LoadReport>> {
    let tag = format!("faultline bench: [run {run}/{}]", config.runs);
    let nodes_dir = run_dir.join(format!("run-{run}")).join("nodes");
    let spec = ClusterSpec {
        layout: config.layout(),
        seed: u64::from(run),
        wiring: Wiring::Direct,
        server_bin: config.server_bin.clone(),
        server_args: config.server_args.clone(),
    };
    let started = Instant::now();
    let mut cluster = Cluster::launch(&spec, &nodes_dir).await.with_context(|| {
        format!(
            "the cluster did not start (node logs under {})",
            nodes_dir.display()
        )
    })?;
    wait_for_leaders(&cluster, LEADER_PATIENCE, &nodes_dir).await?;
    eprintln!(
        "{tag} {} up, every group led, in {:.1} s",
        config.deployment(),
        started.elapsed().as_secs_f64()
    );

    let options = ClerkOptions {
        overall_deadline: Some(OP_DEADLINE),
        seed: Some(0x6265_6e63_6800_0000 ^ u64::from(run)),
        ..ClerkOptions::default()
    };
    let target = if cluster.is_sharded() {
        Target::Sharded(ShardedClient::new(cluster.ctrler_addrs(), options)?)
    } else {
        Target::Group(ClusterClient::new(cluster.client_addrs(), options)?)
    };

    let preload_started = Instant::now();
    let writers = PRELOAD_WRITERS.min(usize::try_from(config.keys).unwrap_or(usize::MAX));
    let failed = load::preload(&target, config.keys, config.value_size, writers).await?;
    if failed > 0 {
        eprintln!(
            "{tag} warning: {failed} of {} preload writes failed",
            config.keys
        );
    }
    eprintln!(
        "{tag} wrote {} keys of {} bytes in {:.1} s",
        thousands(config.keys as f64),
        config.value_size,
        preload_started.elapsed().as_secs_f64()
    );

    let mut reports = Vec::with_capacity(config.clients.len());
    for &clients in &config.clients {
        eprintln!(
            "{tag} {}: {} warm-up, {} measured ...",
            plural(clients as u64, "client"),
            humantime::format_duration(config.warmup),
            humantime::format_duration(config.duration)
        );
        let spec = LoadSpec {
            clients,
            warmup: config.warmup,
            duration: config.duration,
            keys: config.keys,
            value_size: config.value_size,
            mix: config.mix.clone(),
            seed: u64::from(run)
                .wrapping_mul(1_000_003)
                .wrapping_add(clients as u64),
        };
        let report = load::run(&target, &spec, Arc::new(LiveCounts::default())).await?;
        eprintln!(
            "{tag} {}: {} ops/s  p50 {}  p99 {}  p99.9 {}  {}{}",
            plural(clients as u64, "client"),
            thousands(report.ops_per_sec),
            format_ms(report.latency_us.p50 as f64 / 1000.0),
            format_ms(report.latency_us.p99 as f64 / 1000.0),
            format_ms(report.latency_us.p999 as f64 / 1000.0),
            plural(report.errors, "error"),
            report
                .by_group
                .as_ref()
                .map(|g| format!("  ({})", group_shares(g, report.ops)))
                .unwrap_or_default()
        );
        reports.push(report);
    }
    cluster.stop().await;
    Ok(reports)
}

/// Each group's share of a sharded point's operations: `group 1 52%,
/// group 2 48%`.
fn group_shares(groups: &GroupCounts, total: u64) -> String {
    groups
        .ops
        .iter()
        .map(|(gid, ops)| {
            let share = 100.0 * *ops as f64 / total.max(1) as f64;
            match gid {
                0 => format!("unassigned {share:.0}%"),
                gid => format!("group {gid} {share:.0}%"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until every Raft group of `cluster` has a node that says it leads;
/// the error points at the logs in `nodes_dir`.
async fn wait_for_leaders(cluster: &Cluster, patience: Duration, nodes_dir: &Path) -> Result<()> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    if cluster.is_sharded() {
        groups.push(("the shard controller".to_string(), cluster.ctrler_addrs()));
        for (gid, addrs) in cluster.replica_groups() {
            groups.push((format!("replica group {gid}"), addrs));
        }
    } else {
        groups.push(("the group".to_string(), cluster.client_addrs()));
    }
    let deadline = Instant::now() + patience;
    for (name, addrs) in groups {
        let probe = ClusterClient::new(
            addrs.clone(),
            ClerkOptions {
                request_timeout: Duration::from_millis(500),
                connect_timeout: Duration::from_millis(500),
                ..ClerkOptions::default()
            },
        )?;
        loop {
            let led = probe
                .status_all()
                .await
                .into_iter()
                .any(|(_, status)| status.is_ok_and(|s| s.role == NodeRole::Leader));
            if led {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} ({}) elected no leader within {}; the node logs are under {}",
                    addrs.join(", "),
                    humantime::format_duration(patience),
                    nodes_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

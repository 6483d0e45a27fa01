//! Commit throughput of the Raft core alone: a 3-node cluster in the
//! simulator with an instant network and in-memory "disks", no invariant
//! checking. Two workloads, as in openraft's in-process benchmark:
//!
//! - one proposer: propose, wait until the leader has applied it, repeat;
//! - 256 proposers: each keeps one proposal outstanding and proposes again
//!   as soon as it commits (proposals that arrive together are batched, as
//!   a server batches requests that arrive together).
//!
//! Run with `cargo bench -p raft`. Payloads are 1 byte (Raft reserves empty
//! entries for leader no-ops). Everything runs on one thread.

use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::NodeId;
use raft::sim::{Cluster, NetConfig, SimError, SimOptions};

const PAYLOAD: Bytes = Bytes::from_static(b"x");

fn cluster() -> Result<(Cluster, NodeId), SimError> {
    let mut opts = SimOptions::new(3, 7);
    opts.net = NetConfig::instant();
    opts.check_invariants = false;
    // Compact like a service would, so memory stays bounded in long runs.
    opts.snapshot_every = Some(10_000);
    let mut c = Cluster::new(opts);
    let leader = c.check_one_leader()?;
    Ok((c, leader))
}

fn applied(c: &Cluster, id: NodeId) -> u64 {
    c.state_machine(id).map_or(0, |sm| sm.applied)
}

fn single_proposer(budget: Duration) -> Result<(u64, Duration), SimError> {
    let (mut c, leader) = cluster()?;
    let start = Instant::now();
    let mut done = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            let index = match c.propose(leader, PAYLOAD)? {
                Ok(index) => index,
                Err(e) => panic!("leader refused a proposal: {e}"),
            };
            while applied(&c, leader) < index {
                c.step()?;
            }
        }
        done += 1000;
    }
    Ok((done, start.elapsed()))
}

fn concurrent_proposers(clients: u64, budget: Duration) -> Result<(u64, Duration), SimError> {
    let (mut c, leader) = cluster()?;
    let base = applied(&c, leader);
    let start = Instant::now();
    if let Err(e) = c.propose_batch(leader, (0..clients).map(|_| PAYLOAD))? {
        panic!("leader refused proposals: {e}");
    }
    let mut seen = base;
    while start.elapsed() < budget {
        for _ in 0..64 {
            c.step()?;
            let now = applied(&c, leader);
            if now > seen {
                // Every committed proposal frees its client to send another
                // (leader no-ops aside, which do not occur in a stable run).
                let freed = now - seen;
                seen = now;
                if let Err(e) = c.propose_batch(leader, (0..freed).map(|_| PAYLOAD))? {
                    panic!("leader refused proposals: {e}");
                }
            }
        }
    }
    Ok((seen - base, start.elapsed()))
}

/// Nanoseconds this thread has spent on a CPU (Linux), so that figures
/// stay meaningful on a machine shared with other work.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn report(name: &str, run: impl FnOnce() -> Result<(u64, Duration), SimError>) {
    let cpu_before = thread_cpu_ns();
    let result = run();
    let cpu = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| Duration::from_nanos(after.saturating_sub(before)));
    match result {
        Ok((entries, elapsed)) => {
            let per_cpu = cpu
                .filter(|c| !c.is_zero())
                .map(|c| {
                    format!(
                        " ({:.0} entries per CPU-second)",
                        entries as f64 / c.as_secs_f64()
                    )
                })
                .unwrap_or_default();
            println!(
                "{name:<24} {entries:>10} entries in {:>5.2} s = {:>10.0} entries/s{per_cpu}",
                elapsed.as_secs_f64(),
                entries as f64 / elapsed.as_secs_f64()
            );
        }
        Err(e) => println!("{name}: simulation failed: {e}"),
    }
}

fn main() {
    // `cargo test --benches` runs this too; keep that quick.
    let quick = std::env::args().any(|a| a == "--test");
    let budget = if quick {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(3)
    };
    report("3 nodes, 1 proposer", || single_proposer(budget));
    report("3 nodes, 256 proposers", || {
        concurrent_proposers(256, budget)
    });
    report("3 nodes, 4096 proposers", || {
        concurrent_proposers(4096, budget)
    });
}

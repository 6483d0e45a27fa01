//! Closed-loop load against a local kvd group, the way BENCHMARKS.md measured
//! etcd: 3 kvd processes on loopback (fsync on), every request to the leader,
//! 256-byte values, keys drawn uniformly from 10,000, a warm-up and then a
//! measured window, for several client counts.
//!
//! ```text
//! cargo build --release -p server --bin kvd --example kvd_load
//! target/release/examples/kvd_load [put|get] [CLIENTS,...] [SECONDS]
//! ```
//!
//! Defaults: `put 1,16,64 8`. The kvd binary is looked for next to the
//! example's own directory (`target/release/kvd`), or in `$KVD_BIN`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::net::TcpStream;
use wire::{ClientConnection, NodeRole, Op, Reply, Request};

const NODES: usize = 3;
const KEYS: u64 = 10_000;
const VALUE_SIZE: usize = 256;
const WARMUP: Duration = Duration::from_secs(2);

/// Kills the kvd processes however the run ends.
struct Group {
    children: Vec<Child>,
    client_addrs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Group {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addr() -> anyhow::Result<String> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string())
}

fn kvd_path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KVD_BIN") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .context("cannot locate the target directory")?;
    Ok(dir.join("kvd"))
}

fn start_group() -> anyhow::Result<Group> {
    let dir = tempfile::tempdir()?;
    let addrs: Vec<(String, String)> = (0..NODES)
        .map(|_| Ok((free_addr()?, free_addr()?)))
        .collect::<anyhow::Result<_>>()?;
    let kvd = kvd_path()?;
    let mut group = Group {
        children: Vec::new(),
        client_addrs: addrs.iter().map(|a| a.0.clone()).collect(),
        _dir: dir,
    };
    for (i, (client, peer)) in addrs.iter().enumerate() {
        let mut cmd = Command::new(&kvd);
        cmd.arg("--id")
            .arg((i + 1).to_string())
            .arg("--client-addr")
            .arg(client)
            .arg("--peer-addr")
            .arg(peer)
            .arg("--data-dir")
            .arg(group._dir.path().join(format!("n{}", i + 1)));
        for (j, (c, p)) in addrs.iter().enumerate() {
            if j != i {
                cmd.arg("--peer").arg(format!("{}={p}/{c}", j + 1));
            }
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", kvd.display()))?;
        group.children.push(child);
    }
    Ok(group)
}

async fn connect(addr: &str) -> anyhow::Result<ClientConnection<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(wire::connect_client(stream).await?.1)
}

async fn call(conn: &mut ClientConnection<TcpStream>, id: u64, op: Op) -> anyhow::Result<Reply> {
    conn.write_frame(&Request { request_id: id, op }).await?;
    match conn.read_frame().await? {
        Some(r) => Ok(r.reply),
        None => bail!("connection closed"),
    }
}

async fn find_leader(group: &Group) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for addr in &group.client_addrs {
            if let Ok(mut c) = connect(addr).await
                && let Ok(Reply::Status(s)) = call(&mut c, 1, Op::Status).await
                && s.role == NodeRole::Leader
            {
                return Ok(addr.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no leader within 30s")
}

/// One closed-loop client; returns the latencies (µs) of requests that
/// started after `measure_from` and finished before `until`.
async fn client(
    leader: String,
    n: u64,
    write: bool,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<Vec<u32>> {
    let mut conn = connect(&leader).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(n);
    let value = "x".repeat(VALUE_SIZE);
    let mut lat = Vec::new();
    let mut seq = 0;
    while Instant::now() < until {
        let key = format!("key{}", rng.random_range(0..KEYS));
        let op = if write {
            seq += 1;
            Op::Put {
                key,
                value: value.clone(),
                client_id: n + 1,
                seq,
            }
        } else {
            Op::Get { key }
        };
        let t = Instant::now();
        let reply = call(&mut conn, seq + 1, op).await?;
        if reply.is_error() {
            bail!("request failed: {reply:?}");
        }
        let done = Instant::now();
        if t >= measure_from && done <= until {
            lat.push(u32::try_from((done - t).as_micros()).unwrap_or(u32::MAX));
        }
    }
    Ok(lat)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let write = match args.next().as_deref() {
        None | Some("put") => true,
        Some("get") => false,
        Some(other) => bail!("unknown workload {other:?}: use put or get"),
    };
    let counts: Vec<u64> = match args.next() {
        Some(s) => s
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .context("client counts must be numbers, e.g. 1,16,64")?,
        None => vec![1, 16, 64],
    };
    let seconds: f64 = match args.next() {
        Some(s) => s.parse().context("seconds must be a number")?,
        None => 8.0,
    };
    let group = start_group()?;
    let leader = find_leader(&group).await?;
    if !write {
        // Something to read.
        let mut c = connect(&leader).await?;
        for k in 0..KEYS {
            let op = Op::Put {
                key: format!("key{k}"),
                value: "x".repeat(VALUE_SIZE),
                client_id: u64::MAX,
                seq: k + 1,
            };
            call(&mut c, k + 1, op).await?;
        }
    }
    println!("workload: {}", if write { "put" } else { "get" });
    println!(
        "{:>8} {:>10} {:>9} {:>9}",
        "clients", "ops/s", "p50 ms", "p99 ms"
    );
    for (round, &clients) in counts.iter().enumerate() {
        let start = Instant::now();
        let measure_from = start + WARMUP;
        let until = measure_from + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|n| {
                let id = (round as u64) << 32 | n;
                tokio::spawn(client(leader.clone(), id, write, measure_from, until))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        all.sort_unstable();
        println!(
            "{clients:>8} {:>10.0} {:>9.2} {:>9.2}",
            all.len() as f64 / seconds,
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    }
    Ok(())
}

//! WAL append throughput with fsync on, for batches of 1 and 256 entries of
//! 256 bytes (each append also carries a hard state, as a Raft `Ready` does).
//! A raw "write 4 KiB + fdatasync" loop on an appended file runs first as the
//! disk's own baseline.
//!
//! ```text
//! cargo run --release -p server --example wal_bench -- [DIR] [SECONDS_PER_CASE]
//! ```
//!
//! DIR defaults to a fresh temporary directory (under $TMPDIR); pass a
//! directory on the disk you care about. SECONDS_PER_CASE defaults to 3.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use server::storage::{Batch, Entry, HardState, Storage};

const ENTRY_SIZE: usize = 256;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let dir_arg = args.next();
    let seconds = match args.next().map(|s| s.parse::<f64>()) {
        None => 3.0,
        Some(Ok(s)) if s > 0.0 && s.is_finite() => s,
        Some(_) => {
            eprintln!("usage: wal_bench [DIR] [SECONDS_PER_CASE > 0]");
            return ExitCode::FAILURE;
        }
    };
    let budget = Duration::from_secs_f64(seconds);
    let temp;
    let base: PathBuf = match dir_arg {
        Some(d) => PathBuf::from(d),
        None => match tempfile::tempdir() {
            Ok(t) => {
                temp = t;
                temp.path().to_owned()
            }
            Err(e) => {
                eprintln!("cannot create a temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!("directory: {}", base.display());
    println!(
        "{:<34} {:>10} {:>12} {:>9} {:>9} {:>9}",
        "case", "appends/s", "entries/s", "MiB/s", "p50 ms", "p99 ms"
    );
    if let Err(e) = raw_baseline(&base.join("raw-baseline"), budget) {
        eprintln!("raw baseline failed: {e}");
        return ExitCode::FAILURE;
    }
    for batch in [1, 256] {
        if let Err(e) = wal_case(&base.join(format!("wal-batch-{batch}")), batch, budget) {
            eprintln!("wal case with batches of {batch} failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn report(
    case: &str,
    mut latencies: Vec<Duration>,
    entries_per_op: usize,
    bytes_per_op: usize,
    elapsed: Duration,
) {
    latencies.sort_unstable();
    let ops = latencies.len() as f64;
    let secs = elapsed.as_secs_f64();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "{:<34} {:>10.0} {:>12.0} {:>9.2} {:>9.3} {:>9.3}",
        case,
        ops / secs,
        ops * entries_per_op as f64 / secs,
        ops * bytes_per_op as f64 / secs / (1024.0 * 1024.0),
        pct(0.50),
        pct(0.99),
    );
}

/// One 4 KiB write plus fdatasync per iteration, appending to one file.
fn raw_baseline(dir: &Path, budget: Duration) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("raw.log"))?;
    let block = vec![0x5a; 4096];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    report(
        "raw 4 KiB write + fdatasync",
        latencies,
        0,
        block.len(),
        start.elapsed(),
    );
    Ok(())
}

fn wal_case(dir: &Path, batch: usize, budget: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let (mut storage, _) = Storage::open(dir)?;
    let payload = Bytes::from(vec![0xa5; ENTRY_SIZE]);
    let mut next_index = storage.last_index() + 1;
    let mut entries = Vec::with_capacity(batch);
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        entries.clear();
        entries.extend((next_index..next_index + batch as u64).map(|index| Entry {
            term: 1,
            index,
            data: payload.clone(),
        }));
        next_index += batch as u64;
        let hs = HardState {
            term: 1,
            vote: Some(1),
            commit: next_index - 1,
        };
        let t = Instant::now();
        storage.append(&Batch {
            snapshot: None,
            entries: &entries,
            hard_state: Some(&hs),
        })?;
        latencies.push(t.elapsed());
    }
    let case = format!("wal: {batch} x {ENTRY_SIZE} B entries + hard state");
    report(&case, latencies, batch, batch * ENTRY_SIZE, start.elapsed());
    Ok(())
}

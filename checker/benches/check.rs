//! Checking time per history, printed as a table.
//!
//! `cargo bench -p checker --bench check` (add `-- quick` to skip the
//! million-operation history). Each time is the median of several runs in
//! this process and covers partitioning, model compilation and search; rows
//! marked "file" also include reading and pairing the file, as
//! `faultline check` does.
//!
//! Generated histories (seeded, `checker::synth`) have the shape of the
//! classic lab tests: clients doing get/put/append on 10 keys with unique
//! appended values, random overlapping latencies, about 1% timeouts and 1%
//! failures; the "bad" ones have three stale reads injected. Register
//! histories look like Jepsen's etcd tests: 5 processes, values 0..5,
//! read/write/cas, 5% timeouts.
//!
//! If `PORCUPINE_TEST_DATA` names a checkout of Porcupine's `test_data`
//! directory, its histories (`kv/c*.txt`, `jepsen/etcd_*.log`) are checked
//! too and the verdicts compared with Porcupine's expected ones. The files
//! are not part of this repository.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checker::models::{KvValue, Register};
use checker::synth::{
    KvWorkload, RegisterWorkload, inject_stale_read, kv_history, register_history,
};
use checker::{CheckOptions, CheckResult, SpecModel, Verdict, check_operations, check_with_model};
use histories::{
    History, OpStatus, Operation, ReadOptions, read_file, read_jsonl_file, write_jsonl,
};

/// Etcd histories Porcupine's test suite expects to be linearizable.
const PORCUPINE_ETCD_LINEARIZABLE: &[u32] = &[
    2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102,
];

fn median<T, F: FnMut() -> T>(runs: usize, mut f: F) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    times.sort();
    (times[runs / 2], last.expect("at least one run"))
}

/// Keys, indeterminate operations, and mean number of completed operations
/// open when one is invoked (concurrency).
fn shape(ops: &[Operation]) -> (usize, usize, f64) {
    let keys = ops
        .iter()
        .map(|o| o.key.clone())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let info = ops.iter().filter(|o| o.status == OpStatus::Info).count();
    let mut events: Vec<(u64, i64)> = Vec::new();
    for o in ops {
        if let Some(r) = o.return_index {
            events.push((o.call_index, 1));
            events.push((r, -1));
        }
    }
    events.sort();
    let (mut open, mut sum, mut calls) = (0i64, 0i64, 0i64);
    for (_, d) in events {
        open += d;
        if d > 0 {
            sum += open;
            calls += 1;
        }
    }
    (keys, info, sum as f64 / calls.max(1) as f64)
}

fn header() {
    println!(
        "{:<34} {:>8} {:>7} {:>6} {:>5} {:>5} {:>17} {:>11} {:>8}",
        "history", "ops", "clients", "keys", "info", "conc", "verdict", "time", "nodes"
    );
}

fn row(name: &str, clients: usize, ops: &[Operation], time: Duration, r: &CheckResult) {
    let (keys, info, conc) = shape(ops);
    println!(
        "{name:<34} {:>8} {clients:>7} {keys:>6} {info:>5} {conc:>5.1} {:>17} {:>8.2} ms {:>8}",
        ops.len(),
        r.verdict.to_string(),
        time.as_secs_f64() * 1e3,
        r.stats.nodes
    );
}

fn kv(clients: usize, ops: usize, seed: u64) -> KvWorkload {
    KvWorkload {
        clients,
        ops,
        keys: 10,
        get_ratio: 0.4,
        put_ratio: 0.1,
        info_ratio: 0.01,
        fail_ratio: 0.01,
        latency_ns: 1_000_000,
        seed,
    }
}

fn with_stale_reads(h: &History, seed: u64) -> History {
    let mut h = h.clone();
    for s in 0..3 {
        h = inject_stale_read(&h, seed * 7 + s).expect("history has a stale-read site");
    }
    h
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn generated(runs: usize) {
    let kv_model = SpecModel::new(KvValue::default());
    let opts = CheckOptions::default();
    for clients in [1usize, 10, 50] {
        let ok = kv_history(&kv(clients, 3000, clients as u64));
        let ok_ops = ok.operations().expect("generated history pairs");
        let (t, r) = median(runs, || {
            check_operations(&kv_model, &ok_ops, &opts).expect("checks")
        });
        assert_eq!(r.verdict, Verdict::Linearizable);
        row(&format!("kv c{clients:02} ok"), clients, &ok_ops, t, &r);
        let bad_ops = with_stale_reads(&ok, clients as u64)
            .operations()
            .expect("pairs");
        let (t, r) = median(runs, || {
            check_operations(&kv_model, &bad_ops, &opts).expect("checks")
        });
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        row(&format!("kv c{clients:02} bad"), clients, &bad_ops, t, &r);
    }
    // The whole history as one object (product state over all keys), as
    // Porcupine's "kv 10 clients, not partitioned" benchmark does.
    let whole = CheckOptions {
        partition: false,
        ..CheckOptions::default()
    };
    for ops_count in [340usize, 1000] {
        let ops = kv_history(&kv(10, ops_count, 77))
            .operations()
            .expect("pairs");
        let (t, r) = median(runs, || {
            check_operations(&kv_model, &ops, &whole).expect("checks")
        });
        assert_eq!(r.verdict, Verdict::Linearizable);
        row("kv c10 ok, unpartitioned", 10, &ops, t, &r);
    }

    let register_model = SpecModel::new(Register::default());
    let mut total = Duration::ZERO;
    let mut worst = (Duration::ZERO, 0u64);
    let mut ops_total = 0;
    let mut nodes = 0;
    for seed in 0..100u64 {
        let h = register_history(&RegisterWorkload {
            clients: 5,
            ops: 250,
            values: 5,
            info_ratio: 0.05,
            seed,
            ..RegisterWorkload::default()
        });
        let ops = h.operations().expect("pairs");
        ops_total += ops.len();
        let (t, r) = median(3, || {
            check_operations(&register_model, &ops, &opts).expect("checks")
        });
        assert_eq!(r.verdict, Verdict::Linearizable);
        nodes += r.stats.nodes;
        total += t;
        if t > worst.0 {
            worst = (t, seed);
        }
    }
    println!(
        "{:<34} {ops_total:>8} {:>7} {:>6} {:>5} {:>5} {:>17} {:>8.2} ms {nodes:>8}   (sum; worst: seed {} {:.2} ms)",
        "register etcd-like x100",
        5,
        1,
        "",
        "",
        "linearizable",
        total.as_secs_f64() * 1e3,
        worst.1,
        worst.0.as_secs_f64() * 1e3
    );
}

fn end_to_end(runs: usize, dir: &Path) {
    let kv_model = SpecModel::new(KvValue::default());
    let path = dir.join("c50.jsonl");
    let h = kv_history(&kv(50, 3000, 50));
    write_jsonl(
        &h,
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
    )
    .expect("write");
    let (t, r) = median(runs, || {
        let h = read_jsonl_file(&path, ReadOptions::default()).expect("read");
        let ops = h.operations().expect("pairs");
        check_operations(&kv_model, &ops, &CheckOptions::default()).expect("checks")
    });
    row(
        "kv c50 ok (file: read+pair+check)",
        50,
        &h.operations().expect("pairs"),
        t,
        &r,
    );
}

fn million(dir: &Path) {
    let kv_model = SpecModel::new(KvValue::default());
    let started = Instant::now();
    let big = kv_history(&KvWorkload {
        clients: 200,
        ops: 1_000_000,
        keys: 1000,
        ..kv(200, 1_000_000, 1_000_000)
    });
    let path = dir.join("big.jsonl");
    write_jsonl(
        &big,
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
    )
    .expect("write");
    let generation = started.elapsed();
    drop(big);
    let t = Instant::now();
    let h = read_jsonl_file(&path, ReadOptions::default()).expect("read");
    let ops = h.operations().expect("pairs");
    drop(h);
    let parse = t.elapsed();
    let t = Instant::now();
    let r = check_operations(&kv_model, &ops, &CheckOptions::default()).expect("checks");
    let check = t.elapsed();
    row("kv 1M ops / 1000 keys", 200, &ops, check, &r);
    println!(
        "  generation+write {:.1} s, read+pair {:.1} s, check {:.2} s; search memory peak {:.1} MiB (estimate), process peak RSS {:.0} MiB",
        generation.as_secs_f64(),
        parse.as_secs_f64(),
        check.as_secs_f64(),
        r.stats.peak_memory_bytes as f64 / (1 << 20) as f64,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

/// Checks Porcupine's own test histories, if present.
fn porcupine(root: &Path, runs: usize) {
    let mut files: Vec<(PathBuf, &str, Verdict)> = Vec::new();
    let listed = |dir: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for path in listed("kv") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with("-ok.txt") {
            files.push((path, "kv", Verdict::Linearizable));
        } else if name.ends_with("-bad.txt") {
            files.push((path, "kv", Verdict::NotLinearizable));
        }
    }
    for path in listed("jepsen") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(n) = name
            .strip_prefix("etcd_")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let expected = if PORCUPINE_ETCD_LINEARIZABLE.contains(&n) {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        files.push((path, "register", expected));
    }
    if files.is_empty() {
        println!("(no Porcupine histories under {})", root.display());
        return;
    }
    let mut etcd_total = Duration::ZERO;
    let mut etcd_count = 0;
    let mut disagreements = Vec::new();
    for (path, model, expected) in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let run = |partition: bool| {
            median(runs, || {
                let h = read_file(path, ReadOptions::default()).expect("porcupine file reads");
                let ops = h.operations().expect("pairs");
                let opts = CheckOptions {
                    partition,
                    ..CheckOptions::default()
                };
                (check_with_model(model, &ops, &opts).expect("checks"), ops)
            })
        };
        let (t, (r, ops)) = run(true);
        if r.verdict != *expected {
            disagreements.push(format!("{name}: ours {}, Porcupine {expected}", r.verdict));
        }
        if *model == "kv" {
            row(&format!("porcupine {name} (file)"), 0, &ops, t, &r);
            let (t, (r, ops)) = run(false);
            row(&format!("porcupine {name} unpartitioned"), 0, &ops, t, &r);
        } else {
            etcd_total += t;
            etcd_count += 1;
            if name == "etcd_002.log" || name == "etcd_007.log" {
                row(&format!("porcupine {name} (file)"), 0, &ops, t, &r);
            }
        }
    }
    if etcd_count > 0 {
        println!(
            "porcupine etcd register histories: {etcd_count} files, {:.1} ms in total (file: read+pair+check)",
            etcd_total.as_secs_f64() * 1e3
        );
    }
    if disagreements.is_empty() {
        println!("all {} Porcupine verdicts agree", files.len());
    } else {
        println!(
            "verdicts that differ from Porcupine's: {}",
            disagreements.join("; ")
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let runs = 5;
    header();
    generated(runs);
    let dir = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    end_to_end(runs, &dir);
    if let Some(root) = std::env::var_os("PORCUPINE_TEST_DATA") {
        porcupine(Path::new(&root), runs);
    }
    if !quick {
        million(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

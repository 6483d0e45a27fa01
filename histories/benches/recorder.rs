//! What recording costs per event, so the harness overhead can be judged.
//!
//! `cargo bench -p histories --bench recorder`. Each event is serialized and
//! handed to the kernel with one `write` under the recorder's lock (no
//! fsync). Compare the cost with an operation's latency: 1 µs per event is
//! 2 µs per invoke+complete pair, under 5% of any networked operation that
//! takes more than 40 µs.

use std::sync::Arc;
use std::time::Instant;

use histories::{ReadOptions, Recorder, read_jsonl_file};
use serde_json::json;

fn run(threads: u64, per_thread: u64) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    let recorder = Arc::new(Recorder::create(&path).expect("create"));
    let key = json!("key-17");
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let recorder = Arc::clone(&recorder);
            let key = key.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let value = json!(format!("x {t} {i} y"));
                    recorder
                        .invoke(t, "append", Some(&key), &value)
                        .expect("record");
                    recorder
                        .ok(t, "append", Some(&key), &value)
                        .expect("record");
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let events = threads * per_thread * 2;
    let read = read_jsonl_file(&path, ReadOptions::default()).expect("readable");
    assert_eq!(read.events.len() as u64, events, "nothing lost");
    elapsed.as_secs_f64() * 1e9 / events as f64
}

fn main() {
    println!(
        "{:<10} {:>10} {:>14} {:>14}",
        "threads", "events", "ns/event", "events/s"
    );
    for (threads, per_thread) in [(1u64, 100_000u64), (4, 25_000), (16, 6_250)] {
        let ns = run(threads, per_thread);
        println!(
            "{threads:<10} {:>10} {ns:>14.0} {:>14.0}",
            threads * per_thread * 2,
            1e9 / ns
        );
    }
}

//! End to end: `faultline bench` starts a real 3-node kvd cluster, runs a
//! tiny sweep, and leaves `bench.json` and `bench.html` in the store. Only
//! the shape and the sanity of the figures are checked (one point per
//! client count, operations done, none failed), never their size: timings
//! belong in benchmarks, not in pass/fail tests.
//!
//! The cluster runs are serialized: on a 2-core machine two clusters at
//! once would only measure the machine.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn explain(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `faultline bench` with `args` into `store`.
fn bench(store: &Path, args: &str) -> Output {
    let _serial = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut all = vec!["bench", "--store", store.to_str().unwrap()];
    all.extend(args.split_whitespace());
    faultline(&all)
}

#[test]
fn a_tiny_sweep_writes_one_point_per_client_count_and_a_page_with_charts() {
    let store = tempfile::tempdir().unwrap();
    let output = bench(
        store.path(),
        "--clients 1,4 --warmup 200ms --duration 1s --keys 100",
    );
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output));

    let dir = store
        .path()
        .join("bench/latest")
        .canonicalize()
        .expect("store/bench/latest points at the bench");
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-put-3n"),
        "{}",
        dir.display()
    );
    let json = std::fs::read_to_string(dir.join("bench.json")).expect("bench.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("bench.json parses");

    let points = report["points"].as_array().expect("points");
    let clients: Vec<u64> = points
        .iter()
        .map(|p| p["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, [1, 4], "{json}");
    for point in points {
        assert!(point["ops_per_sec"].as_f64().unwrap() > 0.0, "{point}");
        assert_eq!(point["errors"], 0, "{point}");
        assert!(point["p50_ms"].as_f64().unwrap() > 0.0, "{point}");
        assert_eq!(point["runs"].as_array().unwrap().len(), 1, "{point}");
    }
    // Puts at 1 client have an etcd figure; at 4 clients there is none.
    assert_eq!(points[0]["etcd"]["ops_per_sec"], 858.0, "{json}");
    assert!(points[0]["ratio"].as_f64().unwrap() > 0.0, "{json}");
    assert!(points[1]["etcd"].is_null(), "{json}");

    let summary = report["summary"].as_str().expect("a string summary");
    assert!(summary.starts_with("kvd 3 nodes put: "), "{summary}");
    assert!(summary.contains("ops/s"), "{summary}");
    assert_eq!(report["config"]["keys"], 100);
    assert!(dir.join("run-1/nodes/1/kvd.log").is_file());

    let page = std::fs::read_to_string(dir.join("bench.html")).expect("bench.html");
    assert!(page.contains("<svg"), "the page has charts");
    // minijinja escapes `/` in text, as in "ops/s".
    assert!(
        page.contains(&summary.replace('/', "&#x2f;")),
        "the page leads with the summary"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&dir.join("bench.html").display().to_string()),
        "the page's path is printed:\n{stdout}"
    );
}

#[test]
fn bad_flags_fail_with_a_message_and_exit_2_before_any_cluster_starts() {
    let store = tempfile::tempdir().unwrap();
    for (args, says) in [
        ("--clients 0", "at least 1 client"),
        ("--clients abc", "not a number of clients"),
        ("--mix foo=1", "unknown operation \"foo\""),
        ("--duration 0s", "--duration must be above zero"),
    ] {
        let mut argv = vec!["bench", "--store", store.path().to_str().unwrap()];
        argv.extend(args.split_whitespace());
        let output = faultline(&argv);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args}: {}",
            explain(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
    }
    assert!(
        !store.path().join("bench").exists(),
        "nothing is written for a bench that never started"
    );
}

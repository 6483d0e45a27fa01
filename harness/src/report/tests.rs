//! End-to-end tests of the report: synthetic run stores in, pages out.

use std::fs;
use std::path::Path;

use histories::{Event, EventType, History};
use serde_json::{Value, json};

use super::chart::SHADE_ALPHA;
use super::write_report;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// A synthetic run: `clients` clients, each invoking one operation every
/// `period` ns for `duration` ns; every 7th operation fails, every 31st
/// times out (its client gives up after 500 ms and a new process takes its
/// place, as the runner does).
fn synthetic_history(clients: u64, period: u64, duration: u64) -> History {
    let mut events = Vec::new();
    let mut n = 0u64;
    for client in 0..clients {
        let mut process = client;
        let mut t = client * period / clients;
        while t + 600 * MS < duration {
            let f = ["get", "put", "append"][(n % 3) as usize];
            let latency = (1 + n % 13) * MS / 2 + (n % 5) * 20 * MS;
            let (kind, end) = if n % 31 == 30 {
                (EventType::Info, t + 500 * MS)
            } else if n % 7 == 6 {
                (EventType::Fail, t + latency)
            } else {
                (EventType::Ok, t + latency)
            };
            let key = Some(json!(format!("k{}", n % 8)));
            events.push((t, process, EventType::Invoke, f, key.clone()));
            events.push((end, process, kind, f, key));
            if kind == EventType::Info {
                process += clients;
            }
            t = end.max(t + period);
            n += 1;
        }
    }
    events.sort_by_key(|e| e.0);
    History::new(
        events
            .into_iter()
            .enumerate()
            .map(|(i, (time, process, kind, f, key))| Event {
                index: i as u64,
                process,
                kind,
                f: f.to_string(),
                key,
                value: Value::Null,
                time,
            })
            .collect(),
    )
}

fn write_history(dir: &Path, history: &History) {
    let file = fs::File::create(dir.join("history.jsonl")).unwrap();
    histories::write_jsonl(history, std::io::BufWriter::new(file)).unwrap();
}

fn fault(time: u64, kind: &str, fault: &str, id: u64, nodes: &[u64], what: &str) -> String {
    json!({"time": time, "type": kind, "fault": fault, "id": id, "nodes": nodes, "description": what})
        .to_string()
}

/// Four fault windows: two partitions, a kill, and a pause the run's end
/// closed.
fn write_nemesis(dir: &Path) {
    let lines = [
        fault(
            2 * S,
            "start",
            "partition",
            1,
            &[1, 2],
            "partition halves: {n1 n2} | {n3 n4 n5}",
        ),
        fault(4 * S, "end", "partition", 1, &[], "heal"),
        fault(5 * S, "start", "kill", 2, &[3], "kill n3 (SIGKILL)"),
        fault(6 * S, "end", "kill", 2, &[3], "restart n3"),
        fault(7 * S, "start", "partition", 3, &[4], "isolate-leader n4"),
        fault(8 * S, "end", "partition", 3, &[], "heal"),
        fault(
            8 * S + 500 * MS,
            "start",
            "pause",
            4,
            &[5],
            "pause n5 (SIGSTOP)",
        ),
    ];
    fs::write(dir.join("nemesis.jsonl"), lines.join("\n") + "\n").unwrap();
}

const CONFIG: &str = "seed = 42\nnodes = 5\nconcurrency = 4\nworkload = \"kv-append\"\nnemesis = [\"partition\", \"kill\", \"pause\"]\n";

fn results(verdict: &str, checker: Value, timeline: Option<&str>) -> Value {
    json!({
        "test": "kv-append-partition", "verdict": verdict, "exit_code": 0, "seed": 42,
        "started_at": "2026-11-23T09:00:00Z", "duration_ms": 10_000, "net": "proxy",
        "nodes": 5, "concurrency": 4, "workload": "kv-append",
        "nemesis": ["partition", "kill", "pause"],
        "counts": {"ok": 1, "fail": 1, "info": 1}, "rate_ok_per_s": 87.5, "recovered": true,
        "checker": checker, "timeline": timeline
    })
}

fn write_results(dir: &Path, results: &Value) {
    fs::write(dir.join("results.json"), results.to_string()).unwrap();
}

/// A complete store of a valid 10 s run.
fn full_store(dir: &Path) {
    write_history(dir, &synthetic_history(4, 50 * MS, 10 * S));
    write_nemesis(dir);
    fs::write(dir.join("config.toml"), CONFIG).unwrap();
    let checker = json!({"verdict": "linearizable", "model": "kv",
        "stats": {"ops": 700, "parts": 8, "nodes": 1234, "elapsed_ms": 3.5}});
    write_results(dir, &results("valid", checker, None));
}

fn shaded(svg: &str) -> usize {
    svg.matches(&format!("opacity=\"{SHADE_ALPHA}\"")).count()
}

fn report_of(dir: &Path) -> String {
    let path = write_report(dir).unwrap();
    assert_eq!(path, dir.join("report.html"));
    fs::read_to_string(path).unwrap()
}

#[test]
fn a_valid_run_shows_its_verdict_facts_charts_faults_and_config() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    let html = report_of(dir.path());
    assert!(html.contains(r#"<div class="verdict valid" id="verdict">"#));
    assert!(html.contains(">VALID<"));
    for fact in [
        "kv-append-partition",
        "42",
        "10.0 s",
        "proxy",
        "partition, kill, pause",
    ] {
        assert!(html.contains(fact), "missing {fact}");
    }
    assert!(
        !html.contains("id=\"problems\""),
        "a complete store has nothing to note"
    );
    assert!(html.contains("700 operations in 8 parts"));
    // three charts inline, and the same three beside the page, each with the
    // four fault windows shaded
    assert_eq!(html.matches("<svg ").count(), 3);
    for name in ["timeline.svg", "latency.svg", "throughput.svg"] {
        let svg = fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(svg.starts_with("<svg "), "{name}");
        assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        assert_eq!(shaded(&svg), 4, "{name}");
        assert!(html.contains(&svg), "{name} is not inlined");
    }
    let timeline = fs::read_to_string(dir.path().join("timeline.svg")).unwrap();
    assert!(timeline.contains("time since the run began (s)"));
    assert!(timeline.contains("\np0\n") || timeline.contains("\np0 +"));
    let latency = fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    assert!(latency.contains("latency (ms, log scale)"));
    let throughput = fs::read_to_string(dir.path().join("throughput.svg")).unwrap();
    assert!(throughput.contains("completions (ops/s)"));
    // the nemesis table and the config, verbatim (escaped)
    assert!(html.contains("Nemesis (4 fault windows)"));
    assert!(html.contains("partition halves: {n1 n2} | {n3 n4 n5}"));
    assert!(html.contains("kill n3 (SIGKILL)"));
    assert!(html.contains("pause n5 (SIGSTOP)"));
    assert!(
        html.contains("workload = &quot;kv-append&quot;")
            || html.contains("workload = &#34;kv-append&#34;")
    );
    // the latency table has one row per function
    for f in ["get", "put", "append"] {
        assert!(
            html.contains(&format!("<td class=\"mono\">{f}</td>")),
            "{f}"
        );
    }
}

#[test]
fn an_invalid_run_links_and_summarises_its_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    fs::write(dir.path().join("linearizability.html"), "<html></html>").unwrap();
    let checker = json!({
        "verdict": "not_linearizable", "model": "kv",
        "stats": {"ops": 700, "parts": 8, "nodes": 99, "elapsed_ms": 2.0},
        "counterexample": {
            "key": "k3", "explanation": "get saw \"p1-4\" which no append wrote",
            "ops": [{"op": {"id": 7, "process": 2}, "description": "get -> \"p1-4\""}],
            "initial_state": "\"\"", "longest_prefix": [], "stuck_state": "\"\"",
            "candidates": [{"op": 7, "state_after": null}], "blocking_op": 7
        }
    });
    write_results(
        dir.path(),
        &results("invalid", checker, Some("linearizability.html")),
    );
    let html = report_of(dir.path());
    assert!(html.contains(r#"<div class="verdict invalid" id="verdict">"#));
    assert!(html.contains(">INVALID<"));
    assert!(html.contains(r#"<a href="linearizability.html">"#));
    assert!(html.contains("not linearizable on key k3"));
    assert!(html.contains("which no append wrote"));
    assert!(html.contains("#7 p2 get -&gt;"));
}

#[test]
fn an_unknown_run_shows_the_runners_error() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    let mut r = results("unknown", json!({"verdict": "linearizable"}), None);
    r["error"] = json!("the cluster did not answer every final read");
    r["recovered"] = json!(false);
    write_results(dir.path(), &r);
    let html = report_of(dir.path());
    assert!(html.contains(">UNKNOWN<"));
    assert!(html.contains(
        r#"<p class="error" id="run-error">the cluster did not answer every final read</p>"#
    ));
    assert!(html.contains("<dt>cluster recovered</dt><dd>no</dd>"));
}

#[test]
fn a_counterexample_link_leaving_the_store_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    write_results(
        dir.path(),
        &results("invalid", json!({}), Some("../elsewhere.html")),
    );
    let html = report_of(dir.path());
    assert!(!html.contains("href=\"../elsewhere.html\""));
    assert!(html.contains("names a counterexample page"));
    assert!(html.contains("elsewhere.html) that is not in this store"));
}

#[test]
fn a_crashed_run_without_results_or_nemesis_and_a_torn_line_still_gets_a_report() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), &synthetic_history(3, 40 * MS, 3 * S));
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("history.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"index":99999,"process":1,"type":"in"#).unwrap();
    drop(file);
    let html = report_of(dir.path());
    assert!(html.contains(r#"<div class="verdict unknown" id="verdict">"#));
    assert!(html.contains(">UNKNOWN<"));
    assert!(html.contains("ends with a torn line"));
    assert!(html.contains("results.json is missing"));
    assert!(html.contains("config.toml is missing"));
    assert!(html.contains("No faults were recorded."));
    assert!(html.contains("No checker result was recorded (unknown)."));
    assert!(html.contains("s (from the logs)"));
    // the operations before the torn line are all drawn
    assert!(html.contains("ok</span>") && !html.contains(">0 ok</span>"));
    for name in ["timeline.svg", "latency.svg", "throughput.svg"] {
        let svg = fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(shaded(&svg), 0, "{name}");
    }
}

#[test]
fn a_bad_results_json_falls_back_to_unknown_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    fs::write(
        dir.path().join("results.json"),
        r#"{"verdict": "valid", "seed": 4"#,
    )
    .unwrap();
    let html = report_of(dir.path());
    assert!(html.contains(">UNKNOWN<"));
    assert!(html.contains("results.json is not valid JSON"));
    // the logs still give the duration and the pictures
    assert!(html.contains("s (from the logs)"));
    assert_eq!(html.matches("<svg ").count(), 3);
}

#[test]
fn an_empty_store_still_gets_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let html = report_of(dir.path());
    assert!(html.contains(">UNKNOWN<"));
    assert!(html.contains("history.jsonl is missing"));
    assert!(html.contains(">0 ok</span>"));
    assert!(html.contains("no operations"));
}

#[test]
fn an_unpairable_history_is_noted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // an ok with no invocation before it
    fs::write(
        dir.path().join("history.jsonl"),
        "{\"index\":0,\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"k0\",\"value\":null,\"time\":5}\n",
    )
    .unwrap();
    let html = report_of(dir.path());
    assert!(html.contains("history.jsonl could not be"), "{html}");
}

#[test]
fn a_missing_store_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(&dir.path().join("nope")).unwrap_err();
    assert!(
        err.to_string().contains("is not a run store directory"),
        "{err}"
    );
}

#[test]
fn text_from_the_store_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    full_store(dir.path());
    let line = fault(S, "start", "kill", 9, &[1], "<script>alert(1)</script>");
    fs::write(dir.path().join("nemesis.jsonl"), line + "\n").unwrap();
    fs::write(dir.path().join("config.toml"), "name = \"</pre><b>\"\n").unwrap();
    let html = report_of(dir.path());
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(!html.contains("</pre><b>"));
}

#[test]
fn a_long_busy_run_gives_a_page_of_a_few_megabytes_at_most() {
    let dir = tempfile::tempdir().unwrap();
    // 60 s at 200 ops/s: 20 clients, one operation every 100 ms each
    let history = synthetic_history(20, 100 * MS, 60 * S);
    assert!(history.events.len() > 20_000, "{}", history.events.len());
    write_history(dir.path(), &history);
    write_nemesis(dir.path());
    let size_60s = report_of(dir.path()).len();
    assert!(size_60s < 3_000_000, "{size_60s} bytes for 60 s");

    // ten times longer: the page grows with the pixels, not the operations
    let history = synthetic_history(20, 100 * MS, 600 * S);
    write_history(dir.path(), &history);
    let size_600s = report_of(dir.path()).len();
    assert!(size_600s < 3_000_000, "{size_600s} bytes for 600 s");
}

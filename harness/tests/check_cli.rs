//! `faultline check` end to end: fixture histories written to a temporary
//! directory, the real binary run on them, exit codes and outputs checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// Runs `faultline check ARGS...`.
fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the faultline binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// One JSONL event line; `time` is derived from `index`.
fn event(index: u64, process: u64, kind: &str, f: &str, key: &str, value: Value) -> String {
    json!({
        "index": index, "process": process, "type": kind, "f": f,
        "key": key, "value": value, "time": index * 1_000,
    })
    .to_string()
}

/// Appends `a` then `b` to `key` one after the other, then a get that
/// observes `seen`. Events are numbered from `start`, processes from
/// `start` too, so several keys can be concatenated.
fn appends_then_get(key: &str, start: u64, seen: &str) -> String {
    let p = start;
    [
        event(start, p, "invoke", "append", key, json!("a")),
        event(start + 1, p, "ok", "append", key, json!("a")),
        event(start + 2, p + 1, "invoke", "append", key, json!("b")),
        event(start + 3, p + 1, "ok", "append", key, json!("b")),
        event(start + 4, p + 2, "invoke", "get", key, Value::Null),
        event(start + 5, p + 2, "ok", "get", key, json!(seen)),
    ]
    .join("\n")
        + "\n"
}

/// A linearizable history: the get saw both appends.
fn good_kv(key: &str) -> String {
    appends_then_get(key, 0, "ab")
}

/// A stale read: the get started after both appends completed, yet missed
/// the second one.
fn stale_read_kv(key: &str) -> String {
    appends_then_get(key, 0, "a")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, body).expect("write fixture");
    path
}

#[test]
fn linearizable_jsonl_history_exits_0_and_writes_no_visualization() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.jsonl", &good_kv("x"));
    let out = check(&[path_str(&path), "--model", "kv"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("verdict   LINEARIZABLE"),
        "{}",
        stdout(&out)
    );
    assert!(!dir.path().join("good.linearizability.html").exists());
}

#[test]
fn stale_read_exits_1_and_writes_the_visualization_of_the_failing_key() {
    let dir = tempfile::tempdir().unwrap();
    let history = stale_read_kv("acct-17") + &appends_then_get("acct-3", 10, "ab");
    let path = write(dir.path(), "bank.jsonl", &history);
    let out = check(&[path_str(&path)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("NOT LINEARIZABLE"), "{text}");
    assert!(text.contains("failing part: key \"acct-17\""), "{text}");
    assert!(
        text.contains("get() -> \"a\""),
        "the impossible read is named: {text}"
    );
    let html_path = dir.path().join("bank.linearizability.html");
    assert!(
        text.contains(path_str(&html_path)),
        "the page's path is printed: {text}"
    );
    let html =
        fs::read_to_string(&html_path).expect("the visualization is written beside the history");
    assert!(html.contains("acct-17"), "the page names the failing key");
    assert!(
        !html.contains("acct-3"),
        "the page shows only the failing part"
    );
    assert!(html.contains("<svg"), "the timeline is inline SVG");
}

#[test]
fn the_page_draws_the_prefix_and_the_impossible_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.jsonl", &stale_read_kv("x"));
    let out = check(&[path_str(&path)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let html = fs::read_to_string(dir.path().join("h.linearizability.html")).unwrap();
    // two appends linearized as steps 1 and 2, the read impossible and blocking
    assert_eq!(
        html.matches("class=\"pin step\"").count(),
        2,
        "one pin per linearized step"
    );
    assert_eq!(html.matches("class=\"pin impossible\"").count(), 1);
    assert_eq!(html.matches("class=\"pin blocking\"").count(), 1);
    assert!(
        html.contains("class=\"op impossible blocking\""),
        "the read's bar is red and outlined"
    );
    assert!(html.contains("Stuck after step 2"));
    assert!(
        !html.contains(" src=") && !html.contains(" href=") && !html.contains("url(http"),
        "the page loads nothing"
    );
}

#[test]
fn edn_histories_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                {:process 0, :type :ok, :f :write, :value 1}\n\
                {:process 1, :type :invoke, :f :read, :value nil}\n\
                {:process 1, :type :ok, :f :read, :value 1}\n";
    let path = write(dir.path(), "reg.edn", good);
    let out = check(&[path_str(&path), "--model", "register"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("(edn,"), "{}", stdout(&out));

    let stale = good.replace(":ok, :f :read, :value 1", ":ok, :f :read, :value nil");
    let path = write(dir.path(), "stale.edn", &stale);
    let out = check(&[path_str(&path), "--model", "register"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(dir.path().join("stale.linearizability.html").exists());
}

#[test]
fn format_is_sniffed_when_the_extension_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let edn = write(
        dir.path(),
        "porcupine-kv.txt",
        "{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}\n\
         {:process 0, :type :ok, :f :put, :key \"1\", :value \"x\"}\n",
    );
    let out = check(&[path_str(&edn)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(edn,"), "{}", stdout(&out));

    let jsonl = write(dir.path(), "history.data", &good_kv("k"));
    let out = check(&[path_str(&jsonl)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(jsonl,"), "{}", stdout(&out));
}

#[test]
fn jepsen_text_logs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "etcd_000.log",
        "INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
         INFO  jepsen.util - 0\t:ok\t:write\t3\n\
         INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
         INFO  jepsen.util - 1\t:ok\t:read\t0\n",
    );
    let out = check(&[path_str(&log), "--model", "register"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("(jepsen-log,"), "{}", stdout(&out));
}

#[test]
fn broken_line_exits_2_naming_the_line_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = good_kv("x").lines().map(str::to_string).collect();
    lines[2] =
        r#"{"index":2,"process":1,"type":"invoke","f":"append","key":"x","value":"b"}"#.to_string();
    let path = write(dir.path(), "broken.jsonl", &(lines.join("\n") + "\n"));
    let out = check(&[path_str(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("broken.jsonl: line 3:"), "{err}");
    assert!(err.contains("missing field `time`"), "{err}");
}

#[test]
fn broken_edn_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "broken.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1\n",
    );
    let out = check(&[path_str(&path), "--model", "register"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn zero_time_budget_is_unknown_never_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    // Not linearizable, but with no time to search the verdict must be unknown.
    let path = write(dir.path(), "h.jsonl", &stale_read_kv("x"));
    let out = check(&[path_str(&path), "--time-limit", "0s"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("UNKNOWN (time budget exhausted)"), "{text}");
    assert!(text.contains("--time-limit"), "says how to finish: {text}");
    assert!(!dir.path().join("h.linearizability.html").exists());
}

#[test]
fn nonexistent_history_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let out = check(&[path_str(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("history {} does not exist", missing.display())),
        "{err}"
    );
}

#[test]
fn html_escapes_keys_and_values_from_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let key = "<script>alert('k')</script>";
    let history = stale_read_kv(key).replace("\"a\"", "\"<img src=x onerror=alert(1)>\"");
    let path = write(dir.path(), "evil.jsonl", &history);
    let out = check(&[path_str(&path)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let html = fs::read_to_string(dir.path().join("evil.linearizability.html")).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "a key must never become markup"
    );
    assert!(!html.contains("<img"), "a value must never become markup");
    assert!(
        html.contains("&lt;script&gt;alert("),
        "the key is shown, escaped"
    );
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own tooltip script"
    );
}

#[test]
fn run_store_directory_is_checked_and_gets_results_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("store/bank/20261123T101500");
    fs::create_dir_all(&run).unwrap();
    write(&run, "history.jsonl", &stale_read_kv("x"));
    let out = check(&[path_str(&run)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let results: Value =
        serde_json::from_slice(&fs::read(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["verdict"], "not_linearizable");
    assert_eq!(results["exit_code"], 1);
    assert_eq!(results["counterexample"]["key"], "x");
    assert!(run.join("history.linearizability.html").exists());
}

#[test]
fn directory_without_a_history_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[path_str(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("without a history.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_output_carries_verdict_parts_and_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.jsonl", &stale_read_kv("x"));
    let out = check(&[path_str(&path), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(report["verdict"], "not_linearizable");
    assert_eq!(report["model"], "kv");
    assert_eq!(report["format"], "jsonl");
    assert_eq!(report["parts"].as_array().map(Vec::len), Some(1));
    let cx = &report["counterexample"];
    assert_eq!(cx["longest_prefix"].as_array().map(Vec::len), Some(2));
    assert_eq!(cx["stuck_state"], "\"ab\"");
    assert_eq!(cx["blocking_op"], 2);
    let html = report["visualization"].as_str().expect("the page's path");
    assert!(Path::new(html).exists());
}

#[test]
fn out_dir_receives_the_visualization() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.jsonl", &stale_read_kv("x"));
    let out_dir = dir.path().join("reports/today");
    let out = check(&[path_str(&path), "--out", path_str(&out_dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out_dir.join("h.linearizability.html").exists());
    assert!(!dir.path().join("h.linearizability.html").exists());
}

#[test]
fn operations_that_do_not_fit_the_model_say_which_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "reg.jsonl",
        concat!(
            r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1,"time":0}"#,
            "\n",
            r#"{"index":1,"process":0,"type":"ok","f":"write","value":1,"time":1}"#,
            "\n"
        ),
    );
    let out = check(&[path_str(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("`kv` model") && err.contains("--model"),
        "{err}"
    );
}

#[test]
fn torn_last_line_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "torn.jsonl",
        &(good_kv("x") + r#"{"index":6,"proc"#),
    );
    let out = check(&[path_str(&path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--allow-torn-tail"),
        "{}",
        stderr(&out)
    );

    let out = check(&[path_str(&path), "--allow-torn-tail"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("dropped the torn last line 7"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_limits_are_refused_by_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.jsonl", &good_kv("x"));
    let out = check(&[path_str(&path), "--memory-limit", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a size"), "{}", stderr(&out));
}

#[test]
fn absurd_time_limit_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.jsonl", &good_kv("x"));
    let out = check(&[path_str(&path), "--time-limit", "300000000000years"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--time-limit") && err.contains("too large"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

//! What the store holds, read afresh for every page so that runs show up
//! while the server is up.
//!
//! The store is `<root>/<test>/<run>/` for `faultline test` runs and
//! `<root>/bench/<run>/` for `faultline bench` runs; symlinks (`latest`)
//! are skipped so no run is listed twice. A run is described by its
//! `results.json` (read leniently with the report's own [`RunResults`]) and
//! its `config.toml`. A run whose `results.json` is missing or broken (one
//! still going, or one that crashed) is listed as incomplete with the
//! reason, never dropped.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use crate::report::REPORT_FILE;
use crate::report::results::RunResults;
use crate::test::config::TestConfig;
use crate::test::store::{self, Counts};

/// The folder of the store that holds `faultline bench` runs.
pub const BENCH_DIR: &str = "bench";
/// A bench run's machine-readable result; only its `summary` is read.
pub const BENCH_JSON: &str = "bench.json";
/// A bench run's page.
pub const BENCH_HTML: &str = "bench.html";
const RESULTS_JSON: &str = "results.json";

/// Where a run stands, as the index colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The history is linearizable and the run went well.
    Valid,
    /// The history is not linearizable.
    Invalid,
    /// The run ended without a verdict (a harness error, a check budget).
    Unknown,
    /// No usable `results.json`: the run is going, or it stopped early.
    Incomplete,
}

impl Status {
    /// Every status, in the order the index counts them.
    pub const ALL: [Status; 4] = [
        Status::Valid,
        Status::Invalid,
        Status::Unknown,
        Status::Incomplete,
    ];

    /// The word shown, and used in `?verdict=`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Incomplete => "incomplete",
        }
    }

    /// The status called `word`.
    pub fn from_name(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == word)
    }
}

/// One `faultline test` run directory.
#[derive(Debug)]
pub struct RunEntry {
    /// The test's folder name.
    pub test: String,
    /// The run's folder name, `<time>-<seed>`.
    pub dir: String,
    /// `results.json`, or why there is none to use.
    pub results: Result<RunResults, String>,
    /// The operation counts of `results.json` (not part of [`RunResults`]).
    pub counts: Option<Counts>,
    /// `config.toml`, or why it could not be read.
    pub config: Result<TestConfig, String>,
    /// Whether `report.html` is there.
    pub has_report: bool,
}

impl RunEntry {
    /// Reads the run at `<root>/<test>/<dir>`.
    pub fn read(root: &Path, test: &str, dir: &str) -> RunEntry {
        let path = root.join(test).join(dir);
        let (results, counts) = match read_results(&path) {
            Ok((results, counts)) => (Ok(results), counts),
            Err(reason) => (Err(reason), None),
        };
        RunEntry {
            test: test.to_string(),
            dir: dir.to_string(),
            results,
            counts,
            config: store::read_config(&path).map_err(|e| format!("{e:#}")),
            has_report: path.join(REPORT_FILE).is_file(),
        }
    }

    /// Where the run stands.
    pub fn status(&self) -> Status {
        match &self.results {
            Ok(r) => match r.verdict_class() {
                "valid" => Status::Valid,
                "invalid" => Status::Invalid,
                _ => Status::Unknown,
            },
            Err(_) => Status::Incomplete,
        }
    }

    /// When the run started (RFC 3339): from `results.json`, else from the
    /// folder name, which `faultline test` stamps before anything else.
    pub fn started(&self) -> Option<String> {
        self.results
            .as_ref()
            .ok()
            .and_then(|r| r.started_at.clone())
            .or_else(|| stamp_time(&self.dir))
    }

    /// The run's seed, from whichever file says it.
    pub fn seed(&self) -> Option<u64> {
        let from_results = self.results.as_ref().ok().and_then(|r| r.seed);
        from_results.or_else(|| self.config.as_ref().ok().map(|c| c.seed))
    }

    /// The fault kinds the run drew from.
    pub fn nemesis(&self) -> Option<Vec<String>> {
        let from_results = self.results.as_ref().ok().and_then(|r| r.nemesis.clone());
        from_results.or_else(|| {
            let config = self.config.as_ref().ok()?;
            Some(
                config
                    .nemesis
                    .iter()
                    .map(|k| k.name().to_string())
                    .collect(),
            )
        })
    }

    /// How many faults the run's schedule holds.
    pub fn scheduled_faults(&self) -> Option<usize> {
        self.config.as_ref().ok().map(|c| c.schedule.faults.len())
    }

    /// The run's length in milliseconds, once it is known.
    pub fn duration_ms(&self) -> Option<u64> {
        self.results.as_ref().ok().and_then(|r| r.duration_ms)
    }
}

/// One `faultline bench` run directory.
#[derive(Debug)]
pub struct BenchEntry {
    /// The run's folder name, `<time>-<label>`.
    pub dir: String,
    /// The `summary` of `bench.json`, or why there is none.
    pub summary: Result<String, String>,
    /// Whether `bench.html` is there.
    pub has_page: bool,
}

impl BenchEntry {
    fn read(bench_root: &Path, dir: &str) -> BenchEntry {
        let path = bench_root.join(dir);
        BenchEntry {
            dir: dir.to_string(),
            summary: read_bench_summary(&path.join(BENCH_JSON)),
            has_page: path.join(BENCH_HTML).is_file(),
        }
    }

    /// When the bench ran (RFC 3339), from its folder name.
    pub fn started(&self) -> Option<String> {
        stamp_time(&self.dir)
    }
}

/// Everything the index shows.
#[derive(Debug, Default)]
pub struct StoreIndex {
    /// Test runs, newest first.
    pub runs: Vec<RunEntry>,
    /// Bench runs, newest first.
    pub benches: Vec<BenchEntry>,
    /// Folders that could not be read, in words.
    pub problems: Vec<String>,
}

impl StoreIndex {
    /// Reads the whole store at `root`.
    pub fn scan(root: &Path) -> StoreIndex {
        let mut index = StoreIndex::default();
        for test in index.subdirs(root) {
            if test == BENCH_DIR {
                let bench_root = root.join(BENCH_DIR);
                for dir in index.subdirs(&bench_root) {
                    index.benches.push(BenchEntry::read(&bench_root, &dir));
                }
                continue;
            }
            for dir in index.subdirs(&root.join(&test)) {
                index.runs.push(RunEntry::read(root, &test, &dir));
            }
        }
        index.runs.sort_by(|a, b| {
            let key = |r: &RunEntry| (stamp_time(&r.dir).or_else(|| r.started()), r.dir.clone());
            key(b).cmp(&key(a)).then_with(|| a.test.cmp(&b.test))
        });
        index
            .benches
            .sort_by(|a, b| (b.started(), &b.dir).cmp(&(a.started(), &a.dir)));
        index
    }

    /// The names of the real (not symlinked) folders in `dir`; what cannot
    /// be read goes to the problems.
    fn subdirs(&mut self, dir: &Path) -> Vec<String> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.problems
                    .push(format!("cannot list {}: {e}", dir.display()));
                return Vec::new();
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.problems
                        .push(format!("cannot list {}: {e}", dir.display()));
                    continue;
                }
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) if !name.starts_with('.') => names.push(name),
                Ok(_) => {}
                Err(name) => self.problems.push(format!(
                    "{} has a folder whose name is not UTF-8: {}",
                    dir.display(),
                    name.to_string_lossy()
                )),
            }
        }
        names.sort();
        names
    }
}

/// One file of a run, as the run page lists it.
#[derive(Debug, PartialEq, Eq)]
pub struct RunFile {
    /// The path relative to the run directory, `/`-separated.
    pub path: String,
    /// Its size; `None` when an expected file is missing.
    pub bytes: Option<u64>,
    /// What it holds.
    pub what: &'static str,
}

/// The files every finished run has, and some it may have, in the order the
/// run page lists them; `true` marks the expected ones.
const KNOWN_FILES: [(&str, &str, bool); 9] = [
    (
        REPORT_FILE,
        "the report: verdict, timeline, latency, throughput, faults",
        true,
    ),
    (
        "history.linearizability.html",
        "the counterexample timeline",
        false,
    ),
    ("history.jsonl", "every invoke and completion", true),
    ("nemesis.jsonl", "every fault's start and end", true),
    (
        "config.toml",
        "seed, flags and fault schedule: all a replay needs",
        true,
    ),
    (
        "results.json",
        "verdict and facts, with the checker's report",
        true,
    ),
    ("timeline.svg", "the report's timeline chart", false),
    ("latency.svg", "the report's latency chart", false),
    ("throughput.svg", "the report's throughput chart", false),
];

/// The files of the run at `dir`: the known ones (missing expected ones
/// included, with no size), any other top-level file, then each node's
/// files (`nodes/<id>/kvd.log`; data directories are left out).
pub fn run_files(dir: &Path) -> Vec<RunFile> {
    let mut files: Vec<RunFile> = KNOWN_FILES
        .iter()
        .filter_map(|&(name, what, expected)| {
            let bytes = file_size(&dir.join(name));
            (expected || bytes.is_some()).then(|| RunFile {
                path: name.to_string(),
                bytes,
                what,
            })
        })
        .collect();
    let mut others: Vec<RunFile> = plain_files(dir)
        .into_iter()
        .filter(|(name, _)| !KNOWN_FILES.iter().any(|k| k.0 == name))
        .map(|(name, bytes)| RunFile {
            path: name,
            bytes: Some(bytes),
            what: "",
        })
        .collect();
    files.append(&mut others);

    let nodes = dir.join("nodes");
    let mut node_ids: Vec<String> = fs::read_dir(&nodes)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    // Numeric ids in numeric order: n2 before n10.
    node_ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    for id in node_ids {
        for (name, bytes) in plain_files(&nodes.join(&id)) {
            files.push(RunFile {
                path: format!("nodes/{id}/{name}"),
                bytes: Some(bytes),
                what: if name == "kvd.log" {
                    "the node's server log"
                } else {
                    ""
                },
            });
        }
    }
    files
}

/// The regular files directly in `dir` (symlinks not followed), with sizes,
/// by name.
fn plain_files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(fs::Metadata::is_file)?;
            Some((e.file_name().into_string().ok()?, meta.len()))
        })
        .collect();
    files.sort();
    files
}

/// The size of the regular file at `path`, if it is one.
fn file_size(path: &Path) -> Option<u64> {
    fs::symlink_metadata(path)
        .ok()
        .filter(fs::Metadata::is_file)
        .map(|m| m.len())
}

/// Reads `results.json` of the run at `dir`, with its operation counts;
/// the error says why the run has no usable one.
fn read_results(dir: &Path) -> Result<(RunResults, Option<Counts>), String> {
    let text = match fs::read_to_string(dir.join(RESULTS_JSON)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(
                "no results.json yet: the run is still going, or it stopped before writing one"
                    .to_string(),
            );
        }
        Err(e) => return Err(format!("cannot read results.json: {e}")),
    };
    let results = RunResults::parse(&text)?;
    let counts = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| counts_of(v.get("counts")?));
    Ok((results, counts))
}

/// The `counts` object of `results.json`, when it has all three numbers.
fn counts_of(counts: &Value) -> Option<Counts> {
    let get = |k: &str| counts.get(k).and_then(Value::as_u64);
    Some(Counts {
        ok: get("ok")?,
        fail: get("fail")?,
        info: get("info")?,
    })
}

/// The `summary` of the `bench.json` at `path`, or why there is none.
fn read_bench_summary(path: &Path) -> Result<String, String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(
                "no bench.json yet: the bench is still going, or it stopped before writing one"
                    .to_string(),
            );
        }
        Err(e) => return Err(format!("cannot read bench.json: {e}")),
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("bench.json is not valid JSON: {e}"))?;
    value
        .get("summary")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "bench.json has no \"summary\" string".to_string())
}

/// The time stamped at the front of a store folder name
/// (`20261123T112835Z-…`), as RFC 3339 (`2026-11-23T11:28:35Z`).
pub fn stamp_time(name: &str) -> Option<String> {
    let stamp = name.get(..16)?;
    let rest = &name[16..];
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shaped = digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z';
    if !shaped || !(rest.is_empty() || rest.starts_with('-')) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::testing::{StoreBuilder, results_json};

    #[test]
    fn runs_are_listed_newest_first_with_their_verdicts() {
        let store = StoreBuilder::new();
        store.run(
            "alpha",
            "20261123T100000Z-1",
            Some(&results_json("valid", 1)),
        );
        store.run(
            "beta",
            "20261123T120000Z-2",
            Some(&results_json("invalid", 2)),
        );
        store.run(
            "alpha",
            "20261123T110000Z-3",
            Some(&results_json("unknown", 3)),
        );
        store.link_latest("beta", "20261123T120000Z-2");
        let index = StoreIndex::scan(store.root());
        let listed: Vec<(&str, &str, Status)> = index
            .runs
            .iter()
            .map(|r| (r.test.as_str(), r.dir.as_str(), r.status()))
            .collect();
        assert_eq!(
            listed,
            [
                ("beta", "20261123T120000Z-2", Status::Invalid),
                ("alpha", "20261123T110000Z-3", Status::Unknown),
                ("alpha", "20261123T100000Z-1", Status::Valid),
            ]
        );
        assert!(index.problems.is_empty(), "{:?}", index.problems);
        let valid = &index.runs[2];
        assert_eq!(valid.seed(), Some(1));
        assert_eq!(valid.duration_ms(), Some(15_000));
        assert_eq!(
            valid.nemesis(),
            Some(vec!["partition".to_string(), "kill".to_string()])
        );
        let counts = valid.counts.unwrap();
        assert_eq!((counts.ok, counts.fail, counts.info), (120, 3, 2));
    }

    #[test]
    fn runs_without_usable_results_are_incomplete_with_the_reason() {
        let store = StoreBuilder::new();
        store.run("t", "20261123T100000Z-5", None);
        store.run("t", "20261123T100001Z-6", Some("{\"verdict\": \"val"));
        let index = StoreIndex::scan(store.root());
        assert_eq!(index.runs.len(), 2);
        for run in &index.runs {
            assert_eq!(run.status(), Status::Incomplete);
            assert!(run.counts.is_none());
        }
        let reason = |i: usize| index.runs[i].results.as_ref().unwrap_err().clone();
        assert!(reason(0).contains("not valid JSON"), "{}", reason(0));
        assert!(reason(1).contains("no results.json yet"), "{}", reason(1));
        // The folder name still says when it started.
        assert_eq!(
            index.runs[1].started().as_deref(),
            Some("2026-11-23T10:00:00Z")
        );
    }

    #[test]
    fn the_config_fills_in_for_a_run_still_going() {
        let store = StoreBuilder::new();
        store.run("t", "20261123T100000Z-42", None);
        let config = store.config("t", "20261123T100000Z-42", 42);
        let index = StoreIndex::scan(store.root());
        let run = &index.runs[0];
        assert_eq!(run.status(), Status::Incomplete);
        assert_eq!(run.seed(), Some(42));
        assert_eq!(run.nemesis(), Some(vec!["kill".to_string()]));
        assert!(!config.schedule.faults.is_empty());
        assert_eq!(run.scheduled_faults(), Some(config.schedule.faults.len()));
    }

    #[test]
    fn bench_runs_are_listed_apart_with_their_summary() {
        let store = StoreBuilder::new();
        store.bench(
            "20261123T100000Z-base",
            Some(r#"{"summary": "812 ops/s", "x": 1}"#),
        );
        store.bench("20261123T110000Z-broken", Some("{"));
        store.bench("20261123T120000Z-nosummary", Some(r#"{"summary": 3}"#));
        store.bench("20261123T130000Z-running", None);
        let index = StoreIndex::scan(store.root());
        assert!(index.runs.is_empty(), "bench runs are not test runs");
        let benches: Vec<(&str, Result<&str, &str>)> = index
            .benches
            .iter()
            .map(|b| (b.dir.as_str(), b.summary.as_deref().map_err(String::as_str)))
            .collect();
        assert_eq!(benches[3], ("20261123T100000Z-base", Ok("812 ops/s")));
        assert!(index.benches[3].has_page);
        assert!(benches[2].1.unwrap_err().contains("not valid JSON"));
        assert!(benches[1].1.unwrap_err().contains("no \"summary\""));
        assert!(benches[0].1.unwrap_err().contains("no bench.json yet"));
        assert!(!index.benches[0].has_page);
    }

    #[test]
    fn a_missing_store_is_a_problem_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let index = StoreIndex::scan(&tmp.path().join("gone"));
        assert!(index.runs.is_empty());
        assert_eq!(index.problems.len(), 1, "{:?}", index.problems);
    }

    #[test]
    fn run_files_list_known_files_first_and_each_node_log() {
        let store = StoreBuilder::new();
        let dir = store.run("t", "20261123T100000Z-1", Some(&results_json("valid", 1)));
        fs::write(dir.join("extra.txt"), "x").unwrap();
        for id in ["10", "2"] {
            fs::create_dir_all(dir.join("nodes").join(id).join("data")).unwrap();
            fs::write(dir.join("nodes").join(id).join("kvd.log"), "log").unwrap();
        }
        let paths: Vec<(String, Option<u64>)> = run_files(&dir)
            .into_iter()
            .map(|f| (f.path, f.bytes))
            .collect();
        let results_len = results_json("valid", 1).len() as u64;
        assert_eq!(
            paths,
            [
                ("report.html".to_string(), Some(6)),
                ("history.jsonl".to_string(), None),
                ("nemesis.jsonl".to_string(), None),
                ("config.toml".to_string(), None),
                ("results.json".to_string(), Some(results_len)),
                ("extra.txt".to_string(), Some(1)),
                ("nodes/2/kvd.log".to_string(), Some(3)),
                ("nodes/10/kvd.log".to_string(), Some(3)),
            ]
        );
    }

    #[test]
    fn folder_stamps_become_rfc3339() {
        assert_eq!(
            stamp_time("20261123T112835Z-144837138").as_deref(),
            Some("2026-11-23T11:28:35Z")
        );
        assert_eq!(
            stamp_time("20261123T112835Z").as_deref(),
            Some("2026-11-23T11:28:35Z")
        );
        assert_eq!(stamp_time("20261123T112835Zx"), None);
        assert_eq!(stamp_time("latest"), None);
        assert_eq!(stamp_time("2026112é112835Z-1"), None);
    }
}

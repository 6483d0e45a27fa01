//! Test fixtures: run stores built in a temporary directory with the
//! harness's own writers, so the tests read what `faultline test` writes.

use std::fs;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::test::config::{NetBackend, TestArgs, TestConfig};
use crate::test::store::{self, Counts, Results};

/// A store root in a temporary directory, removed on drop.
pub struct StoreBuilder {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

/// `faultline test`'s flags, parsed the way the binary parses them.
#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    args: TestArgs,
}

impl StoreBuilder {
    /// An empty store.
    pub fn new() -> StoreBuilder {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        fs::create_dir(&root).unwrap();
        StoreBuilder { _tmp: tmp, root }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding the store (to put things outside it).
    pub fn outside(&self) -> &Path {
        self._tmp.path()
    }

    /// A run folder `<test>/<dir>`; with `results`, also that
    /// `results.json` and a `report.html` of 6 bytes.
    pub fn run(&self, test: &str, dir: &str, results: Option<&str>) -> PathBuf {
        let path = self.root.join(test).join(dir);
        fs::create_dir_all(&path).unwrap();
        if let Some(results) = results {
            fs::write(path.join("results.json"), results).unwrap();
            fs::write(path.join("report.html"), "report").unwrap();
        }
        path
    }

    /// Writes a real `config.toml` (nemesis `kill`, seed `seed`) into the
    /// run folder `<test>/<dir>`.
    pub fn config(&self, test: &str, dir: &str, seed: u64) -> TestConfig {
        let flags = TestFlags::parse_from([
            "faultline",
            "--name",
            test,
            "--nodes",
            "3",
            "--nemesis",
            "kill",
            "--time-limit",
            "10s",
            "--nemesis-interval",
            "5s",
        ]);
        let config = flags.args.to_config(seed, NetBackend::Proxy).unwrap();
        store::write_config(&self.root.join(test).join(dir), &config).unwrap();
        config
    }

    /// Points `latest` links at `<test>/<dir>`, as `faultline test` does.
    pub fn link_latest(&self, test: &str, dir: &str) {
        store::update_latest(&self.root, &self.root.join(test).join(dir)).unwrap();
    }

    /// A bench folder `bench/<dir>`; with `json`, also that `bench.json`
    /// and a `bench.html`.
    pub fn bench(&self, dir: &str, json: Option<&str>) -> PathBuf {
        let path = self.root.join("bench").join(dir);
        fs::create_dir_all(&path).unwrap();
        if let Some(json) = json {
            fs::write(path.join("bench.json"), json).unwrap();
            fs::write(path.join("bench.html"), "<p>bench</p>").unwrap();
        }
        path
    }
}

/// A `results.json` as `faultline test` writes it, with `verdict` and
/// `seed`, 120 ok, 3 fail and 2 info operations over 15 s; an invalid one
/// names a counterexample page.
pub fn results_json(verdict: &'static str, seed: u64) -> String {
    let exit_code = match verdict {
        "valid" => 0,
        "invalid" => 1,
        _ => 2,
    };
    let results = Results {
        test: "t",
        verdict,
        exit_code,
        error: (exit_code == 2).then(|| "the cluster did not answer every final read".into()),
        seed,
        started_at: "2026-11-23T10:00:00Z".to_string(),
        duration_ms: 15_000,
        net: "proxy",
        nodes: 3,
        concurrency: 4,
        workload: "kv-append",
        nemesis: vec!["partition", "kill"],
        counts: Counts {
            ok: 120,
            fail: 3,
            info: 2,
        },
        rate_ok_per_s: 8.0,
        recovered: exit_code != 2,
        checker: None,
        timeline: (exit_code == 1).then(|| "history.linearizability.html".to_string()),
    };
    serde_json::to_string_pretty(&results).unwrap()
}

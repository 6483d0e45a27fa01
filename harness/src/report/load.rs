//! Reading a run store, whatever state the run left it in.
//!
//! A report matters most for the runs that went wrong, so nothing here
//! fails on a missing or damaged file: each problem becomes a line the report
//! shows, and the pictures are drawn from whatever could be read.

use std::fs;
use std::io::Read;
use std::path::Path;

use histories::{OpStatus, Operation, ReadOptions};

use super::faults::NemesisLog;
use super::results::RunResults;

/// The most of `config.toml` shown verbatim; a config is a page of text, so
/// anything bigger is not one.
const MAX_CONFIG_BYTES: u64 = 256 * 1024;

/// Everything the report is drawn from.
#[derive(Debug, Default)]
pub struct RunStore {
    /// The operations of the history, in invocation order.
    pub ops: Vec<Operation>,
    /// The nemesis log.
    pub nemesis: NemesisLog,
    /// `config.toml`, verbatim.
    pub config: Option<String>,
    /// `results.json`, leniently parsed.
    pub results: RunResults,
    /// Whether `results.json` was there and readable at all.
    pub results_found: bool,
    /// What was missing or damaged, in words, for the top of the report.
    pub problems: Vec<String>,
    /// The end of the run in nanoseconds: the last thing any log recorded
    /// (the reported duration when the logs are empty).
    pub end: u64,
}

impl RunStore {
    /// Reads the store at `dir`.
    pub fn load(dir: &Path) -> Self {
        let mut store = RunStore::default();
        store.load_history(dir);
        store.load_nemesis(dir);
        store.load_results(dir);
        store.load_config(dir);
        let ops_end = store
            .ops
            .iter()
            .map(|op| op.return_time.or(op.info_time).unwrap_or(op.call_time))
            .max()
            .unwrap_or(0);
        // The logs' end, not the reported duration: that one also counts
        // the time the checker took after the last operation.
        store.end = ops_end.max(store.nemesis.last_time());
        if store.end == 0 {
            store.end = store
                .results
                .duration_ms
                .map_or(0, |ms| ms.saturating_mul(1_000_000));
        }
        store
    }

    fn load_history(&mut self, dir: &Path) {
        let path = dir.join("history.jsonl");
        if !path.exists() {
            self.problems
                .push("history.jsonl is missing: no operations to show".to_string());
            return;
        }
        let options = ReadOptions {
            tolerate_torn_tail: true,
        };
        let history = match histories::read_file_as(&path, histories::Format::Jsonl, options) {
            Ok(history) => history,
            Err(err) => {
                self.problems
                    .push(format!("history.jsonl could not be read: {err}"));
                return;
            }
        };
        if let Some(line) = history.dropped_torn_line {
            self.problems.push(format!(
                "history.jsonl ends with a torn line ({line}), left by a crash; it was dropped"
            ));
        }
        match history.operations() {
            Ok(ops) => self.ops = ops,
            Err(err) => self.problems.push(format!(
                "history.jsonl could not be paired into operations: {err}"
            )),
        }
    }

    fn load_nemesis(&mut self, dir: &Path) {
        match fs::read_to_string(dir.join("nemesis.jsonl")) {
            Ok(text) => self.nemesis = NemesisLog::parse(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => self
                .problems
                .push(format!("nemesis.jsonl could not be read: {err}")),
        }
        self.problems.extend(self.nemesis.problems.iter().cloned());
    }

    fn load_results(&mut self, dir: &Path) {
        match fs::read_to_string(dir.join("results.json")) {
            Ok(text) => match RunResults::parse(&text) {
                Ok(results) => {
                    self.results = results;
                    self.results_found = true;
                }
                Err(why) => self.problems.push(format!("{why}; the verdict is unknown")),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => self.problems.push(
                "results.json is missing (the run did not finish?); the verdict is unknown"
                    .to_string(),
            ),
            Err(err) => self.problems.push(format!(
                "results.json could not be read: {err}; the verdict is unknown"
            )),
        }
    }

    fn load_config(&mut self, dir: &Path) {
        let path = dir.join("config.toml");
        let read = fs::File::open(&path).and_then(|file| {
            let mut bytes = Vec::new();
            file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        match read {
            Ok(mut bytes) => {
                if bytes.len() as u64 > MAX_CONFIG_BYTES {
                    bytes.truncate(MAX_CONFIG_BYTES as usize);
                    self.problems.push(format!(
                        "config.toml is larger than {MAX_CONFIG_BYTES} bytes; only its start is shown"
                    ));
                }
                self.config = Some(String::from_utf8_lossy(&bytes).into_owned());
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.problems.push("config.toml is missing".to_string());
            }
            Err(err) => self
                .problems
                .push(format!("config.toml could not be read: {err}")),
        }
    }

    /// How many operations ended each way.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for op in &self.ops {
            match op.status {
                OpStatus::Ok => counts.ok += 1,
                OpStatus::Fail => counts.fail += 1,
                OpStatus::Info => counts.info += 1,
            }
        }
        counts
    }
}

/// Operations per outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Completed and took effect.
    pub ok: usize,
    /// Definitely did not take effect.
    pub fail: usize,
    /// Outcome unknown.
    pub info: usize,
}

/// When an operation stopped occupying its client, as far as the history
/// says: its completion, the `info` that gave up on it, or `None` when the
/// run ended (or crashed) first.
pub fn op_end(op: &Operation) -> Option<u64> {
    op.return_time.or(op.info_time)
}

//! The run store: one directory per run, holding everything needed to
//! understand it (history, nemesis log, node logs, results, report) and to
//! replay it (`config.toml`).
//!
//! Layout: `<root>/<test>/<YYYYmmddTHHMMSSZ>-<seed>/`, with `<root>/<test>/latest`
//! and `<root>/latest` pointing at the newest run.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use nemesis::NodeId;
use serde::Serialize;

use super::config::TestConfig;
use crate::check::Checked;

/// Creates a fresh run directory for `config` under `root`.
pub fn create_run_dir(root: &Path, config: &TestConfig) -> Result<PathBuf> {
    let stamp = run_stamp();
    let base = root.join(&config.name);
    let mut dir = base.join(format!("{stamp}-{}", config.seed));
    // Two runs of one seed within a second (e.g. --test-count with a
    // repeated seed) get suffixes rather than sharing a directory.
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}-{}-{n}", config.seed));
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Now as `YYYYmmddTHHMMSSZ`: run directory names start with it, so they
/// sort by time.
pub fn run_stamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

/// Points `<root>/<test>/latest` and `<root>/latest` at `run_dir`.
pub fn update_latest(root: &Path, run_dir: &Path) -> Result<()> {
    let test_dir = run_dir.parent().context("a run directory has a parent")?;
    let run_name = run_dir.file_name().context("a run directory has a name")?;
    let test_name = test_dir
        .file_name()
        .context("a test directory has a name")?;
    replace_symlink(&test_dir.join("latest"), Path::new(run_name))?;
    replace_symlink(&root.join("latest"), &Path::new(test_name).join(run_name))
}

/// Makes `link` point at `target` (relative), replacing any old link
/// atomically so a reader never finds it missing.
pub fn replace_symlink(link: &Path, target: &Path) -> Result<()> {
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create the symlink {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("cannot replace {}", link.display()))
}

/// Writes `config.toml`.
pub fn write_config(dir: &Path, config: &TestConfig) -> Result<()> {
    let text = toml::to_string(config).context("cannot serialize the configuration")?;
    let header = "# faultline test configuration: `faultline replay` re-runs it.\n";
    fs::write(dir.join("config.toml"), format!("{header}{text}"))
        .with_context(|| format!("cannot write {}", dir.join("config.toml").display()))
}

/// Reads a stored run's `config.toml`.
pub fn read_config(dir: &Path) -> Result<TestConfig> {
    let path = dir.join("config.toml");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("bad run configuration in {}", path.display()))
}

/// One line of `nemesis.jsonl`.
#[derive(Debug, Serialize)]
struct NemesisEvent<'a> {
    time: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    fault: &'a str,
    id: u64,
    nodes: &'a [NodeId],
    description: &'a str,
}

/// Appends fault starts and ends to `nemesis.jsonl`, timed on the same
/// clock as the history.
pub struct NemesisLog {
    out: Mutex<File>,
    epoch: Instant,
}

impl NemesisLog {
    /// Creates `nemesis.jsonl` in `dir`; times count from `epoch`.
    pub fn create(dir: &Path, epoch: Instant) -> Result<NemesisLog> {
        let path = dir.join("nemesis.jsonl");
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(NemesisLog {
            out: Mutex::new(out),
            epoch,
        })
    }

    /// Records that fault `id` started (`start`) or ended (`end`).
    pub fn record(
        &self,
        kind: &'static str,
        fault: &str,
        id: u64,
        nodes: &[NodeId],
        description: &str,
    ) -> Result<()> {
        let event = NemesisEvent {
            time: u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX),
            kind,
            fault,
            id,
            nodes,
            description,
        };
        let mut line = serde_json::to_vec(&event)?;
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(&line).context("cannot write nemesis.jsonl")
    }
}

/// Operation outcome counts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Acknowledged.
    pub ok: u64,
    /// Certainly not applied.
    pub fail: u64,
    /// Outcome unknown.
    pub info: u64,
}

/// `results.json`: the run's verdict and facts, for machines.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    /// Test name.
    pub test: &'a str,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    /// 0 valid, 1 invalid, 2 unknown or error.
    pub exit_code: u8,
    /// Why the run is unknown or failed, if it is.
    pub error: Option<String>,
    /// The run's seed.
    pub seed: u64,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Whole run, start to verdict.
    pub duration_ms: u64,
    /// Network backend.
    pub net: &'static str,
    /// Group size.
    pub nodes: u64,
    /// Client workers.
    pub concurrency: usize,
    /// Workload name.
    pub workload: &'static str,
    /// Fault kinds.
    pub nemesis: Vec<&'static str>,
    /// Outcomes of client operations (final reads included).
    pub counts: Counts,
    /// Acknowledged operations per second of the client phase.
    pub rate_ok_per_s: f64,
    /// Whether every node came back and answered the final reads.
    pub recovered: bool,
    /// The checker's report (as `faultline check --json` prints it).
    pub checker: Option<serde_json::Value>,
    /// The counterexample page, relative to the run directory.
    pub timeline: Option<String>,
}

/// The verdict word of a check exit code.
pub fn verdict_name(exit_code: u8) -> &'static str {
    match exit_code {
        0 => "valid",
        1 => "invalid",
        _ => "unknown",
    }
}

/// Writes `results.json`.
pub fn write_results(dir: &Path, results: &Results<'_>) -> Result<()> {
    let mut body = serde_json::to_vec_pretty(results)?;
    body.push(b'\n');
    let path = dir.join("results.json");
    fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))
}

/// Puts a re-check's verdict into the `results.json` of a run written by
/// `faultline test`, keeping the run's other facts. Returns `false` when
/// `dir` holds no such file (e.g. an imported history), so the caller can
/// write a plain check report instead.
pub fn update_verdict(dir: &Path, checked: &Checked) -> Result<bool> {
    let path = dir.join("results.json");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(false);
    };
    let Ok(serde_json::Value::Object(mut results)) = serde_json::from_str(&text) else {
        return Ok(false);
    };
    if !results.contains_key("test") {
        return Ok(false);
    }
    let run_failed = results.get("error").is_some_and(|e| !e.is_null());
    let exit_code = if run_failed && checked.exit_code == 0 {
        2
    } else {
        checked.exit_code
    };
    results.insert("verdict".into(), verdict_name(exit_code).into());
    results.insert("exit_code".into(), exit_code.into());
    results.insert("checker".into(), checked.report.clone());
    results.insert(
        "timeline".into(),
        relative_name(dir, checked.visualization.as_deref()).into(),
    );
    let mut body = serde_json::to_vec_pretty(&serde_json::Value::Object(results))?;
    body.push(b'\n');
    fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// `path` relative to `dir` when inside it.
pub fn relative_name(dir: &Path, path: Option<&Path>) -> Option<String> {
    path.map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
}

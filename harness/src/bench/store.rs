//! Where a bench lands: `<store>/bench/<YYYYmmddTHHMMSSZ>-<label>/` beside
//! the test runs, with `bench.json`, `bench.html` and each run's node logs
//! and data, and `<store>/bench/latest` pointing at the newest finished
//! bench. `<store>/latest` is left to test runs, which `faultline replay`
//! and `check` expect there.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::figures::BenchReport;
use super::page;
use crate::report::write_atomically;
use crate::test::store::{replace_symlink, run_stamp};

/// The machine-readable result inside a bench directory.
pub const JSON_FILE: &str = "bench.json";
/// The page inside a bench directory.
pub const HTML_FILE: &str = "bench.html";

/// Creates a fresh directory for a bench labelled `label` under `root`.
pub fn create_dir(root: &Path, label: &str) -> Result<PathBuf> {
    let base = root.join("bench");
    let stamp = run_stamp();
    let mut dir = base.join(format!("{stamp}-{label}"));
    // Two benches of one label within a second get suffixes.
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}-{label}-{n}"));
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Writes `bench.json` and `bench.html` into `dir` and points
/// `bench/latest` at it; returns the page's path.
pub fn write(dir: &Path, report: &BenchReport) -> Result<PathBuf> {
    let mut json = serde_json::to_vec_pretty(report).context("cannot serialize bench.json")?;
    json.push(b'\n');
    write_atomically(&dir.join(JSON_FILE), &json)?;
    let page = page::render(report)?;
    let html = dir.join(HTML_FILE);
    write_atomically(&html, page.as_bytes())?;
    let name = dir.file_name().context("a bench directory has a name")?;
    let bench_root = dir.parent().context("a bench directory has a parent")?;
    replace_symlink(&bench_root.join("latest"), Path::new(name))?;
    Ok(html)
}

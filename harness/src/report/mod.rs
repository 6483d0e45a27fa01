//! The report of a `faultline test` run: `report.html` in the run store.
//!
//! The page is what a person opens after a run, so it has to answer, in
//! order: did the run pass (the verdict, with the checker's counterexample
//! when it did not), what happened to the clients (a timeline of every
//! operation per client), what the faults did to them (latency and
//! throughput over time, fault windows shaded on every chart), and how to
//! run it again (the configuration, verbatim). These are the pictures Jepsen
//! users know, drawn here with `plotters` as SVG.
//!
//! The page opens from disk with no server and no network: the CSS and the
//! SVG charts are inlined (the charts are also written beside it as
//! `timeline.svg`, `latency.svg` and `throughput.svg` for use elsewhere).
//! It is built from the store's files alone ([`load`]), so it can be
//! redrawn for any stored run, and it tolerates a run that crashed: missing
//! files and a torn last history line become notes at the top of the page,
//! never a missing report. Every chart is bounded in size by its pixels, not
//! by the length of the run.

pub(crate) mod chart;
mod faults;
mod html;
mod latency;
mod load;
pub(crate) mod results;
mod throughput;
mod timeline;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use self::load::RunStore;

/// The file name of the report inside the run store.
pub const REPORT_FILE: &str = "report.html";

/// Draws the report of the run stored at `store_dir` and writes it there as
/// `report.html` (with the charts beside it); returns the report's path.
///
/// Only failing to write is an error: whatever is missing or damaged in the
/// store is described on the page instead.
pub fn write_report(store_dir: &Path) -> Result<PathBuf> {
    if !store_dir.is_dir() {
        anyhow::bail!("{} is not a run store directory", store_dir.display());
    }
    let store = RunStore::load(store_dir);
    let charts = html::Charts::draw(&store)?;
    for (name, svg) in charts.files() {
        write_atomically(&store_dir.join(name), svg.as_bytes())?;
    }
    let page = html::render(store_dir, &store, &charts)?;
    let path = store_dir.join(REPORT_FILE);
    write_atomically(&path, page.as_bytes())?;
    tracing::info!(report = %path.display(), bytes = page.len(), "wrote the run report");
    Ok(path)
}

/// Writes `bytes` to `path` through a temporary file, so a reader never
/// sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! The pages: the index of the store and the page of one run, put through
//! the minijinja templates in `templates/`.
//!
//! Everything shown is formatted here so the templates only lay it out.
//! The templates' names end in `.html`, so minijinja escapes every value:
//! test names, errors and checker output are text, never markup. Links are
//! built from percent-encoded folder names.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::report::REPORT_FILE;

use super::scan::{BENCH_DIR, BENCH_HTML, BENCH_JSON, RunEntry, RunFile, Status, StoreIndex};

const TEMPLATES: [(&str, &str); 3] = [
    ("base.html", include_str!("templates/base.html")),
    ("index.html", include_str!("templates/index.html")),
    ("run.html", include_str!("templates/run.html")),
];

/// The templates, parsed once at startup.
pub struct Pages {
    env: Environment<'static>,
}

/// Which runs the index shows, from its query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Only runs with this status.
    pub status: Option<Status>,
    /// Only runs whose test name contains this.
    pub test: Option<String>,
}

impl Filter {
    /// Whether `run` passes the filter.
    fn admits(&self, run: &RunEntry) -> bool {
        self.status.is_none_or(|s| run.status() == s)
            && self.test.as_deref().is_none_or(|t| run.test.contains(t))
    }
}

/// A run's page: what it is, and where it lies.
pub struct RunView<'a> {
    /// The run.
    pub entry: &'a RunEntry,
    /// Its files.
    pub files: &'a [RunFile],
    /// The counterexample page (relative to the run), checked to be a file
    /// inside the store.
    pub counterexample: Option<&'a str>,
    /// The run's folder as a command line should name it.
    pub dir: &'a Path,
}

impl Pages {
    /// Parses the templates.
    pub fn new() -> Result<Pages> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .with_context(|| format!("the template {name} does not parse"))?;
        }
        Ok(Pages { env })
    }

    /// The index of `index` (the store at `store`), filtered.
    pub fn index(&self, store: &Path, index: &StoreIndex, filter: &Filter) -> Result<String> {
        let tallies = Status::ALL
            .iter()
            .map(|&s| Tally {
                name: s.name(),
                count: index.runs.iter().filter(|r| r.status() == s).count(),
            })
            .collect();
        let page = IndexPage {
            store: store.display().to_string(),
            total: index.runs.len(),
            tallies,
            statuses: Status::ALL.iter().map(|s| s.name()).collect(),
            filter_status: filter.status.map_or("", Status::name),
            filter_test: filter.test.clone().unwrap_or_default(),
            filtered: filter != &Filter::default(),
            runs: index
                .runs
                .iter()
                .filter(|r| filter.admits(r))
                .map(RunRow::from)
                .collect(),
            benches: index
                .benches
                .iter()
                .map(|b| {
                    let (summary, reason) = split(b.summary.clone());
                    BenchRow {
                        started: b.started().unwrap_or_else(|| "unknown".to_string()),
                        dir: b.dir.clone(),
                        summary,
                        reason,
                        page_url: b
                            .has_page
                            .then(|| store_url(&[BENCH_DIR, &b.dir, BENCH_HTML])),
                        json_url: store_url(&[BENCH_DIR, &b.dir, BENCH_JSON]),
                    }
                })
                .collect(),
            problems: index.problems.clone(),
        };
        self.render("index.html", &page)
    }

    /// The page of one run.
    pub fn run(&self, view: &RunView<'_>) -> Result<String> {
        let run = view.entry;
        let results = run.results.as_ref().ok();
        let unknown = || "unknown".to_string();
        let text = |v: Option<String>| v.unwrap_or_else(unknown);
        let number = |v: Option<u64>| v.map_or_else(unknown, |n| n.to_string());
        let config = run.config.as_ref().ok();
        let facts = vec![
            Fact::new("test", run.test.clone()),
            Fact::new("seed", number(run.seed())),
            Fact::new("started", text(run.started())),
            Fact::new("duration", run.duration_ms().map_or_else(unknown, duration)),
            Fact::new(
                "nodes",
                number(results.and_then(|r| r.nodes).or(config.map(|c| c.nodes))),
            ),
            Fact::new(
                "concurrency",
                number(
                    results
                        .and_then(|r| r.concurrency)
                        .or(config.map(|c| c.concurrency as u64)),
                ),
            ),
            Fact::new(
                "workload",
                text(
                    results
                        .and_then(|r| r.workload.clone())
                        .or(config.map(|c| c.workload.name().to_string())),
                ),
            ),
            Fact::new("nemesis", nemesis(run)),
            Fact::new(
                "network",
                text(
                    results
                        .and_then(|r| r.net.clone())
                        .or(config.map(|c| c.net.name().to_string())),
                ),
            ),
            Fact::new(
                "cluster recovered",
                results
                    .and_then(|r| r.recovered)
                    .map_or_else(unknown, |ok| if ok { "yes" } else { "no" }.to_string()),
            ),
        ];
        let run_segments = [run.test.as_str(), run.dir.as_str()];
        let file_url = |path: &str| {
            let mut segments: Vec<&str> = run_segments.to_vec();
            segments.extend(path.split('/'));
            store_url(&segments)
        };
        let files = view
            .files
            .iter()
            .map(|f| FileRow {
                url: f.bytes.is_some().then(|| file_url(&f.path)),
                size: f.bytes.map_or_else(|| "missing".to_string(), size),
                name: f.path.clone(),
                what: f.what,
            })
            .collect();
        let dir = shell_word(&view.dir.display().to_string());
        let status = run.status();
        let page = RunPage {
            title: format!("{} / {}", run.test, run.dir),
            verdict: status.name(),
            verdict_sub: match status {
                Status::Valid => "linearizable",
                Status::Invalid => "not linearizable",
                Status::Unknown => "no verdict",
                Status::Incomplete => "no results yet",
            },
            reason: run.results.as_ref().err().cloned(),
            error: results.and_then(|r| r.error.clone()),
            config_problem: run.config.as_ref().err().cloned(),
            facts,
            counts: run.counts.map(|c| CountsRow {
                ok: c.ok,
                fail: c.fail,
                info: c.info,
            }),
            ops_per_s: results
                .and_then(|r| r.rate_ok_per_s)
                .map(|rate| format!("{rate:.1}")),
            report_url: run.has_report.then(|| file_url(REPORT_FILE)),
            counterexample_url: view.counterexample.map(file_url),
            checker_summary: results.and_then(|r| r.checker_summary()),
            files,
            replay: format!("faultline replay {dir}"),
            check: format!("faultline check {dir}"),
        };
        self.render("run.html", &page)
    }

    fn render<T: Serialize>(&self, name: &str, page: &T) -> Result<String> {
        self.env
            .get_template(name)?
            .render(context!(page => Value::from(Serde(page))))
            .with_context(|| format!("cannot render {name}"))
    }
}

/// The count of runs with one status.
#[derive(Serialize)]
struct Tally {
    name: &'static str,
    count: usize,
}

/// Everything the index template shows.
#[derive(Serialize)]
struct IndexPage {
    store: String,
    total: usize,
    tallies: Vec<Tally>,
    statuses: Vec<&'static str>,
    filter_status: &'static str,
    filter_test: String,
    filtered: bool,
    runs: Vec<RunRow>,
    benches: Vec<BenchRow>,
    problems: Vec<String>,
}

/// One line of the runs table.
#[derive(Serialize)]
struct RunRow {
    test: String,
    dir: String,
    url: String,
    report_url: Option<String>,
    verdict: &'static str,
    reason: Option<String>,
    started: String,
    seed: String,
    counts: Option<CountsRow>,
    nemesis: String,
    duration: String,
}

impl From<&RunEntry> for RunRow {
    fn from(run: &RunEntry) -> RunRow {
        RunRow {
            url: run_url(&run.test, &run.dir),
            report_url: run
                .has_report
                .then(|| store_url(&[&run.test, &run.dir, REPORT_FILE])),
            verdict: run.status().name(),
            reason: run.results.as_ref().err().cloned(),
            started: run.started().unwrap_or_else(|| "unknown".to_string()),
            seed: run
                .seed()
                .map_or_else(|| "?".to_string(), |s| s.to_string()),
            counts: run.counts.map(|c| CountsRow {
                ok: c.ok,
                fail: c.fail,
                info: c.info,
            }),
            nemesis: nemesis(run),
            duration: run.duration_ms().map_or_else(|| "–".to_string(), duration),
            test: run.test.clone(),
            dir: run.dir.clone(),
        }
    }
}

/// Operation counts, for a template.
#[derive(Serialize)]
struct CountsRow {
    ok: u64,
    fail: u64,
    info: u64,
}

/// One line of the bench table.
#[derive(Serialize)]
struct BenchRow {
    dir: String,
    started: String,
    summary: Option<String>,
    reason: Option<String>,
    page_url: Option<String>,
    json_url: String,
}

/// One fact of a run page's header.
#[derive(Serialize)]
struct Fact {
    name: &'static str,
    value: String,
}

impl Fact {
    fn new(name: &'static str, value: String) -> Fact {
        Fact { name, value }
    }
}

/// One line of a run page's file table.
#[derive(Serialize)]
struct FileRow {
    name: String,
    url: Option<String>,
    size: String,
    what: &'static str,
}

/// Everything the run template shows.
#[derive(Serialize)]
struct RunPage {
    title: String,
    verdict: &'static str,
    verdict_sub: &'static str,
    reason: Option<String>,
    error: Option<String>,
    config_problem: Option<String>,
    facts: Vec<Fact>,
    counts: Option<CountsRow>,
    ops_per_s: Option<String>,
    report_url: Option<String>,
    counterexample_url: Option<String>,
    checker_summary: Option<String>,
    files: Vec<FileRow>,
    replay: String,
    check: String,
}

/// The fault kinds of a run and the number scheduled, in words.
fn nemesis(run: &RunEntry) -> String {
    let kinds = match run.nemesis() {
        Some(kinds) if kinds.is_empty() => "none".to_string(),
        Some(kinds) => kinds.join(", "),
        None => "unknown".to_string(),
    };
    match run.scheduled_faults() {
        Some(1) => format!("{kinds} (1 fault)"),
        Some(n) => format!("{kinds} ({n} faults)"),
        None => kinds,
    }
}

/// `Ok` as the first, `Err` as the second.
fn split(result: Result<String, String>) -> (Option<String>, Option<String>) {
    match result {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

/// The page of run `<test>/<dir>`.
pub fn run_url(test: &str, dir: &str) -> String {
    format!("/run/{}/{}/", encode_segment(test), encode_segment(dir))
}

/// The URL of the store file named by `segments`.
pub fn store_url(segments: &[&str]) -> String {
    let mut url = "/store".to_string();
    for s in segments {
        url.push('/');
        url.push_str(&encode_segment(s));
    }
    url
}

/// `segment` percent-encoded for a URL path: only unreserved characters
/// (and `+`, common in test names) stay as they are.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./+=:,@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A byte count for people.
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

/// A run's length for people: seconds up to ten minutes, as runs are
/// usually set in seconds.
fn duration(ms: u64) -> String {
    if ms < 600_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{} min {} s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_encoded_in_links() {
        assert_eq!(
            run_url("kv-append-partition+kill", "20261123T112835Z-7"),
            "/run/kv-append-partition+kill/20261123T112835Z-7/"
        );
        assert_eq!(
            store_url(&["a b", "x?#%", "é"]),
            "/store/a%20b/x%3F%23%25/%C3%A9"
        );
    }

    #[test]
    fn command_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/srv/store/t/1"), "/srv/store/t/1");
        assert_eq!(shell_word("/srv/my store/it's"), r"'/srv/my store/it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(7_900), "7.7 KiB");
        assert_eq!(size(1_354_860), "1.3 MiB");
        assert_eq!(duration(60_474), "60.5 s");
        assert_eq!(duration(754_000), "12 min 34 s");
        assert_eq!(duration(15_000), "15.0 s");
    }
}

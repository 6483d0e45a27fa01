//! `faultline check`: is a recorded history linearizable?
//!
//! The subcommand is a thin shell around the `checker` crate:
//!
//! 1. **Locate and read** the history ([`input`]): a history file in JSONL,
//!    Jepsen EDN or Jepsen's old text log (Porcupine's test data), or a
//!    run-store directory holding `history.jsonl`. Broken files are refused
//!    with the line and the reason.
//! 2. **Check** it against a model under a time and a memory budget; a budget
//!    that runs out gives `unknown`, never a guess.
//! 3. **Report** ([`text`] for people, [`json`] for machines) and, when the
//!    history is not linearizable, draw the failing part as a self-contained
//!    HTML timeline ([`timeline`]) beside the history.
//!
//! The exit code is Jepsen's: 0 linearizable, 1 not linearizable, 2 unknown
//! or error.

mod input;
mod json;
mod size;
mod text;
mod timeline;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use checker::{CheckOptions, CheckResult, Verdict, check_with_model};
use clap::{Args, ValueEnum};

use self::input::{HistoryFormat, HistoryInput};
use self::json::CheckReport;

/// Arguments of `faultline check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A history file (JSONL, Jepsen EDN, or a Jepsen text log), or a run-store
    /// directory containing `history.jsonl`.
    pub path: PathBuf,
    /// The sequential specification the history is checked against.
    #[arg(long, value_enum, default_value_t = ModelName::Kv)]
    pub model: ModelName,
    /// The history's format; `auto` goes by the file extension, then by the
    /// first characters of the file.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Auto)]
    pub format: HistoryFormat,
    /// Wall-time budget for the search (e.g. `60s`, `5m`); when it runs out
    /// the verdict is `unknown`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub time_limit: Duration,
    /// Memory budget for the search (e.g. `512MiB`, `2GiB`); when it runs
    /// out the verdict is `unknown`.
    #[arg(long, default_value = "2GiB", value_parser = size::parse_byte_size)]
    pub memory_limit: u64,
    /// Worker threads checking independent keys in parallel; 0 means one per
    /// core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to write the visualization (and `results.json` for a run-store
    /// directory); by default beside the history.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Drop a torn last line of a JSONL history (left by a harness that
    /// crashed mid-write) instead of refusing the file.
    #[arg(long)]
    pub allow_torn_tail: bool,
}

/// The built-in models `check` offers, as the checker names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    /// get/put/append per key (kvd's workload).
    Kv,
    /// One read/write/cas register per key.
    Register,
    /// A grow-only set: add/read.
    Set,
    /// A counter: add/read.
    Counter,
}

impl ModelName {
    /// The name `checker::check_with_model` knows it by.
    fn as_str(self) -> &'static str {
        match self {
            ModelName::Kv => "kv",
            ModelName::Register => "register",
            ModelName::Set => "set",
            ModelName::Counter => "counter",
        }
    }
}

/// Exit codes, following Jepsen.
const EXIT_LINEARIZABLE: u8 = 0;
const EXIT_NOT_LINEARIZABLE: u8 = 1;
const EXIT_UNKNOWN: u8 = 2;

/// One finished check: what `faultline check` prints and what `faultline
/// test` stores.
pub struct Checked {
    /// The machine-readable result (`--json`, and `checker` in a run
    /// store's `results.json`).
    pub report: serde_json::Value,
    /// The human summary.
    pub text: String,
    /// Jepsen's exit code for the verdict.
    pub exit_code: u8,
    /// The counterexample page, when one was written.
    pub visualization: Option<PathBuf>,
}

/// Runs `faultline check`; the exit code says the verdict.
pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let checked = check(&args)?;
    if checked.is_run_store {
        store_results(args.out.as_deref().unwrap_or(&args.path), &checked.outcome);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checked.outcome.report)
                .context("cannot serialize the result")?
        );
    } else {
        print!("{}", checked.outcome.text);
    }
    Ok(ExitCode::from(checked.outcome.exit_code))
}

/// A check of a path, and whether the path was a run store.
struct CheckedPath {
    outcome: Checked,
    is_run_store: bool,
}

/// Writes a re-check of a run store into its `results.json`: a store written
/// by `faultline test` keeps its run facts and gets the new verdict; any other
/// directory gets the check report alone.
fn store_results(dir: &Path, outcome: &Checked) {
    let path = dir.join("results.json");
    let result = match crate::test::store::update_verdict(dir, outcome) {
        Ok(true) => Ok(()),
        Ok(false) => write_results(&path, &outcome.report),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!(
            "faultline: warning: could not write {}: {e:#}",
            path.display()
        );
    }
}

/// Checks the history `args` names, writing the counterexample page when
/// there is one.
fn check(args: &CheckArgs) -> Result<CheckedPath> {
    let input = HistoryInput::locate(&args.path, args.format)?;
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => input.beside(),
    };
    let outcome = check_input(
        &input,
        args.model.as_str(),
        args.time_limit,
        args.memory_limit,
        args.threads,
        args.allow_torn_tail,
        &out_dir,
    )?;
    Ok(CheckedPath {
        outcome,
        is_run_store: input.is_run_store,
    })
}

/// Checks the history of a run store directory with the kv model.
pub fn check_store(dir: &Path, time_limit: Duration) -> Result<Checked> {
    let input = HistoryInput::locate(dir, HistoryFormat::Auto)?;
    check_input(&input, "kv", time_limit, DEFAULT_MEMORY_LIMIT, 0, true, dir)
}

/// The memory budget of a check when none is given (2 GiB).
const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

fn check_input(
    input: &HistoryInput,
    model: &str,
    time_limit: Duration,
    memory_limit: u64,
    threads: usize,
    allow_torn_tail: bool,
    out_dir: &Path,
) -> Result<Checked> {
    if Instant::now().checked_add(time_limit).is_none() {
        anyhow::bail!(
            "--time-limit {} is too large",
            humantime::format_duration(time_limit)
        );
    }
    let read_started = Instant::now();
    let history = input.read(allow_torn_tail)?;
    let ops = history
        .operations()
        .with_context(|| format!("cannot pair the operations of {}", input.path.display()))?;
    tracing::info!(
        events = history.events.len(),
        ops = ops.len(),
        elapsed_ms = read_started.elapsed().as_secs_f64() * 1e3,
        "history read"
    );

    let options = CheckOptions {
        time_budget: Some(time_limit),
        memory_budget: Some(usize::try_from(memory_limit).unwrap_or(usize::MAX)),
        threads,
        partition: true,
    };
    let result = check_with_model(model, &ops, &options).map_err(|e| {
        let hint = match e {
            checker::CheckError::Decode { .. } => format!(
                " (checked with the `{model}` model; choose another with --model {})",
                checker::MODEL_NAMES.join("|")
            ),
            _ => String::new(),
        };
        anyhow::Error::new(e).context(format!("cannot check {}{hint}", input.path.display()))
    })?;

    let visualization = match &result.counterexample {
        Some(cx) => match write_visualization(out_dir, input, model, &result, cx) {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!("faultline: warning: could not write the visualization: {e:#}");
                None
            }
        },
        None => None,
    };

    let report = CheckReport::new(
        input,
        model,
        &options,
        &history,
        &result,
        visualization.as_deref(),
    );
    Ok(Checked {
        report: serde_json::to_value(&report).context("cannot serialize the result")?,
        text: text::render(input, model, &history, &result, visualization.as_deref()),
        exit_code: exit_code(&result.verdict),
        visualization,
    })
}

/// Jepsen's exit code for a verdict.
fn exit_code(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Linearizable => EXIT_LINEARIZABLE,
        Verdict::NotLinearizable => EXIT_NOT_LINEARIZABLE,
        Verdict::Unknown { .. } => EXIT_UNKNOWN,
    }
}

/// Renders the counterexample to `<out>/<history-stem>.linearizability.html`.
fn write_visualization(
    out_dir: &Path,
    input: &HistoryInput,
    model: &str,
    result: &CheckResult,
    counterexample: &checker::Counterexample,
) -> Result<PathBuf> {
    let started = Instant::now();
    let html = timeline::render(&timeline::PageContext {
        history: &input.path,
        model,
        result,
        counterexample,
    })?;
    fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let path = out_dir.join(format!("{}.linearizability.html", input.stem()));
    fs::write(&path, &html).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(
        path = %path.display(),
        bytes = html.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "visualization written"
    );
    Ok(path)
}

/// Writes the machine-readable result into a run store.
fn write_results(path: &Path, report: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut body = serde_json::to_vec_pretty(report)?;
    body.push(b'\n');
    fs::write(path, body)?;
    Ok(())
}

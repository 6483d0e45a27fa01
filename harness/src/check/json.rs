//! The machine-readable result: what `--json` prints and what a run store's
//! `results.json` holds.

use std::path::Path;

use checker::{
    CheckOptions, CheckResult, CheckStats, Counterexample, PartResult, UnknownReason, Verdict,
};
use histories::History;
use serde::Serialize;

use super::exit_code;
use super::input::HistoryInput;

/// One check, flattened for scripts: a plain verdict string plus the
/// checker's own detail.
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    /// The history file checked.
    pub history: String,
    /// Its format.
    pub format: &'static str,
    /// The model it was checked against.
    pub model: &'a str,
    /// `linearizable`, `not_linearizable` or `unknown`.
    pub verdict: &'static str,
    /// Why the verdict is unknown, when it is.
    pub unknown_reason: Option<UnknownReason>,
    /// The process exit code (0, 1 or 2).
    pub exit_code: u8,
    /// The budgets the check ran under.
    pub limits: Limits,
    /// Line number of a torn last line that was dropped, if any.
    pub dropped_torn_line: Option<usize>,
    /// Path of the HTML visualization, when one was written.
    pub visualization: Option<String>,
    /// Totals.
    pub stats: &'a CheckStats,
    /// One entry per independent part (key).
    pub parts: &'a [PartResult],
    /// Why the history is not linearizable, when it is not.
    pub counterexample: Option<&'a Counterexample>,
}

/// The budgets of a check, as given.
#[derive(Debug, Serialize)]
pub struct Limits {
    /// Wall-time budget, in milliseconds.
    pub time_limit_ms: Option<u128>,
    /// Memory budget, in bytes.
    pub memory_limit_bytes: Option<usize>,
    /// Worker threads asked for (0: one per core).
    pub threads: usize,
}

impl<'a> CheckReport<'a> {
    /// Assembles the report of one check.
    pub fn new(
        input: &HistoryInput,
        model: &'a str,
        options: &CheckOptions,
        history: &History,
        result: &'a CheckResult,
        visualization: Option<&Path>,
    ) -> Self {
        let (verdict, unknown_reason) = match &result.verdict {
            Verdict::Linearizable => ("linearizable", None),
            Verdict::NotLinearizable => ("not_linearizable", None),
            Verdict::Unknown { reason } => ("unknown", Some(*reason)),
        };
        CheckReport {
            history: input.path.display().to_string(),
            format: input.format.name(),
            model,
            verdict,
            unknown_reason,
            exit_code: exit_code(&result.verdict),
            limits: Limits {
                time_limit_ms: options.time_budget.map(|d| d.as_millis()),
                memory_limit_bytes: options.memory_budget,
                threads: options.threads,
            },
            dropped_torn_line: history.dropped_torn_line,
            visualization: visualization.map(|p| p.display().to_string()),
            stats: &result.stats,
            parts: &result.parts,
            counterexample: result.counterexample.as_ref(),
        }
    }
}

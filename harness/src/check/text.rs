//! The human-readable summary `faultline check` prints.
//!
//! Long lists are cut so a terminal stays readable; `--json` and the HTML
//! page always carry everything.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use checker::{
    CheckResult, Counterexample, CounterexampleOp, PartOutcome, PartResult, UnknownReason, Verdict,
};
use histories::{History, OpStatus};
use serde_json::Value;

use super::input::HistoryInput;

/// Parts listed one by one when there are this many or fewer.
const ALL_PARTS_UP_TO: usize = 10;
/// Otherwise, how many of the slowest parts are listed.
const SLOWEST_PARTS: usize = 5;
/// Steps of the longest prefix printed (the last ones, nearest the failure).
const PREFIX_STEPS: usize = 15;
/// Candidates printed.
const CANDIDATES: usize = 20;

/// How a key is shown everywhere: its JSON form, or a note for
/// single-object histories.
pub fn key_label(key: Option<&Value>) -> String {
    match key {
        Some(k) => k.to_string(),
        None => "(single object)".to_string(),
    }
}

/// Nanoseconds in the largest unit that keeps them readable.
pub fn format_nanos(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns_f / 1e6)
    } else {
        format!("{:.2} s", ns_f / 1e9)
    }
}

/// Milliseconds, compactly.
fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 1_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// Renders the whole summary.
pub fn render(
    input: &HistoryInput,
    model: &str,
    history: &History,
    result: &CheckResult,
    visualization: Option<&Path>,
) -> String {
    let mut out = String::new();
    let stats = &result.stats;
    let _ = writeln!(
        out,
        "history   {} ({}, {} events)",
        input.path.display(),
        input.format.name(),
        history.events.len()
    );
    if let Some(line) = history.dropped_torn_line {
        let _ = writeln!(
            out,
            "          dropped the torn last line {line} (the writer crashed mid-line)"
        );
    }
    let _ = writeln!(out, "model     {model}");
    let verdict = match &result.verdict {
        Verdict::Linearizable => "LINEARIZABLE".to_string(),
        Verdict::NotLinearizable => "NOT LINEARIZABLE".to_string(),
        Verdict::Unknown { reason } => format!("UNKNOWN ({})", budget_name(*reason)),
    };
    let _ = writeln!(out, "verdict   {verdict}");
    let _ = writeln!(
        out,
        "checked   {} operations in {} part{} on {} thread{} in {}",
        stats.ops,
        stats.parts,
        plural(stats.parts as u64),
        stats.threads,
        plural(stats.threads as u64),
        format_ms(stats.elapsed_ms),
    );
    let _ = writeln!(
        out,
        "search    {} configuration{}, {} memo hit{}, {} read{} linearized without a choice, peak memory {}",
        stats.nodes,
        plural(stats.nodes),
        stats.memo_hits,
        plural(stats.memo_hits),
        stats.forced,
        plural(stats.forced),
        format_bytes(stats.peak_memory_bytes),
    );
    render_parts(&mut out, &result.parts);
    if let Verdict::Unknown { reason } = &result.verdict {
        let flag = match reason {
            UnknownReason::TimeBudget => "--time-limit",
            UnknownReason::MemoryBudget => "--memory-limit",
        };
        let _ = writeln!(
            out,
            "\nThe {} ran out before every part was decided; the verdict is unknown, not a guess. Raise {flag} to finish.",
            budget_name(*reason)
        );
    }
    if let Some(cx) = &result.counterexample {
        out.push('\n');
        render_counterexample(&mut out, cx);
    }
    if let Some(path) = visualization {
        let _ = writeln!(out, "\nvisualization: {}", path.display());
    }
    out
}

fn budget_name(reason: UnknownReason) -> &'static str {
    match reason {
        UnknownReason::TimeBudget => "time budget exhausted",
        UnknownReason::MemoryBudget => "memory budget exhausted",
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn format_bytes(bytes: usize) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes < 1 << 20 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

fn outcome_name(outcome: &PartOutcome) -> &'static str {
    match outcome {
        PartOutcome::Linearizable => "linearizable",
        PartOutcome::NotLinearizable => "NOT linearizable",
        PartOutcome::Unknown {
            reason: UnknownReason::TimeBudget,
        } => "unknown (time)",
        PartOutcome::Unknown {
            reason: UnknownReason::MemoryBudget,
        } => "unknown (memory)",
        PartOutcome::Skipped => "skipped",
    }
}

/// Counts of each outcome, then a table of the parts that matter.
fn render_parts(out: &mut String, parts: &[PartResult]) {
    if parts.is_empty() {
        return;
    }
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for part in parts {
        let name = outcome_name(&part.outcome);
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(name, c)| format!("{c} {name}"))
        .collect();
    let _ = writeln!(out, "parts     {}", summary.join(", "));

    let shown: Vec<&PartResult> = if parts.len() <= ALL_PARTS_UP_TO {
        parts.iter().collect()
    } else {
        // The parts that decided the verdict, then the slowest.
        let mut shown: Vec<&PartResult> = parts
            .iter()
            .filter(|p| !matches!(p.outcome, PartOutcome::Linearizable | PartOutcome::Skipped))
            .take(SLOWEST_PARTS)
            .collect();
        let mut by_time: Vec<&PartResult> = parts.iter().collect();
        by_time.sort_by(|a, b| b.elapsed_ms.total_cmp(&a.elapsed_ms));
        for part in by_time {
            if shown.len() >= 2 * SLOWEST_PARTS {
                break;
            }
            if !shown.iter().any(|s| std::ptr::eq(*s, part)) {
                shown.push(part);
            }
        }
        shown
    };
    let keys: Vec<String> = shown.iter().map(|p| key_label(p.key.as_ref())).collect();
    let width = keys
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 40);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>6}  {:<16}  {:>9}  {:>10}  {:>8}",
        "key", "ops", "outcome", "time", "configs", "states"
    );
    for (part, key) in shown.iter().zip(&keys) {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6}  {:<16}  {:>9}  {:>10}  {:>8}",
            truncate(key, 40),
            part.ops,
            outcome_name(&part.outcome),
            format_ms(part.elapsed_ms),
            part.stats.nodes,
            part.stats.states
        );
    }
    if shown.len() < parts.len() {
        let _ = writeln!(
            out,
            "  … {} more part{} (all in --json)",
            parts.len() - shown.len(),
            plural((parts.len() - shown.len()) as u64)
        );
    }
}

/// Cuts a string to `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The failing part: prefix, stuck state, candidates, blocking operation.
fn render_counterexample(out: &mut String, cx: &Counterexample) {
    let by_id: HashMap<usize, &CounterexampleOp> = cx.ops.iter().map(|o| (o.op.id, o)).collect();
    let failed = cx
        .ops
        .iter()
        .filter(|o| o.op.status == OpStatus::Fail)
        .count();
    let _ = write!(
        out,
        "failing part: key {}, {} operation{}",
        key_label(cx.key.as_ref()),
        cx.ops.len(),
        plural(cx.ops.len() as u64)
    );
    if failed > 0 {
        let _ = write!(out, " ({failed} failed, which never take effect)");
    }
    out.push('\n');
    let op_line = |id: usize| -> (String, String) {
        match by_id.get(&id) {
            Some(o) => (format!("p{}", o.op.process), truncate(&o.description, 48)),
            None => ("p?".to_string(), "?".to_string()),
        }
    };

    let steps = cx.longest_prefix.len();
    let _ = writeln!(
        out,
        "longest linearizable prefix: {steps} operation{}",
        plural(steps as u64)
    );
    let skip = steps.saturating_sub(PREFIX_STEPS);
    if skip == 0 {
        let _ = writeln!(
            out,
            "  {:>5}  initial state {}",
            "",
            truncate(&cx.initial_state, 60)
        );
    } else {
        let _ = writeln!(
            out,
            "  {:>5}  … {skip} earlier step{} (all in the visualization and --json)",
            "",
            plural(skip as u64)
        );
    }
    for (n, step) in cx.longest_prefix.iter().enumerate().skip(skip) {
        let (process, description) = op_line(step.op);
        let _ = writeln!(
            out,
            "  {:>5}  #{:<6} {:<6} {:<48}  => {}",
            n + 1,
            step.op,
            process,
            description,
            truncate(&step.state_after, 60)
        );
    }

    let _ = writeln!(
        out,
        "stuck in state {}; none of these can come next:",
        truncate(&cx.stuck_state, 60)
    );
    if cx.candidates.is_empty() {
        let _ = writeln!(out, "  (no operation is left to try)");
    }
    for candidate in cx.candidates.iter().take(CANDIDATES) {
        let (process, description) = op_line(candidate.op);
        let why = match &candidate.state_after {
            None => "impossible in this state".to_string(),
            Some(state) => format!("=> {}, but every continuation fails", truncate(state, 48)),
        };
        let _ = writeln!(
            out,
            "  {:>5}  #{:<6} {:<6} {:<48}  {why}",
            "", candidate.op, process, description
        );
    }
    if cx.candidates.len() > CANDIDATES {
        let _ = writeln!(
            out,
            "  {:>5}  … {} more",
            "",
            cx.candidates.len() - CANDIDATES
        );
    }
    if let Some(id) = cx.blocking_op {
        let (process, description) = op_line(id);
        let _ = writeln!(
            out,
            "operation #{id} {description} ({process}) completed, yet no order of the others lets it be placed before its completion"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_pick_a_readable_unit() {
        assert_eq!(format_nanos(999), "999 ns");
        assert_eq!(format_nanos(1_500), "1.5 µs");
        assert_eq!(format_nanos(2_500_000), "2.5 ms");
        assert_eq!(format_nanos(3_000_000_000), "3.00 s");
    }

    #[test]
    fn truncation_keeps_short_text_and_marks_cuts() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}

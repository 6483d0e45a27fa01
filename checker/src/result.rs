//! What a check returns: the verdict, per-part results, and a counterexample
//! complete enough to draw (the HTML timeline is built from it alone).

use std::fmt;

use histories::Operation;
use serde::Serialize;
use serde_json::Value;

/// The answer to "is this history linearizable?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every part has a linearization.
    Linearizable,
    /// Some part has none; see [`CheckResult::counterexample`].
    NotLinearizable,
    /// The check could not finish; never a guess either way.
    Unknown {
        /// Why it stopped.
        reason: UnknownReason,
    },
}

/// Why a verdict is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// The time budget ran out.
    TimeBudget,
    /// The memory budget ran out.
    MemoryBudget,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable => f.write_str("not linearizable"),
            Verdict::Unknown {
                reason: UnknownReason::TimeBudget,
            } => f.write_str("unknown (time budget exhausted)"),
            Verdict::Unknown {
                reason: UnknownReason::MemoryBudget,
            } => f.write_str("unknown (memory budget exhausted)"),
        }
    }
}

/// How one part ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PartOutcome {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable,
    /// Stopped by a budget.
    Unknown {
        /// Which budget.
        reason: UnknownReason,
    },
    /// Not checked (or stopped) because an earlier part already failed.
    Skipped,
}

/// Search counters of one part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartStats {
    /// Configurations explored.
    pub nodes: u64,
    /// Configurations skipped because they were already explored.
    pub memo_hits: u64,
    /// Dead ends backtracked from.
    pub backtracks: u64,
    /// Operations linearized by the read-only reduction (no choice point).
    pub forced: u64,
    /// Distinct model states reached.
    pub states: usize,
    /// Distinct operations (input and output) in the part.
    pub classes: usize,
    /// Ordering facts the model derived from observations (see
    /// [`crate::Model::hints`]).
    pub hint_edges: usize,
    /// Indeterminate operations the model showed could be ignored.
    pub dropped: usize,
}

/// The result for one independent part (one key, for keyed models).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartResult {
    /// The part's key; `None` for a single-object history or for the whole
    /// history when partitioning is off.
    pub key: Option<Value>,
    /// Operations checked (failed operations are not).
    pub ops: usize,
    /// How it ended.
    pub outcome: PartOutcome,
    /// Wall time spent on it, in milliseconds.
    pub elapsed_ms: f64,
    /// Search counters.
    pub stats: PartStats,
}

/// One operation of the failing part, as the counterexample shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CounterexampleOp {
    /// The operation: process, times (invoke and return; `None` return for
    /// indeterminate), status, input and output.
    pub op: Operation,
    /// The model's rendering, e.g. `append("x") -> ok`.
    pub description: String,
}

/// One step of the longest linearization found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinearizedStep {
    /// [`Operation::id`] of the operation placed.
    pub op: usize,
    /// The model state after it.
    pub state_after: String,
}

/// An operation that could come next where the search got stuck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// [`Operation::id`].
    pub op: usize,
    /// The state it would lead to, or `None` when the model rejects it in
    /// the stuck state (what it observed is impossible there).
    pub state_after: Option<String>,
}

/// Why the history is not linearizable, shown on the smallest failing part.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counterexample {
    /// The failing part's key (`None`: single object or unpartitioned).
    pub key: Option<Value>,
    /// Set when the model refuted an operation outright (e.g. a read of a
    /// value no sequence of writes produces): which one and why. The search
    /// then only looked for a prefix to show, within a bounded effort.
    pub explanation: Option<String>,
    /// Every operation of the part, failed ones included, by invocation.
    pub ops: Vec<CounterexampleOp>,
    /// The model state before any operation.
    pub initial_state: String,
    /// The longest sequence of operations the search could linearize, in
    /// order, each with the state after it.
    pub longest_prefix: Vec<LinearizedStep>,
    /// The state after that prefix, where the search got stuck.
    pub stuck_state: String,
    /// Operations that could have come next there; each was tried and led
    /// nowhere (those with `state_after: None` are outright impossible).
    pub candidates: Vec<Candidate>,
    /// The operation whose completion could not be passed: it had to be
    /// linearized before its return, and no order allows it.
    pub blocking_op: Option<usize>,
}

impl Counterexample {
    fn describe(&self, id: usize) -> &str {
        self.ops
            .iter()
            .find(|o| o.op.id == id)
            .map_or("?", |o| o.description.as_str())
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => writeln!(
                f,
                "not linearizable: key {k} ({} operations)",
                self.ops.len()
            )?,
            None => writeln!(f, "not linearizable ({} operations)", self.ops.len())?,
        }
        if let Some(why) = &self.explanation {
            let op = self.blocking_op.map_or_else(String::new, |b| {
                format!("operation #{b} {}: ", self.describe(b))
            });
            writeln!(f, "{op}{why}")?;
        }
        writeln!(f, "initial state: {}", self.initial_state)?;
        writeln!(
            f,
            "longest linearizable prefix ({} operations):",
            self.longest_prefix.len()
        )?;
        for step in &self.longest_prefix {
            let op = self.ops.iter().find(|o| o.op.id == step.op);
            let process = op.map_or(0, |o| o.op.process);
            writeln!(
                f,
                "  #{:<6} p{:<4} {:<40} => {}",
                step.op,
                process,
                self.describe(step.op),
                step.state_after
            )?;
        }
        writeln!(f, "stuck in state {}; candidates:", self.stuck_state)?;
        for c in &self.candidates {
            match &c.state_after {
                Some(s) => writeln!(
                    f,
                    "  #{:<6} {:<40} => {s}, but every continuation fails",
                    c.op,
                    self.describe(c.op)
                )?,
                None => writeln!(
                    f,
                    "  #{:<6} {:<40} impossible in this state",
                    c.op,
                    self.describe(c.op)
                )?,
            }
        }
        if let Some(b) = self.blocking_op {
            writeln!(
                f,
                "operation #{b} {} completed, yet cannot be placed before its completion",
                self.describe(b)
            )?;
        }
        Ok(())
    }
}

/// Totals over the whole check.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CheckStats {
    /// Operations checked (failed ones excluded).
    pub ops: usize,
    /// Independent parts.
    pub parts: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time, in milliseconds.
    pub elapsed_ms: f64,
    /// Configurations explored, over all parts.
    pub nodes: u64,
    /// Memo hits, over all parts.
    pub memo_hits: u64,
    /// Operations linearized by the read-only reduction.
    pub forced: u64,
    /// Peak memory of the searches, estimated, in bytes.
    pub peak_memory_bytes: usize,
}

/// Everything a check found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Linearizable, not linearizable, or unknown.
    pub verdict: Verdict,
    /// One result per part, in order of first appearance in the history.
    pub parts: Vec<PartResult>,
    /// Present exactly when the verdict is [`Verdict::NotLinearizable`].
    pub counterexample: Option<Counterexample>,
    /// Totals.
    pub stats: CheckStats,
}

//! Entry points: partition, schedule parts across cores, assemble the result.
//!
//! Scheduling: parts are checked smallest first, on `threads` workers pulling
//! from one queue. When a part fails, every part *later* in the schedule is
//! cancelled at once (an easy failing key ends the check without waiting
//! for hard ones), while parts *earlier* in the schedule finish, so the
//! reported counterexample is always the first failing part in schedule
//! order: the same on every run, whatever the thread timing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use histories::{History, HistoryError, OpStatus, Operation};
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::intern::{Interner, ProductInterner, Stepper};
use crate::model::{HintOp, Model};
use crate::result::{
    Candidate, CheckResult, CheckStats, Counterexample, CounterexampleOp, LinearizedStep,
    PartOutcome, PartResult, PartStats, UnknownReason, Verdict,
};
use crate::search::{Abort, Failure, Limits, MemoryGauge, Outcome, PartInput, SearchStats, search};

/// Limits and knobs of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Wall-time budget; when it runs out the verdict is unknown.
    pub time_budget: Option<Duration>,
    /// Memory budget for the searches, in bytes (estimated); when it runs
    /// out the verdict is unknown instead of the process being killed.
    pub memory_budget: Option<usize>,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Check independent keys separately (P-compositionality). Turning it
    /// off checks the whole history as one object — much slower, for
    /// comparison and testing.
    pub partition: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_budget: None,
            memory_budget: Some(4 << 30),
            threads: 0,
            partition: true,
        }
    }
}

/// Why a check could not run at all (as opposed to an unknown verdict).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// An operation does not fit the model.
    #[error(
        "operation {op} (`{f}` invoked at event {call_index}) does not fit the {model} model: {message}"
    )]
    Decode {
        /// The model's name.
        model: String,
        /// [`Operation::id`].
        op: usize,
        /// The operation's function.
        f: String,
        /// `index` of its invoke event.
        call_index: u64,
        /// What is wrong.
        message: String,
    },
    /// The model broke a promise the checker relies on for soundness.
    #[error("the {model} model breaks its contract: {message}")]
    ModelContract {
        /// The model's name.
        model: String,
        /// Which promise and where.
        message: String,
    },
    /// No built-in model has this name.
    #[error("unknown model `{name}`; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names available.
        known: String,
    },
    /// The history could not be paired into operations.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Checks a history: pairs its events, then [`check_operations`].
pub fn check_history<M: Model>(
    model: &M,
    history: &History,
    options: &CheckOptions,
) -> Result<CheckResult, CheckError> {
    let ops = history.operations()?;
    check_operations(model, &ops, options)
}

/// One independent part: operation positions in the input slice.
struct Part {
    key: Option<Value>,
    /// Operations to check (not failed).
    checked: Vec<usize>,
    /// Every operation, failed ones included (for display).
    all: Vec<usize>,
}

/// What checking one scheduled job produced.
struct JobResult {
    outcome: PartOutcome,
    elapsed: Duration,
    stats: PartStats,
    counterexample: Option<Counterexample>,
}

/// Checks operations (as paired by [`History::operations`]) against a model.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[Operation],
    options: &CheckOptions,
) -> Result<CheckResult, CheckError> {
    let start = Instant::now();
    let deadline = options.time_budget.map(|b| start + b);
    let parts = partition(model, ops);
    let checked_ops: usize = parts.iter().map(|p| p.checked.len()).sum();
    let gauge = MemoryGauge::new(options.memory_budget);

    let (results, threads, job_keys): (Vec<Option<JobResult>>, usize, Vec<Option<Value>>) =
        if options.partition {
            let mut schedule: Vec<usize> = (0..parts.len()).collect();
            schedule.sort_by_key(|&p| (parts[p].checked.len(), p));
            let threads = worker_count(options.threads, schedule.len());
            let by_schedule =
                run_scheduled(schedule.len(), threads, deadline, &gauge, |k, limits| {
                    check_part(model, ops, &parts[schedule[k]], limits)
                })?;
            // back to first-appearance order
            let mut results: Vec<Option<JobResult>> = (0..parts.len()).map(|_| None).collect();
            let mut first_failure = None;
            for (k, r) in by_schedule.into_iter().enumerate() {
                if first_failure.is_none()
                    && r.as_ref()
                        .is_some_and(|r| r.outcome == PartOutcome::NotLinearizable)
                {
                    first_failure = Some(schedule[k]);
                }
                results[schedule[k]] = r;
            }
            // Only the first failure in schedule order keeps its counterexample.
            for (p, r) in results.iter_mut().enumerate() {
                if Some(p) != first_failure
                    && let Some(r) = r
                {
                    r.counterexample = None;
                }
            }
            (
                results,
                threads,
                parts.iter().map(|p| p.key.clone()).collect(),
            )
        } else {
            let result = run_scheduled(1, 1, deadline, &gauge, |_, limits| {
                check_product(model, ops, &parts, limits)
            })?;
            (result, 1, vec![None])
        };

    let mut part_results = Vec::with_capacity(results.len());
    let mut counterexample = None;
    let mut failed = false;
    let mut unknown = None;
    let mut stats = CheckStats {
        ops: checked_ops,
        parts: results.len(),
        threads,
        ..CheckStats::default()
    };
    for (i, result) in results.into_iter().enumerate() {
        let ops_in_part = if options.partition {
            parts[i].checked.len()
        } else {
            checked_ops
        };
        let result = result.unwrap_or(JobResult {
            outcome: PartOutcome::Skipped,
            elapsed: Duration::ZERO,
            stats: PartStats::default(),
            counterexample: None,
        });
        match &result.outcome {
            PartOutcome::NotLinearizable => failed = true,
            PartOutcome::Unknown { reason } => {
                unknown.get_or_insert(*reason);
            }
            _ => {}
        }
        if result.counterexample.is_some() {
            counterexample = result.counterexample;
        }
        stats.nodes += result.stats.nodes;
        stats.memo_hits += result.stats.memo_hits;
        stats.forced += result.stats.forced;
        part_results.push(PartResult {
            key: job_keys[i].clone(),
            ops: ops_in_part,
            outcome: result.outcome,
            elapsed_ms: result.elapsed.as_secs_f64() * 1e3,
            stats: result.stats,
        });
    }
    let verdict = if failed {
        Verdict::NotLinearizable
    } else if let Some(reason) = unknown {
        Verdict::Unknown { reason }
    } else {
        Verdict::Linearizable
    };
    stats.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    stats.peak_memory_bytes = gauge.peak();
    Ok(CheckResult {
        verdict,
        parts: part_results,
        counterexample,
        stats,
    })
}

fn worker_count(requested: usize, jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = if requested == 0 { cores } else { requested };
    wanted.clamp(1, jobs.max(1))
}

/// Groups operations by the model's partition key, in order of first appearance.
fn partition<M: Model>(model: &M, ops: &[Operation]) -> Vec<Part> {
    let mut index: FxHashMap<Option<Value>, usize> = FxHashMap::default();
    let mut parts: Vec<Part> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let key = model.partition(op);
        let p = *index.entry(key).or_insert_with_key(|key| {
            parts.push(Part {
                key: key.clone(),
                checked: Vec::new(),
                all: Vec::new(),
            });
            parts.len() - 1
        });
        parts[p].all.push(i);
        if op.status != OpStatus::Fail {
            parts[p].checked.push(i);
        }
    }
    parts
}

/// Runs `jobs` jobs in schedule order on `threads` workers, cancelling jobs
/// after the first failing one (see the module doc). `None` for jobs that
/// never ran.
fn run_scheduled<F>(
    jobs: usize,
    threads: usize,
    deadline: Option<Instant>,
    gauge: &MemoryGauge,
    job: F,
) -> Result<Vec<Option<JobResult>>, CheckError>
where
    F: Fn(usize, &Limits<'_>) -> Result<JobResult, CheckError> + Sync,
{
    let next = AtomicUsize::new(0);
    let first_failure = AtomicUsize::new(usize::MAX);
    let errored = AtomicBool::new(false);
    let error: Mutex<Option<CheckError>> = Mutex::new(None);
    let results: Mutex<Vec<Option<JobResult>>> = Mutex::new((0..jobs).map(|_| None).collect());
    let worker = || {
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= jobs {
                break;
            }
            if first_failure.load(Ordering::Relaxed) < k || errored.load(Ordering::Relaxed) {
                continue;
            }
            let started = Instant::now();
            let out = if deadline.is_some_and(|d| started >= d) {
                Ok(JobResult {
                    outcome: PartOutcome::Unknown {
                        reason: UnknownReason::TimeBudget,
                    },
                    elapsed: Duration::ZERO,
                    stats: PartStats::default(),
                    counterexample: None,
                })
            } else {
                let cancelled =
                    || first_failure.load(Ordering::Relaxed) < k || errored.load(Ordering::Relaxed);
                let limits = Limits {
                    deadline,
                    cancelled: &cancelled,
                    memory: gauge,
                };
                job(k, &limits)
            };
            match out {
                Ok(result) => {
                    if result.outcome == PartOutcome::NotLinearizable {
                        first_failure.fetch_min(k, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[k] = Some(result);
                }
                Err(e) => {
                    errored.store(true, Ordering::Relaxed);
                    error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            }
        }
    };
    if threads <= 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()))
}

fn decode_error<M: Model>(model: &M, op: &Operation, message: String) -> CheckError {
    CheckError::Decode {
        model: model.name().to_string(),
        op: op.id,
        f: op.f.clone(),
        call_index: op.call_index,
        message,
    }
}

fn return_position(op: &Operation) -> u64 {
    match op.status {
        OpStatus::Ok | OpStatus::Fail => op.return_index.unwrap_or(u64::MAX),
        OpStatus::Info => u64::MAX,
    }
}

/// A part's operations decoded, interned, and reduced by the model's hints.
struct Prepared<'m, M: Model> {
    interner: Interner<'m, M>,
    /// Positions (in the input slice) of the operations to search.
    kept: Vec<usize>,
    /// Class of each kept operation.
    classes: Vec<u32>,
    /// Hinted order between kept operations (indices into `kept`).
    before: Vec<(u32, u32)>,
    /// Descriptions of operations the hints dropped, by position.
    dropped: Vec<(usize, String)>,
    /// A completed operation the model refuted outright (position, reason):
    /// the first by invocation.
    refuted: Option<(usize, String)>,
}

fn prepare<'m, M: Model>(
    model: &'m M,
    ops: &[Operation],
    checked: &[usize],
) -> Result<Prepared<'m, M>, CheckError> {
    let decoded = checked
        .iter()
        .map(|&i| {
            model
                .decode(&ops[i])
                .map_err(|m| decode_error(model, &ops[i], m))
        })
        .collect::<Result<Vec<M::Op>, CheckError>>()?;
    let hints = {
        let hint_ops: Vec<HintOp<'_, M::Op>> = decoded
            .iter()
            .zip(checked)
            .map(|(op, &i)| HintOp {
                op,
                call: ops[i].call_index,
                ret: (ops[i].status == OpStatus::Ok).then(|| return_position(&ops[i])),
            })
            .collect();
        model.hints(&hint_ops)
    };
    let n = decoded.len();
    let mut keep = vec![true; n];
    for &k in &hints.never {
        // Only an indeterminate operation may be assumed not to have happened.
        if k < n && ops[checked[k]].status == OpStatus::Info {
            keep[k] = false;
        }
    }
    let mut refuted: Option<(usize, String)> = None;
    for (k, reason) in &hints.impossible {
        let Some(&i) = checked.get(*k) else { continue };
        if ops[i].status == OpStatus::Info {
            // It cannot have taken effect: it never did.
            keep[*k] = false;
        } else if refuted
            .as_ref()
            .is_none_or(|(r, _)| ops[i].call_index < ops[*r].call_index)
        {
            refuted = Some((i, reason.clone()));
        }
    }
    let mut index = vec![u32::MAX; n];
    let mut interner = Interner::new(model);
    let mut kept = Vec::with_capacity(n);
    let mut classes = Vec::with_capacity(n);
    let mut dropped = Vec::new();
    for (k, op) in decoded.into_iter().enumerate() {
        if keep[k] {
            index[k] = kept.len() as u32;
            kept.push(checked[k]);
            classes.push(interner.class_of(op));
        } else {
            dropped.push((
                checked[k],
                format!(
                    "{} (never observed; taken as not applied)",
                    model.describe_op(&op)
                ),
            ));
        }
    }
    let mut before: Vec<(u32, u32)> = hints
        .before
        .iter()
        .filter(|&&(a, b)| a < n && b < n && keep[a] && keep[b])
        .map(|&(a, b)| (index[a], index[b]))
        .collect();
    before.extend(symmetry_order(ops, &kept, &classes, &before));
    Ok(Prepared {
        interner,
        kept,
        classes,
        before,
        dropped,
        refuted,
    })
}

/// Symmetry reduction: indeterminate operations of the same class (same
/// input, unknown output) that no hint mentions are interchangeable. Given a
/// valid linearization where the later-invoked one `y` comes before the
/// earlier-invoked one `x`, swapping them gives another: the model sees the
/// same sequence of classes, both positions lie after `y`'s invocation (so
/// after `x`'s), and neither has a return to respect. So the search may
/// consider only orders in which they are linearized in invocation order:
/// edges `x → y` between consecutive ones. The read-only reduction and the
/// memo stay exact under such edges (see module `search`).
fn symmetry_order(
    ops: &[Operation],
    kept: &[usize],
    classes: &[u32],
    hinted: &[(u32, u32)],
) -> Vec<(u32, u32)> {
    let mut mentioned = vec![false; kept.len()];
    for &(a, b) in hinted {
        mentioned[a as usize] = true;
        mentioned[b as usize] = true;
    }
    let mut order: Vec<u32> = (0..kept.len() as u32)
        .filter(|&k| ops[kept[k as usize]].status == OpStatus::Info && !mentioned[k as usize])
        .collect();
    order.sort_by_key(|&k| ops[kept[k as usize]].call_index);
    let mut last: FxHashMap<u32, u32> = FxHashMap::default();
    let mut edges = Vec::new();
    for k in order {
        if let Some(prev) = last.insert(classes[k as usize], k) {
            edges.push((prev, k));
        }
    }
    edges
}

fn describe_other(ops: &[Operation], dropped: &[(usize, String)], i: usize) -> String {
    match dropped.iter().find(|(p, _)| *p == i) {
        Some((_, d)) => d.clone(),
        None => format!("{}({}) -> fail", ops[i].f, ops[i].input),
    }
}

/// Checks one part with its own interned model.
fn check_part<M: Model>(
    model: &M,
    ops: &[Operation],
    part: &Part,
    limits: &Limits<'_>,
) -> Result<JobResult, CheckError> {
    let started = Instant::now();
    let Prepared {
        mut interner,
        kept,
        classes: classes_of,
        before,
        dropped,
        refuted,
    } = prepare(model, ops, &part.checked)?;
    let input = PartInput {
        call: kept.iter().map(|&i| ops[i].call_index).collect(),
        ret: kept.iter().map(|&i| return_position(&ops[i])).collect(),
        class: classes_of.clone(),
        before,
    };
    let classes = classes_of
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let initial = interner.initial();
    let (outcome, mut stats) = search(
        &input,
        classes,
        &mut interner,
        limits,
        refuted.as_ref().map(|_| EXPLAIN_NODES),
    )?;
    let explanation = explain_refutation(model, ops, refuted, &outcome)?;
    stats.hint_edges = input.before.len();
    stats.dropped = dropped.len();
    let describe_op = |i: usize| -> String {
        match kept.binary_search(&i) {
            Ok(k) => interner.describe_class(classes_of[k]),
            Err(_) => describe_other(ops, &dropped, i),
        }
    };
    Ok(finish(
        outcome,
        explanation,
        stats,
        classes,
        started,
        part.key.clone(),
        &kept,
        &part.all,
        ops,
        &describe_op,
        &interner,
        initial,
    ))
}

/// Checks all parts as one object (partitioning off).
fn check_product<M: Model>(
    model: &M,
    ops: &[Operation],
    parts: &[Part],
    limits: &Limits<'_>,
) -> Result<JobResult, CheckError> {
    let started = Instant::now();
    let mut interners = Vec::with_capacity(parts.len());
    // every kept operation: (position, part, local class), and hinted edges by position
    let mut members: Vec<(usize, u32, u32)> = Vec::new();
    let mut edges_by_position: Vec<(usize, usize)> = Vec::new();
    let mut dropped = Vec::new();
    let mut refuted: Option<(usize, String)> = None;
    for (p, part) in parts.iter().enumerate() {
        let prepared = prepare(model, ops, &part.checked)?;
        if let Some((i, reason)) = prepared.refuted
            && refuted
                .as_ref()
                .is_none_or(|(r, _)| ops[i].call_index < ops[*r].call_index)
        {
            refuted = Some((i, reason));
        }
        for (k, &i) in prepared.kept.iter().enumerate() {
            members.push((i, p as u32, prepared.classes[k]));
        }
        edges_by_position.extend(
            prepared
                .before
                .iter()
                .map(|&(a, b)| (prepared.kept[a as usize], prepared.kept[b as usize])),
        );
        dropped.extend(prepared.dropped);
        interners.push(prepared.interner);
    }
    members.sort_unstable();
    let names = parts
        .iter()
        .map(|p| {
            p.key
                .as_ref()
                .map_or_else(|| "-".to_string(), Value::to_string)
        })
        .collect();
    let mut product = ProductInterner::new(interners, names);
    let kept: Vec<usize> = members.iter().map(|m| m.0).collect();
    let classes_of: Vec<u32> = members
        .iter()
        .map(|&(_, p, c)| product.class_of(p, c))
        .collect();
    let global = |i: usize| kept.binary_search(&i).map(|k| k as u32).ok();
    let before = edges_by_position
        .iter()
        .filter_map(|&(a, b)| Some((global(a)?, global(b)?)))
        .collect();
    let input = PartInput {
        call: kept.iter().map(|&i| ops[i].call_index).collect(),
        ret: kept.iter().map(|&i| return_position(&ops[i])).collect(),
        class: classes_of.clone(),
        before,
    };
    let all: Vec<usize> = (0..ops.len()).collect();
    let classes = classes_of
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let initial = product.initial();
    let (outcome, mut stats) = search(
        &input,
        classes,
        &mut product,
        limits,
        refuted.as_ref().map(|_| EXPLAIN_NODES),
    )?;
    let explanation = explain_refutation(model, ops, refuted, &outcome)?;
    stats.hint_edges = input.before.len();
    stats.dropped = dropped.len();
    let describe_op = |i: usize| -> String {
        match kept.binary_search(&i) {
            Ok(k) => product.describe_class(classes_of[k]),
            Err(_) => describe_other(ops, &dropped, i),
        }
    };
    Ok(finish(
        outcome,
        explanation,
        stats,
        classes,
        started,
        None,
        &kept,
        &all,
        ops,
        &describe_op,
        &product,
        initial,
    ))
}

/// How many configurations the search may explore to find a prefix to show
/// for a part the model already refuted.
const EXPLAIN_NODES: u64 = 50_000;

/// The explanation for a part the model refuted (operation `position`
/// cannot be placed). The search then ran only to find a prefix to show; had
/// it found a linearization, the model's refutation would be wrong.
fn explain_refutation<M: Model>(
    model: &M,
    ops: &[Operation],
    refuted: Option<(usize, String)>,
    outcome: &Outcome,
) -> Result<Option<String>, CheckError> {
    let Some((position, reason)) = refuted else {
        return Ok(None);
    };
    if matches!(outcome, Outcome::Linearizable) {
        return Err(CheckError::ModelContract {
            model: model.name().to_string(),
            message: format!(
                "its hints call operation {} impossible ({reason}), yet the search linearized it",
                ops[position].id
            ),
        });
    }
    Ok(Some(format!(
        "operation #{} cannot take effect anywhere: {reason}",
        ops[position].id
    )))
}

/// Turns a search outcome into a job result, with a counterexample on failure.
#[allow(clippy::too_many_arguments)]
fn finish(
    outcome: Outcome,
    explanation: Option<String>,
    stats: SearchStats,
    classes: usize,
    started: Instant,
    key: Option<Value>,
    checked: &[usize],
    all: &[usize],
    ops: &[Operation],
    describe_op: &dyn Fn(usize) -> String,
    stepper: &dyn Stepper,
    initial: u32,
) -> JobResult {
    let part_stats = PartStats {
        nodes: stats.nodes,
        memo_hits: stats.memo_hits,
        backtracks: stats.backtracks,
        forced: stats.forced,
        states: stats.states,
        classes,
        hint_edges: stats.hint_edges,
        dropped: stats.dropped,
    };
    let (outcome, counterexample) = match outcome {
        Outcome::Linearizable => (PartOutcome::Linearizable, None),
        Outcome::Aborted(Abort::Deadline) => (
            PartOutcome::Unknown {
                reason: UnknownReason::TimeBudget,
            },
            None,
        ),
        Outcome::Aborted(Abort::Memory) => (
            PartOutcome::Unknown {
                reason: UnknownReason::MemoryBudget,
            },
            None,
        ),
        Outcome::Aborted(Abort::Cancelled) => (PartOutcome::Skipped, None),
        Outcome::NotLinearizable(failure) => (
            PartOutcome::NotLinearizable,
            Some(counterexample(
                key,
                failure,
                explanation,
                checked,
                all,
                ops,
                describe_op,
                stepper,
                initial,
            )),
        ),
    };
    JobResult {
        outcome,
        elapsed: started.elapsed(),
        stats: part_stats,
        counterexample,
    }
}

#[allow(clippy::too_many_arguments)]
fn counterexample(
    key: Option<Value>,
    failure: Failure,
    explanation: Option<String>,
    checked: &[usize],
    all: &[usize],
    ops: &[Operation],
    describe_op: &dyn Fn(usize) -> String,
    stepper: &dyn Stepper,
    initial: u32,
) -> Counterexample {
    let id = |local: u32| ops[checked[local as usize]].id;
    Counterexample {
        key,
        explanation,
        ops: all
            .iter()
            .map(|&i| CounterexampleOp {
                op: ops[i].clone(),
                description: describe_op(i),
            })
            .collect(),
        initial_state: stepper.describe_state(initial),
        longest_prefix: failure
            .prefix
            .iter()
            .map(|&(op, state)| LinearizedStep {
                op: id(op),
                state_after: stepper.describe_state(state),
            })
            .collect(),
        stuck_state: stepper.describe_state(failure.state),
        candidates: failure
            .candidates
            .iter()
            .map(|&(op, after)| Candidate {
                op: id(op),
                state_after: after.map(|s| stepper.describe_state(s)),
            })
            .collect(),
        blocking_op: failure.blocking.map(id),
    }
}

//! Running stateright's checkers on the model: strategy, budgets, progress
//! reports, and a per-property verdict with readable paths.
//!
//! Every run stops at the first violated Always property
//! (`HasDiscoveries::AnyFailures`): stateright's breadth-first checker keeps
//! overwriting an Always discovery with later violating states, so going on
//! would only make the reported path longer.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use stateright::{Checker, Chooser, Expectation, HasDiscoveries, Model};
use thiserror::Error;

use super::properties::{self, PropertySpec};
use super::rooted::Rooted;
use super::{RaftAction, RaftModel, RaftState, render};

/// How to search the state space.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Strategy {
    /// Breadth first: finds short counterexamples; honours a depth bound
    /// (exactly only on one thread: several threads do not keep depths in
    /// order, and may leave a state at the bound that a shorter path
    /// reaches).
    Bfs,
    /// Depth first: little memory; bounded by the model's [`super::Bounds`]
    /// only (stateright's depth-first search with a depth bound misses
    /// states, so that combination is refused).
    Dfs,
    /// Random walks from the initial state, reproducible from `seed` with
    /// the same stateright and rand versions (pinned by Cargo.lock).
    Simulation {
        /// Seed of the first walk; later walks derive theirs from it.
        seed: u64,
    },
}

/// How to run a check.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Search strategy.
    pub strategy: Strategy,
    /// Checker threads.
    pub threads: usize,
    /// Breadth-first: check every state within this many steps of the
    /// initial one. Simulation: the longest walk. Refused for depth-first.
    pub max_depth: Option<usize>,
    /// Stop after about this many states (required for simulation, whose
    /// walks never run out).
    pub max_states: Option<usize>,
    /// How often `run` calls its progress callback.
    pub progress_every: Duration,
}

impl RunOptions {
    /// Breadth-first to `max_depth` steps on one thread.
    pub fn bfs(max_depth: usize) -> Self {
        RunOptions {
            strategy: Strategy::Bfs,
            threads: 1,
            max_depth: Some(max_depth),
            max_states: None,
            progress_every: Duration::from_secs(1),
        }
    }
}

/// Why a check could not run.
#[derive(Debug, Error)]
pub enum RunError {
    /// Zero threads.
    #[error("the checker needs at least one thread")]
    NoThreads,
    /// Depth-first search with a depth bound.
    #[error(
        "depth-first search with a depth bound misses states (stateright 0.31 does not revisit a state \
         first reached deep when a shorter path reaches it); use breadth-first search for a depth bound"
    )]
    DepthWithDfs,
    /// A simulation without a state budget would never end.
    #[error("a simulation needs a state budget (max_states)")]
    SimulationNeedsBudget,
    /// The explorer must stay on this machine.
    #[error("the explorer only listens on loopback addresses, not {0}")]
    NotLoopback(SocketAddr),
    /// The explorer's address is taken or not bindable.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        reason: String,
    },
}

/// A progress report.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States generated, repeats included.
    pub states: usize,
    /// Distinct states (for simulation: the same as `states`).
    pub unique_states: usize,
    /// Longest path explored so far, in steps.
    pub depth: usize,
    /// Time since the check started.
    pub elapsed: Duration,
}

impl Progress {
    /// Generated states per second so far.
    pub fn states_per_sec(&self) -> f64 {
        rate(self.states, self.elapsed)
    }
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// What the check found about one property.
#[derive(Clone, Debug)]
pub enum PropertyOutcome {
    /// Always: no explored state violates it.
    Held,
    /// Always: this path ends in a state that violates it.
    Violated {
        /// Initial state, then each step and the state after it.
        path: Vec<(RaftState, Option<RaftAction>)>,
        /// What exactly is wrong in the last state.
        detail: String,
    },
    /// Sometimes: this path ends in a state that has it.
    Found {
        /// Initial state, then each step and the state after it.
        path: Vec<(RaftState, Option<RaftAction>)>,
    },
    /// Sometimes: no explored state has it.
    NotFound,
}

/// One property's result.
#[derive(Clone, Debug)]
pub struct PropertyResult {
    /// The property.
    pub spec: &'static PropertySpec,
    /// What the check found.
    pub outcome: PropertyOutcome,
}

impl PropertyResult {
    /// Number of steps of the path found, if any.
    pub fn steps(&self) -> Option<usize> {
        match &self.outcome {
            PropertyOutcome::Violated { path, .. } | PropertyOutcome::Found { path } => {
                Some(path.len().saturating_sub(1))
            }
            PropertyOutcome::Held | PropertyOutcome::NotFound => None,
        }
    }
}

/// The overall result, Jepsen-style.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// No Always property violated and every Sometimes property witnessed.
    Pass,
    /// An Always property is violated.
    Fail,
    /// Nothing violated, but some Sometimes property was not witnessed
    /// within the bounds.
    Unknown,
}

/// The result of a check.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The strategy used.
    pub strategy: Strategy,
    /// Checker threads.
    pub threads: usize,
    /// States generated, repeats included.
    pub states: usize,
    /// Distinct states (for simulation: the same as `states`).
    pub unique_states: usize,
    /// Longest path explored, in steps.
    pub depth: usize,
    /// Wall-clock time of the check.
    pub elapsed: Duration,
    /// Whether every state within the bounds (and depth) was explored:
    /// false after a violation, at the state budget, for simulations, and
    /// for breadth-first runs on several threads under a depth bound.
    pub exhaustive: bool,
    /// Per property, in the model's order.
    pub properties: Vec<PropertyResult>,
}

impl RunReport {
    /// Generated states per second.
    pub fn states_per_sec(&self) -> f64 {
        rate(self.states, self.elapsed)
    }

    /// The result for the property named `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| p.spec.name == name)
    }

    /// Pass, fail, or unknown.
    pub fn verdict(&self) -> Verdict {
        let violated = self
            .properties
            .iter()
            .any(|p| matches!(p.outcome, PropertyOutcome::Violated { .. }));
        let unwitnessed = self
            .properties
            .iter()
            .any(|p| matches!(p.outcome, PropertyOutcome::NotFound));
        if violated {
            Verdict::Fail
        } else if unwitnessed {
            Verdict::Unknown
        } else {
            Verdict::Pass
        }
    }
}

/// Checks `model` from its initial state, calling `on_progress` every
/// `options.progress_every` while the check runs, and returns what it found.
pub fn run(
    model: RaftModel,
    options: &RunOptions,
    on_progress: impl FnMut(&Progress),
) -> Result<RunReport, RunError> {
    run_model(model.clone(), &model, options, on_progress)
}

/// Checks every continuation of `start`, a state of `model` reached some
/// other way (a scripted prefix, say), as [`run`] does from the initial
/// state. Paths in the report begin at `start`.
pub fn run_from(
    model: RaftModel,
    start: RaftState,
    options: &RunOptions,
    on_progress: impl FnMut(&Progress),
) -> Result<RunReport, RunError> {
    let rooted = Rooted {
        model: model.clone(),
        root: start,
    };
    run_model(rooted, &model, options, on_progress)
}

fn run_model<M>(
    checked: M,
    model: &RaftModel,
    options: &RunOptions,
    mut on_progress: impl FnMut(&Progress),
) -> Result<RunReport, RunError>
where
    M: Model<State = RaftState, Action = RaftAction> + Clone + Send + Sync + 'static,
{
    if options.threads == 0 {
        return Err(RunError::NoThreads);
    }
    let mut builder = checked
        .clone()
        .checker()
        .threads(options.threads)
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(states) = options.max_states {
        builder = builder.target_state_count(states);
    }
    // stateright counts the initial state as depth 1 (simulations count
    // steps) and skips, without checking, states at the target depth.
    let steps = |depth: usize| {
        let depth = match options.strategy {
            Strategy::Simulation { .. } => depth,
            Strategy::Bfs | Strategy::Dfs => depth.saturating_sub(1),
        };
        options.max_depth.map_or(depth, |cap| depth.min(cap))
    };
    let mut report_progress = |p: &Progress| {
        on_progress(&Progress {
            depth: steps(p.depth),
            ..*p
        })
    };
    let start = Instant::now();
    let finished = match options.strategy {
        Strategy::Bfs => {
            if let Some(depth) = options.max_depth {
                builder = builder.target_max_depth(depth + 2);
            }
            drive(builder.spawn_bfs(), start, options, &mut report_progress)
        }
        Strategy::Dfs => {
            if options.max_depth.is_some() {
                return Err(RunError::DepthWithDfs);
            }
            drive(builder.spawn_dfs(), start, options, &mut report_progress)
        }
        Strategy::Simulation { seed } => {
            if options.max_states.is_none() {
                return Err(RunError::SimulationNeedsBudget);
            }
            if let Some(depth) = options.max_depth {
                builder = builder.target_max_depth(depth + 1);
            }
            let chooser = EnabledChooser {
                model: Arc::new(checked),
            };
            drive(
                builder.spawn_simulation(seed, chooser),
                start,
                options,
                &mut on_progress,
            )
        }
    };
    let Finished {
        progress,
        mut discoveries,
    } = finished;
    let depth = steps(progress.depth);
    let mut properties = Vec::new();
    let mut violated = false;
    for spec in properties::properties_for(model.cfg.clients) {
        let path = discoveries
            .remove(spec.name)
            .map(|path| shortest_prefix(model, spec, path));
        let outcome = match (&spec.expectation, path) {
            (Expectation::Sometimes, Some(path)) => PropertyOutcome::Found { path },
            (Expectation::Sometimes, None) => PropertyOutcome::NotFound,
            (_, Some(path)) => {
                violated = true;
                let detail = path
                    .last()
                    .and_then(|(state, _)| (spec.explain)(model, state))
                    .unwrap_or_else(|| spec.statement.to_string());
                PropertyOutcome::Violated { path, detail }
            }
            (_, None) => PropertyOutcome::Held,
        };
        properties.push(PropertyResult { spec, outcome });
    }
    let budget_reached = options.max_states.is_some_and(|n| progress.states >= n);
    // Several breadth-first threads do not finish one depth before the
    // next, so a state first reached on a longer path may sit at the depth
    // bound unexpanded while a shorter path to it exists.
    let depth_order_lost =
        options.strategy == Strategy::Bfs && options.threads > 1 && options.max_depth.is_some();
    let exhaustive = !violated
        && !budget_reached
        && !depth_order_lost
        && !matches!(options.strategy, Strategy::Simulation { .. });
    Ok(RunReport {
        strategy: options.strategy,
        threads: options.threads,
        states: progress.states,
        unique_states: progress.unique_states,
        depth,
        elapsed: progress.elapsed,
        exhaustive,
        properties,
    })
}

/// Cuts a discovered path at the first state that violates (Always) or
/// witnesses (Sometimes) the property. stateright keeps overwriting a
/// discovery with later states, so its paths can run past that point.
fn shortest_prefix(
    model: &RaftModel,
    spec: &PropertySpec,
    mut path: Vec<(RaftState, Option<RaftAction>)>,
) -> Vec<(RaftState, Option<RaftAction>)> {
    let wanted = !matches!(spec.expectation, Expectation::Always);
    if let Some(first) = path
        .iter()
        .position(|(state, _)| (spec.condition)(model, state) == wanted)
    {
        path.truncate(first + 1);
        if let Some(last) = path.last_mut() {
            last.1 = None;
        }
    }
    path
}

type Discoveries = std::collections::HashMap<&'static str, Vec<(RaftState, Option<RaftAction>)>>;

struct Finished {
    progress: Progress,
    discoveries: Discoveries,
}

fn snapshot<M: Model, C: Checker<M>>(checker: &C, start: Instant) -> Progress {
    Progress {
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        depth: checker.max_depth(),
        elapsed: start.elapsed(),
    }
}

fn drive<M, C>(
    checker: C,
    start: Instant,
    options: &RunOptions,
    on_progress: &mut impl FnMut(&Progress),
) -> Finished
where
    M: Model<State = RaftState, Action = RaftAction>,
    C: Checker<M>,
{
    let poll = Duration::from_millis(20).min(options.progress_every);
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(poll);
        if last_report.elapsed() >= options.progress_every {
            last_report = Instant::now();
            on_progress(&snapshot(&checker, start));
        }
    }
    let checker = checker.join();
    Finished {
        progress: snapshot(&checker, start),
        discoveries: checker
            .discoveries()
            .into_iter()
            .map(|(name, path)| (name, path.into_vec()))
            .collect(),
    }
}

/// Picks uniformly among the actions that lead somewhere inside the
/// bounds. stateright's simulation records a wrong action index when the
/// chosen action changes nothing, and then cannot rebuild the path; never
/// choosing such an action avoids that.
struct EnabledChooser<M> {
    model: Arc<M>,
}

impl<M> Clone for EnabledChooser<M> {
    fn clone(&self) -> Self {
        EnabledChooser {
            model: Arc::clone(&self.model),
        }
    }
}

impl<M> Chooser<M> for EnabledChooser<M>
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    type State = ChaCha8Rng;

    fn new_state(&self, seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn choose_initial_state(&self, _rng: &mut ChaCha8Rng, _initial_states: &[RaftState]) -> usize {
        0
    }

    fn choose_action(
        &self,
        rng: &mut ChaCha8Rng,
        state: &RaftState,
        actions: &[RaftAction],
    ) -> usize {
        let mut candidates: Vec<usize> = (0..actions.len()).collect();
        while !candidates.is_empty() {
            let pick = candidates.swap_remove(rng.random_range(0..candidates.len()));
            let enabled = self
                .model
                .next_state(state, actions[pick].clone())
                .is_some_and(|next| self.model.within_boundary(&next));
            if enabled {
                return pick;
            }
        }
        // Nothing leads anywhere: whatever is chosen ends the walk.
        0
    }
}

/// Serves stateright's web explorer for `model` on `addr` (a loopback
/// address) until the process ends; `on_listening` runs once the address
/// is known to be free, just before serving.
pub fn explore(
    model: RaftModel,
    addr: SocketAddr,
    on_listening: impl FnOnce(),
) -> Result<(), RunError> {
    if !addr.ip().is_loopback() {
        return Err(RunError::NotLoopback(addr));
    }
    // stateright's server panics when it cannot bind; find out first.
    drop(TcpListener::bind(addr).map_err(|e| RunError::Bind {
        addr,
        reason: e.to_string(),
    })?);
    let root = model.init_states().remove(0);
    on_listening();
    Rooted { model, root }.checker().serve(addr);
    Ok(())
}

/// Renders a run's per-property results: held, not found, or the path.
pub fn describe_results(model: &RaftModel, report: &RunReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for result in &report.properties {
        let spec = result.spec;
        let kind = match spec.expectation {
            Expectation::Sometimes => "sometimes",
            Expectation::Always | Expectation::Eventually => "always",
        };
        match &result.outcome {
            PropertyOutcome::Held => {
                let _ = writeln!(out, "  ✓ {} ({kind}): held — {}", spec.name, spec.statement);
            }
            PropertyOutcome::NotFound => {
                let _ = writeln!(
                    out,
                    "  ? {} ({kind}): no example within the bounds",
                    spec.name
                );
            }
            PropertyOutcome::Found { path } => {
                let _ = writeln!(
                    out,
                    "  ✓ {} ({kind}): example found, {} steps from the start",
                    spec.name,
                    path.len().saturating_sub(1)
                );
            }
            PropertyOutcome::Violated { path, detail } => {
                let _ = writeln!(
                    out,
                    "  ✗ {} ({kind}): VIOLATED after {} steps — {detail}",
                    spec.name,
                    path.len().saturating_sub(1)
                );
                let _ = writeln!(out, "    counterexample:");
                out.push_str(&render::path(model, path));
                if let Some((last, _)) = path.last() {
                    let _ = writeln!(out, "    final state:");
                    out.push_str(&render::final_state(model, last));
                }
            }
        }
    }
    out
}

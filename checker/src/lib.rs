//! A fast linearizability checker for Faultline histories.
//!
//! # The question
//!
//! A history records, for every client operation, when it was invoked, when
//! (and whether) it returned, and what it observed. It is *linearizable* if
//! the operations can be put in one sequential order that (1) a sequential
//! specification — the [`Model`] — accepts, observation for observation, and
//! (2) respects real time: an operation that returned before another was
//! invoked comes first. Operations that `fail`ed never took effect and are
//! left out; indeterminate ones (`info`, or no completion) may be placed
//! anywhere after their invocation, or not at all.
//!
//! # The algorithm
//!
//! 1. **Partition** (P-compositionality). Linearizability is local: a
//!    history is linearizable iff each independent object's sub-history is.
//!    The model names each operation's object ([`Model::partition`], the key
//!    for the kv model) and every part is checked alone, in parallel across
//!    cores, smallest first; the first failing part cancels the rest.
//! 2. **Compile** each part to integers (module `intern`): distinct operations
//!    become classes, reachable states are interned on the fly, and every
//!    transition is computed once and cached in a step table.
//! 3. **Search** (module `search`): Wing & Gong's backtracking search in Lowe's
//!    form, as in Porcupine — a linked list of calls and returns, try
//!    candidates in order, backtrack on a return that cannot be passed — with
//!    a memo of explored (linearized set, state) configurations keyed by an
//!    incremental Zobrist hash and stored compactly (module `memo`), and a *sound*
//!    read-only reduction: a read that is legal now is linearized at once,
//!    without a choice point (the proof is in module `search`).
//! 4. **Prune with facts**: a model may derive ordering facts that every
//!    valid linearization obeys from what operations observed
//!    ([`Model::hints`]); the kv model reads the order of appends off the
//!    values gets returned (unique appended values, as the lab workloads
//!    use), which turns the search over permutations of concurrent appends
//!    into a walk. Indeterminate operations of identical input are
//!    interchangeable, so only one of their orders is explored.
//! 5. **Explain**: on failure, the longest linearization found, the state it
//!    reached, what could come next and why each fails, and the operation
//!    whose return could not be passed ([`Counterexample`]).
//!
//! Time and memory budgets turn into an `unknown` verdict, never a guess.
//!
//! # Models
//!
//! Specifications are written once as stateright `SequentialSpec`s and
//! adapted ([`SpecModel`], [`CheckerSpec`]), so `faultline model` and
//! `faultline check` share them. Built in: [`models::Register`]
//! (read/write/cas), [`models::KvValue`] (get/put/append per key),
//! [`models::GrowSet`] and [`models::Counter`]; pick one by name with
//! [`check_with_model`].
//!
//! ```
//! use checker::{CheckOptions, Verdict, check_with_model};
//! use histories::read_edn;
//!
//! let history = read_edn(
//!     "{:type :invoke, :f :write, :value 1, :process 0, :time 0, :index 0}
//!      {:type :ok,     :f :write, :value 1, :process 0, :time 1, :index 1}
//!      {:type :invoke, :f :read, :value nil, :process 1, :time 2, :index 2}
//!      {:type :ok,     :f :read, :value 0,   :process 1, :time 3, :index 3}",
//! )
//! .unwrap();
//! let result = check_with_model("register", &history.operations().unwrap(), &CheckOptions::default()).unwrap();
//! assert_eq!(result.verdict, Verdict::NotLinearizable);
//! println!("{}", result.counterexample.unwrap());
//! ```

mod check;
mod intern;
mod memo;
mod model;
pub mod models;
pub mod raft_model;
mod result;
mod search;
mod spec;
pub mod synth;

pub use check::{CheckError, CheckOptions, check_history, check_operations};
pub use model::{HintOp, Hints, Model};
pub use models::{MODEL_NAMES, check_with_model};
pub use result::{
    Candidate, CheckResult, CheckStats, Counterexample, CounterexampleOp, LinearizedStep,
    PartOutcome, PartResult, PartStats, UnknownReason, Verdict,
};
pub use spec::{CheckerSpec, SpecModel, SpecOp};

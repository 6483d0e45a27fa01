//! The fast checker's view of a sequential specification.

use std::hash::Hash;

use histories::Operation;
use serde_json::Value;

/// A sequential specification as the fast checker needs it.
///
/// Implement it directly for full control, or implement stateright's
/// `SequentialSpec` plus [`crate::CheckerSpec`] and wrap it in
/// [`crate::SpecModel`], so the same specification also drives stateright's
/// own linearizability tester.
///
/// The checker never calls [`Model::step`] twice for the same state and op:
/// it interns states and ops into integers and caches every transition, so
/// `step` may be slow and allocate.
pub trait Model: Sync {
    /// The object's state. Equal states must behave identically.
    type State: Clone + Eq + Hash + Send;
    /// An operation *together with what it observed*: the input, plus the
    /// output of an `ok` completion or "unknown" for an indeterminate one.
    type Op: Clone + Eq + Hash + Send + Sync;

    /// A short name for reports ("register", "kv", ...).
    fn name(&self) -> &str;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Reads a history operation (status `Ok` or `Info`; `Fail` operations
    /// never reach the model). Errors say what is wrong with it.
    fn decode(&self, op: &Operation) -> Result<Self::Op, String>;

    /// The independent object an operation touches: operations with
    /// different keys commute and are checked as separate parts
    /// (P-compositionality). The default is the history's `key`.
    fn partition(&self, op: &Operation) -> Option<Value> {
        op.key.clone()
    }

    /// Applies `op` in `state`: the next state, or `None` when the op could
    /// not have observed what it did from this state.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// True when `op` never changes the state whenever it is legal (a read,
    /// a failed compare). Such ops are linearized greedily, without a choice
    /// point. Answering `true` wrongly makes the checker unsound, so the
    /// checker verifies it on every transition it computes and reports a
    /// [`crate::CheckError::ModelContract`] if it is broken.
    fn is_read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// Ordering facts that hold in *every* valid linearization of a part,
    /// which the model can read off what operations observed (for example
    /// the order of uniquely-valued appends a later read saw). The search
    /// then never tries orders that break them. Sound hints only prune
    /// orders that could not succeed anyway; an unsound hint makes the
    /// checker wrong, so only give facts you can prove. The default derives
    /// nothing.
    fn hints(&self, ops: &[HintOp<'_, Self::Op>]) -> Hints {
        let _ = ops;
        Hints::default()
    }

    /// Human-readable state, for counterexamples.
    fn describe_state(&self, state: &Self::State) -> String;

    /// Human-readable op, for counterexamples, e.g. `append("x") -> ok`.
    fn describe_op(&self, op: &Self::Op) -> String;
}

/// One operation of a part, as [`Model::hints`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct HintOp<'a, O> {
    /// The decoded operation.
    pub op: &'a O,
    /// Real-time position of its invocation.
    pub call: u64,
    /// Real-time position of its return; `None` when indeterminate.
    pub ret: Option<u64>,
}

/// Facts for the search; see [`Model::hints`]. Indices are positions in the
/// slice given to `hints`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// `(a, b)`: `a` precedes `b` in every valid linearization.
    pub before: Vec<(usize, usize)>,
    /// Indeterminate operations that can be assumed never to have taken
    /// effect: a linearization with them exists iff one without them does.
    /// Ignored for operations that completed.
    pub never: Vec<usize>,
    /// Operations that no valid linearization can contain, each with the
    /// reason (for example a read of a value no sequence of writes
    /// produces). A completed one refutes the part without a search; an
    /// indeterminate one is taken as never having happened.
    pub impossible: Vec<(usize, String)>,
}

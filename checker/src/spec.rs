//! One model, two checkers: stateright's `SequentialSpec` adapted to [`Model`].
//!
//! A specification is written once as a stateright [`SequentialSpec`] (a
//! state with `invoke(op) -> ret`). `faultline model` hands it to stateright's
//! `LinearizabilityTester`; `faultline check` wraps it in [`SpecModel`], which
//! adds what speed needs: decoding history operations, the partition key and
//! the read-only classification ([`CheckerSpec`]); interning and hashing come
//! from the checker itself.

use std::fmt::Debug;
use std::hash::Hash;

use histories::Operation;
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::model::{HintOp, Hints, Model};

/// A spec's operation together with its return value (`None` when
/// indeterminate): what [`SpecModel`] uses as [`Model::Op`].
pub type SpecOp<S> = (
    <S as SequentialSpec>::Op,
    Option<<S as SequentialSpec>::Ret>,
);

/// What the fast checker needs on top of a stateright [`SequentialSpec`].
pub trait CheckerSpec:
    SequentialSpec<
        Op: Clone + Eq + Hash + Debug + Send + Sync,
        Ret: Clone + Eq + Hash + Debug + Send + Sync,
    > + Clone
    + Eq
    + Hash
    + Debug
    + Send
    + Sync
{
    /// A short name for reports.
    const NAME: &'static str;

    /// Reads a history operation: its input, and its return value when it
    /// completed `ok` (`None` when indeterminate).
    fn decode(op: &Operation) -> Result<(Self::Op, Option<Self::Ret>), String>;

    /// True when the op, with this return value (or an unknown one), leaves
    /// the state unchanged whenever it is legal. See [`Model::is_read_only`].
    fn is_read_only(op: &Self::Op, ret: Option<&Self::Ret>) -> bool;

    /// The independent object an operation touches; the history's key.
    fn partition(op: &Operation) -> Option<Value> {
        op.key.clone()
    }

    /// Ordering facts read off what operations observed; see
    /// [`Model::hints`]. Each op comes with its return value (`None` when
    /// indeterminate).
    fn hints(ops: &[HintOp<'_, SpecOp<Self>>]) -> Hints {
        let _ = ops;
        Hints::default()
    }

    /// Human-readable state.
    fn describe(&self) -> String {
        format!("{self:?}")
    }

    /// Human-readable op with its return value.
    fn describe_op(op: &Self::Op, ret: Option<&Self::Ret>) -> String {
        match ret {
            Some(ret) => format!("{op:?} -> {ret:?}"),
            None => format!("{op:?} -> ?"),
        }
    }
}

/// Adapts a [`CheckerSpec`] into a [`Model`] for the fast checker.
#[derive(Clone, Debug)]
pub struct SpecModel<S> {
    init: S,
}

impl<S: CheckerSpec> SpecModel<S> {
    /// Checks histories against `init` as the initial state.
    pub fn new(init: S) -> Self {
        SpecModel { init }
    }
}

impl<S: CheckerSpec + Default> Default for SpecModel<S> {
    fn default() -> Self {
        SpecModel::new(S::default())
    }
}

impl<S: CheckerSpec> Model for SpecModel<S> {
    type State = S;
    type Op = SpecOp<S>;

    fn name(&self) -> &str {
        S::NAME
    }

    fn init(&self) -> S {
        self.init.clone()
    }

    fn decode(&self, op: &Operation) -> Result<Self::Op, String> {
        S::decode(op)
    }

    fn partition(&self, op: &Operation) -> Option<Value> {
        S::partition(op)
    }

    fn step(&self, state: &S, (op, ret): &Self::Op) -> Option<S> {
        let mut next = state.clone();
        match ret {
            Some(ret) => next.is_valid_step(op, ret).then_some(next),
            None => {
                next.invoke(op);
                Some(next)
            }
        }
    }

    fn is_read_only(&self, (op, ret): &Self::Op) -> bool {
        S::is_read_only(op, ret.as_ref())
    }

    fn hints(&self, ops: &[HintOp<'_, Self::Op>]) -> Hints {
        S::hints(ops)
    }

    fn describe_state(&self, state: &S) -> String {
        state.describe()
    }

    fn describe_op(&self, (op, ret): &Self::Op) -> String {
        S::describe_op(op, ret.as_ref())
    }
}

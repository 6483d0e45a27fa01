//! Helpers shared by the integration tests.
#![allow(dead_code)]

use checker::{CheckOptions, CheckerSpec, HintOp, Hints, Model, Verdict, check_history};
use histories::{EventType, History, OpStatus, Operation};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

/// A model with its hints switched off, to compare against.
pub struct NoHints<M>(pub M);

/// A model with its read-only reduction switched off, to compare against.
pub struct NoReduction<M>(pub M);

macro_rules! delegate {
    ($wrapper:ident, $hints:expr, $read_only:expr) => {
        impl<M: Model> Model for $wrapper<M> {
            type State = M::State;
            type Op = M::Op;
            fn name(&self) -> &str {
                self.0.name()
            }
            fn init(&self) -> M::State {
                self.0.init()
            }
            fn decode(&self, op: &Operation) -> Result<M::Op, String> {
                self.0.decode(op)
            }
            fn partition(&self, op: &Operation) -> Option<Value> {
                self.0.partition(op)
            }
            fn step(&self, state: &M::State, op: &M::Op) -> Option<M::State> {
                self.0.step(state, op)
            }
            fn is_read_only(&self, op: &M::Op) -> bool {
                let f: fn(&M, &M::Op) -> bool = $read_only;
                f(&self.0, op)
            }
            fn hints(&self, ops: &[HintOp<'_, M::Op>]) -> Hints {
                let f: fn(&M, &[HintOp<'_, M::Op>]) -> Hints = $hints;
                f(&self.0, ops)
            }
            fn describe_state(&self, state: &M::State) -> String {
                self.0.describe_state(state)
            }
            fn describe_op(&self, op: &M::Op) -> String {
                self.0.describe_op(op)
            }
        }
    };
}

delegate!(NoHints, |_, _| Hints::default(), |m, op| m.is_read_only(op));
delegate!(NoReduction, |m, ops| m.hints(ops), |_, _| false);

/// Checks with default options on one thread.
pub fn verdict<M: Model>(model: &M, history: &History) -> Verdict {
    let options = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    check_history(model, history, &options)
        .expect("checks")
        .verdict
}

/// Replaces the observed value of some successful reads by random values
/// from `domain`, so that some histories stay linearizable and some do not.
pub fn scramble_reads(history: &History, seed: u64, domain: &[Value]) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = history.clone();
    for e in out.events.iter_mut() {
        if e.kind == EventType::Ok && (e.f == "read" || e.f == "get") && rng.random_bool(0.3) {
            e.value = domain[rng.random_range(0..domain.len())].clone();
        }
    }
    out
}

/// Stateright's verdict on a single-object history: failed operations are
/// left out, indeterminate ones stay in flight (Jepsen processes never
/// invoke again after one, matching stateright's one-op-per-thread rule).
pub fn stateright_linearizable<S>(init: S, history: &History) -> bool
where
    S: CheckerSpec,
{
    let ops = history.operations().expect("pairs");
    let failed: std::collections::HashSet<u64> = ops
        .iter()
        .filter(|o| o.status == OpStatus::Fail)
        .map(|o| o.call_index)
        .collect();
    let by_call: std::collections::HashMap<u64, &Operation> =
        ops.iter().map(|o| (o.call_index, o)).collect();
    let by_return: std::collections::HashMap<u64, &Operation> = ops
        .iter()
        .filter_map(|o| o.return_index.map(|r| (r, o)))
        .collect();
    let mut tester = LinearizabilityTester::new(init);
    for e in &history.events {
        match e.kind {
            EventType::Invoke => {
                let op = by_call[&e.index];
                if failed.contains(&op.call_index) {
                    continue;
                }
                let (input, _) = S::decode(op).expect("decodes");
                tester.on_invoke(e.process, input).expect("valid history");
            }
            EventType::Ok => {
                let op = by_return[&e.index];
                let (_, ret) = S::decode(op).expect("decodes");
                tester
                    .on_return(e.process, ret.expect("ok has a return"))
                    .expect("valid history");
            }
            EventType::Fail | EventType::Info => {}
        }
    }
    tester.is_consistent()
}

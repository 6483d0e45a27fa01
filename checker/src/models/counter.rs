//! A counter: Jepsen's counter workload (`add` a delta, `read` the total).
//!
//! `add` carries an integer delta; `read` invokes with `null` and its `ok`
//! carries the integer read. The counter starts at 0.

use histories::{OpStatus, Operation};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::spec::CheckerSpec;

/// The counter's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counter(pub i64);

/// A counter operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CounterOp {
    /// Add a (possibly negative) delta.
    Add(i64),
    /// Read the value.
    Read,
}

/// What a counter operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CounterRet {
    /// The add completed.
    AddOk,
    /// The value read.
    ReadOk(i64),
}

impl SequentialSpec for Counter {
    type Op = CounterOp;
    type Ret = CounterRet;

    fn invoke(&mut self, op: &CounterOp) -> CounterRet {
        match op {
            CounterOp::Add(d) => {
                self.0 = self.0.wrapping_add(*d);
                CounterRet::AddOk
            }
            CounterOp::Read => CounterRet::ReadOk(self.0),
        }
    }
}

fn integer(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("counter {what} value must be an integer, found {v}"))
}

impl CheckerSpec for Counter {
    const NAME: &'static str = "counter";

    fn decode(op: &Operation) -> Result<(CounterOp, Option<CounterRet>), String> {
        let done = op.status == OpStatus::Ok;
        match op.f.as_str() {
            "add" => Ok((
                CounterOp::Add(integer(&op.input, "add")?),
                done.then_some(CounterRet::AddOk),
            )),
            "read" => {
                let ret = match (&op.output, done) {
                    (Some(v), true) => Some(CounterRet::ReadOk(integer(v, "read")?)),
                    _ => None,
                };
                Ok((CounterOp::Read, ret))
            }
            other => Err(format!(
                "the counter model knows add and read, not `{other}`"
            )),
        }
    }

    fn is_read_only(op: &CounterOp, _ret: Option<&CounterRet>) -> bool {
        matches!(op, CounterOp::Read | CounterOp::Add(0))
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }
}

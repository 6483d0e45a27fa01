//! A grow-only set: Jepsen's set workload (`add` elements, `read` them all).
//!
//! `add` carries the element (any JSON value); `read` invokes with `null`
//! and its `ok` carries the elements seen as an array, in any order.

use std::collections::BTreeSet;

use histories::{OpStatus, Operation};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::spec::CheckerSpec;

/// The set's elements, as canonical JSON text so they order and hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GrowSet(pub BTreeSet<String>);

/// A set operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetOp {
    /// Add an element (canonical JSON text).
    Add(String),
    /// Read every element.
    Read,
}

/// What a set operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetRet {
    /// The add completed.
    AddOk,
    /// The elements read.
    ReadOk(BTreeSet<String>),
}

impl SequentialSpec for GrowSet {
    type Op = SetOp;
    type Ret = SetRet;

    fn invoke(&mut self, op: &SetOp) -> SetRet {
        match op {
            SetOp::Add(e) => {
                self.0.insert(e.clone());
                SetRet::AddOk
            }
            SetOp::Read => SetRet::ReadOk(self.0.clone()),
        }
    }

    fn is_valid_step(&mut self, op: &SetOp, ret: &SetRet) -> bool {
        match (op, ret) {
            (SetOp::Read, SetRet::ReadOk(seen)) => &self.0 == seen,
            _ => &self.invoke(op) == ret,
        }
    }
}

impl CheckerSpec for GrowSet {
    const NAME: &'static str = "set";

    fn decode(op: &Operation) -> Result<(SetOp, Option<SetRet>), String> {
        let done = op.status == OpStatus::Ok;
        match op.f.as_str() {
            "add" => Ok((
                SetOp::Add(op.input.to_string()),
                done.then_some(SetRet::AddOk),
            )),
            "read" => {
                let ret = match (&op.output, done) {
                    (Some(Value::Array(items)), true) => {
                        Some(SetRet::ReadOk(items.iter().map(Value::to_string).collect()))
                    }
                    (Some(Value::Null), true) => Some(SetRet::ReadOk(BTreeSet::new())),
                    (Some(other), true) => {
                        return Err(format!("set read must return an array, found {other}"));
                    }
                    _ => None,
                };
                Ok((SetOp::Read, ret))
            }
            other => Err(format!("the set model knows add and read, not `{other}`")),
        }
    }

    fn is_read_only(op: &SetOp, _ret: Option<&SetRet>) -> bool {
        matches!(op, SetOp::Read)
    }

    fn describe(&self) -> String {
        format!(
            "#{{{}}}",
            self.0.iter().cloned().collect::<Vec<_>>().join(" ")
        )
    }
}

//! A read/write/compare-and-set register.
//!
//! History encoding (Jepsen's): `read` invokes with `null` and its `ok`
//! carries the value seen; `write` carries its value; `cas` carries
//! `[expected, new]` and completes `ok` when it swapped — a compare that did
//! not match is a `fail` (it did not take effect). Values are any JSON value;
//! the register starts as `null` unless built with another value.

use histories::{OpStatus, Operation};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::spec::CheckerSpec;

/// The register's state: its current value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register(pub Value);

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Read the value.
    Read,
    /// Overwrite the value.
    Write(Value),
    /// Set to `new` if the value is `expected`.
    Cas {
        /// The value compared against.
        expected: Value,
        /// The value stored on a match.
        new: Value,
    },
}

/// What a register operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterRet {
    /// The value read.
    ReadOk(Value),
    /// A write completed.
    WriteOk,
    /// The compare matched and the value was swapped.
    CasOk,
    /// The compare did not match; nothing changed.
    CasFailed,
}

impl SequentialSpec for Register {
    type Op = RegisterOp;
    type Ret = RegisterRet;

    fn invoke(&mut self, op: &RegisterOp) -> RegisterRet {
        match op {
            RegisterOp::Read => RegisterRet::ReadOk(self.0.clone()),
            RegisterOp::Write(v) => {
                self.0 = v.clone();
                RegisterRet::WriteOk
            }
            RegisterOp::Cas { expected, new } => {
                if &self.0 == expected {
                    self.0 = new.clone();
                    RegisterRet::CasOk
                } else {
                    RegisterRet::CasFailed
                }
            }
        }
    }

    fn is_valid_step(&mut self, op: &RegisterOp, ret: &RegisterRet) -> bool {
        match (op, ret) {
            (RegisterOp::Read, RegisterRet::ReadOk(v)) => &self.0 == v,
            _ => &self.invoke(op) == ret,
        }
    }
}

impl CheckerSpec for Register {
    const NAME: &'static str = "register";

    fn decode(op: &Operation) -> Result<(RegisterOp, Option<RegisterRet>), String> {
        let done = op.status == OpStatus::Ok;
        match op.f.as_str() {
            "read" => {
                let ret = match (&op.output, done) {
                    (Some(v), true) => Some(RegisterRet::ReadOk(v.clone())),
                    _ => None,
                };
                Ok((RegisterOp::Read, ret))
            }
            "write" => Ok((
                RegisterOp::Write(op.input.clone()),
                done.then_some(RegisterRet::WriteOk),
            )),
            "cas" => match &op.input {
                Value::Array(pair) if pair.len() == 2 => Ok((
                    RegisterOp::Cas {
                        expected: pair[0].clone(),
                        new: pair[1].clone(),
                    },
                    done.then_some(RegisterRet::CasOk),
                )),
                other => Err(format!("cas value must be [expected, new], found {other}")),
            },
            other => Err(format!(
                "the register model knows read, write and cas, not `{other}`"
            )),
        }
    }

    fn is_read_only(op: &RegisterOp, ret: Option<&RegisterRet>) -> bool {
        match (op, ret) {
            (RegisterOp::Read, _) => true,
            (RegisterOp::Write(_), _) => false,
            (RegisterOp::Cas { .. }, Some(RegisterRet::CasFailed)) => true,
            // Legal only when the value is `expected`, and then stores it again.
            (RegisterOp::Cas { expected, new }, _) => expected == new,
        }
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }

    fn describe_op(op: &RegisterOp, ret: Option<&RegisterRet>) -> String {
        let call = match op {
            RegisterOp::Read => "read()".to_string(),
            RegisterOp::Write(v) => format!("write({v})"),
            RegisterOp::Cas { expected, new } => format!("cas({expected}, {new})"),
        };
        let ret = match ret {
            None => "?".to_string(),
            Some(RegisterRet::ReadOk(v)) => v.to_string(),
            Some(RegisterRet::WriteOk | RegisterRet::CasOk) => "ok".to_string(),
            Some(RegisterRet::CasFailed) => "failed".to_string(),
        };
        format!("{call} -> {ret}")
    }
}

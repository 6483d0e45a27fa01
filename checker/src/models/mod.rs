//! The built-in models, and choosing one by name.
//!
//! Each is a stateright `SequentialSpec` plus [`crate::CheckerSpec`], so the
//! same specification serves `faultline model` and `faultline check`.

mod counter;
mod kv;
mod register;
mod set;

pub use counter::{Counter, CounterOp, CounterRet};
pub use kv::{KvOp, KvRet, KvValue};
pub use register::{Register, RegisterOp, RegisterRet};
pub use set::{GrowSet, SetOp, SetRet};

use histories::Operation;

use crate::check::{CheckError, CheckOptions, check_operations};
use crate::result::CheckResult;
use crate::spec::SpecModel;

/// Names accepted by [`check_with_model`], for CLI help and errors.
pub const MODEL_NAMES: &[&str] = &["register", "kv", "set", "counter"];

/// Checks operations against a built-in model chosen by name (see
/// [`MODEL_NAMES`]); the CLI's entry point.
pub fn check_with_model(
    name: &str,
    ops: &[Operation],
    options: &CheckOptions,
) -> Result<CheckResult, CheckError> {
    match name {
        "register" => check_operations(&SpecModel::new(Register::default()), ops, options),
        "kv" => check_operations(&SpecModel::new(KvValue::default()), ops, options),
        "set" => check_operations(&SpecModel::new(GrowSet::default()), ops, options),
        "counter" => check_operations(&SpecModel::new(Counter::default()), ops, options),
        other => Err(CheckError::UnknownModel {
            name: other.to_string(),
            known: MODEL_NAMES.join(", "),
        }),
    }
}

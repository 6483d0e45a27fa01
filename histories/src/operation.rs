//! Pairing invocations with their completions into operations.
//!
//! A checker reasons about operations (an interval of real time plus what it
//! did and saw), not about events. The rules, Jepsen's:
//!
//! - `invoke` opens an operation for its process; a process has at most one
//!   open operation.
//! - `ok` closes it: it took effect somewhere inside the interval and the
//!   completion's `value` is what it observed.
//! - `fail` closes it: it never took effect.
//! - `info` leaves it indeterminate: it may take effect at any time after the
//!   invocation — even after the `info` itself, a timed-out request can still
//!   be in flight — or never. The process never invokes again.
//! - an invocation with no completion at the end of the history is treated
//!   exactly like `info`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Event, EventType};

/// How an operation ended, as far as the history knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    /// Completed and took effect.
    Ok,
    /// Definitely did not take effect; checkers ignore it.
    Fail,
    /// Unknown: an `info` completion or no completion at all.
    Info,
}

/// An invocation paired with its completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Position in the vector returned by [`pair_events`], in invocation order.
    pub id: usize,
    /// The process that ran it.
    pub process: u64,
    /// Its function (`read`, `put`, ...).
    pub f: String,
    /// Its object; `None` for single-object histories.
    pub key: Option<Value>,
    /// The invocation's value (the argument).
    pub input: Value,
    /// The `ok` completion's value (what it observed); `None` unless `Ok`.
    pub output: Option<Value>,
    /// Ok, fail or indeterminate.
    pub status: OpStatus,
    /// `index` of the invoke event; orders operations in real time.
    pub call_index: u64,
    /// `time` of the invoke event, in nanoseconds.
    pub call_time: u64,
    /// `index` of the `ok`/`fail` event; `None` for indeterminate operations.
    pub return_index: Option<u64>,
    /// `time` of the `ok`/`fail` event; `None` for indeterminate operations.
    pub return_time: Option<u64>,
    /// `time` of the `info` event when there was one: when the client stopped
    /// waiting. Display only — the operation may take effect later still.
    pub info_time: Option<u64>,
}

/// Why a sequence of events cannot be paired: which event (by position in the
/// slice) and what rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairError {
    /// 0-based position of the offending event in the slice.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

/// Pairs events into operations following Jepsen's rules (see the module doc).
///
/// Also checks that `index` strictly increases and `time` never decreases, so
/// that a reordered or spliced file is refused instead of silently checked.
pub fn pair_events(events: &[Event]) -> Result<Vec<Operation>, PairError> {
    let mut ops = Vec::with_capacity(events.len() / 2 + 1);
    walk(events, Some(&mut ops))?;
    Ok(ops)
}

/// Checks that events can be paired ([`pair_events`]'s rules) without
/// building the operations: what readers run on every file.
pub fn validate_events(events: &[Event]) -> Result<(), PairError> {
    walk(events, None)
}

/// The pairing rules, building operations into `out` when given.
fn walk(events: &[Event], mut out: Option<&mut Vec<Operation>>) -> Result<(), PairError> {
    // process -> (position of its open invoke, id of its operation)
    let mut open: HashMap<u64, (usize, usize)> = HashMap::new();
    // process -> index of the info event that ended it
    let mut crashed: HashMap<u64, u64> = HashMap::new();
    let mut invokes = 0usize;
    for (position, event) in events.iter().enumerate() {
        let fail = |message: String| Err(PairError { position, message });
        if position > 0 {
            let prev = &events[position - 1];
            if event.index <= prev.index {
                return fail(format!(
                    "index {} does not increase (previous event has index {})",
                    event.index, prev.index
                ));
            }
            if event.time < prev.time {
                return fail(format!(
                    "time {} goes backwards (previous event has time {})",
                    event.time, prev.time
                ));
            }
        }
        match event.kind {
            EventType::Invoke => {
                if let Some(&(at, _)) = open.get(&event.process) {
                    return fail(format!(
                        "process {} invokes `{}` while its `{}` invoked at event {} is still open",
                        event.process, event.f, events[at].f, events[at].index
                    ));
                }
                if let Some(info_index) = crashed.get(&event.process) {
                    return fail(format!(
                        "process {} invokes again after its `info` at event {}; \
                         a process whose outcome is unknown must be replaced by a new process number",
                        event.process, info_index
                    ));
                }
                open.insert(event.process, (position, invokes));
                if let Some(ops) = out.as_deref_mut() {
                    ops.push(Operation {
                        id: invokes,
                        process: event.process,
                        f: event.f.clone(),
                        key: event.key.clone(),
                        input: event.value.clone(),
                        output: None,
                        status: OpStatus::Info,
                        call_index: event.index,
                        call_time: event.time,
                        return_index: None,
                        return_time: None,
                        info_time: None,
                    });
                }
                invokes += 1;
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some((at, id)) = open.remove(&event.process) else {
                    return fail(format!(
                        "process {} completes `{}` ({}) but has no open invocation",
                        event.process,
                        event.f,
                        event.kind.as_str()
                    ));
                };
                let invoke = &events[at];
                if invoke.f != event.f {
                    return fail(format!(
                        "process {} completes `{}` but invoked `{}` at event {}",
                        event.process, event.f, invoke.f, invoke.index
                    ));
                }
                if event.key.is_some() && event.key != invoke.key {
                    return fail(format!(
                        "process {} completes with key {} but invoked with key {} at event {}",
                        event.process,
                        show_key(&event.key),
                        show_key(&invoke.key),
                        invoke.index
                    ));
                }
                if event.kind == EventType::Info {
                    crashed.insert(event.process, event.index);
                }
                if let Some(ops) = out.as_deref_mut() {
                    let op = &mut ops[id];
                    match event.kind {
                        EventType::Ok => {
                            op.status = OpStatus::Ok;
                            op.output = Some(event.value.clone());
                            op.return_index = Some(event.index);
                            op.return_time = Some(event.time);
                        }
                        EventType::Fail => {
                            op.status = OpStatus::Fail;
                            op.return_index = Some(event.index);
                            op.return_time = Some(event.time);
                        }
                        _ => op.info_time = Some(event.time),
                    }
                }
            }
        }
    }
    Ok(())
}

fn show_key(key: &Option<Value>) -> String {
    match key {
        Some(k) => k.to_string(),
        None => "none".to_string(),
    }
}

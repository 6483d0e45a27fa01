//! The public API's promises: budgets give `unknown`, broken models and bad
//! operations give errors, users can bring their own model.

use std::collections::VecDeque;
use std::time::Duration;

use checker::models::{KvValue, Register};
use checker::synth::{KvWorkload, inject_stale_read, kv_history};
use checker::{
    CheckError, CheckOptions, Model, PartOutcome, SpecModel, UnknownReason, Verdict, check_history,
    check_with_model,
};
use histories::{Event, EventType, History, OpStatus, Operation};
use serde_json::{Value, json};

fn history(events: &[(u64, EventType, &str, Option<&str>, Value)]) -> History {
    History::new(
        events
            .iter()
            .enumerate()
            .map(|(i, (process, kind, f, key, value))| Event {
                index: i as u64,
                process: *process,
                kind: *kind,
                f: f.to_string(),
                key: key.map(|k| json!(k)),
                value: value.clone(),
                time: i as u64 * 10,
            })
            .collect(),
    )
}

fn big_kv() -> History {
    kv_history(&KvWorkload {
        clients: 20,
        ops: 2000,
        keys: 5,
        ..KvWorkload::default()
    })
}

#[test]
fn exhausted_time_budget_gives_unknown_never_a_guess() {
    let options = CheckOptions {
        time_budget: Some(Duration::ZERO),
        ..CheckOptions::default()
    };
    let r = check_history(&SpecModel::new(KvValue::default()), &big_kv(), &options).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Unknown {
            reason: UnknownReason::TimeBudget
        }
    );
    assert!(r.counterexample.is_none());
}

#[test]
fn exhausted_memory_budget_gives_unknown_instead_of_running_out() {
    let options = CheckOptions {
        memory_budget: Some(1),
        ..CheckOptions::default()
    };
    let r = check_history(&SpecModel::new(KvValue::default()), &big_kv(), &options).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Unknown {
            reason: UnknownReason::MemoryBudget
        }
    );
    assert!(r.parts.iter().all(|p| p.outcome
        == PartOutcome::Unknown {
            reason: UnknownReason::MemoryBudget
        }));
}

#[test]
fn counterexample_is_the_failing_part() {
    let h = kv_history(&KvWorkload {
        clients: 5,
        ops: 300,
        keys: 3,
        ..KvWorkload::default()
    });
    let bad = inject_stale_read(&h, 3).unwrap();
    let r = check_history(
        &SpecModel::new(KvValue::default()),
        &bad,
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let cx = r.counterexample.unwrap();
    let failing = r.parts.iter().find(|p| p.key == cx.key).unwrap();
    assert_eq!(failing.outcome, PartOutcome::NotLinearizable);
}

#[test]
fn operation_that_does_not_fit_the_model_is_a_clear_error() {
    let h = history(&[
        (0, EventType::Invoke, "put", Some("k"), json!(5)),
        (0, EventType::Ok, "put", Some("k"), json!(5)),
    ]);
    let ops = h.operations().unwrap();
    let err = check_with_model("kv", &ops, &CheckOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CheckError::Decode { op: 0, .. }), "{text}");
    assert!(text.contains("put value must be a string"), "{text}");
    let err = check_with_model("queue", &ops, &CheckOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("known models: register, kv, set, counter"),
        "{err}"
    );
}

/// A register whose writes claim to be read-only: the checker must refuse
/// to trust it rather than give a wrong verdict.
struct LyingRegister;

impl Model for LyingRegister {
    type State = Value;
    type Op = (String, Value);
    fn name(&self) -> &str {
        "lying-register"
    }
    fn init(&self) -> Value {
        Value::Null
    }
    fn decode(&self, op: &Operation) -> Result<(String, Value), String> {
        Ok((op.f.clone(), op.output.clone().unwrap_or(op.input.clone())))
    }
    fn step(&self, state: &Value, (f, v): &(String, Value)) -> Option<Value> {
        match f.as_str() {
            "write" => Some(v.clone()),
            _ => (state == v).then(|| state.clone()),
        }
    }
    fn is_read_only(&self, _op: &(String, Value)) -> bool {
        true
    }
    fn describe_state(&self, state: &Value) -> String {
        state.to_string()
    }
    fn describe_op(&self, (f, v): &(String, Value)) -> String {
        format!("{f} {v}")
    }
}

#[test]
fn model_that_lies_about_read_only_ops_is_rejected() {
    let h = history(&[
        (0, EventType::Invoke, "write", None, json!(1)),
        (0, EventType::Ok, "write", None, json!(1)),
    ]);
    let err = check_history(&LyingRegister, &h, &CheckOptions::default()).unwrap_err();
    assert!(matches!(err, CheckError::ModelContract { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("declared read-only but changed the state"),
        "{err}"
    );
}

/// A FIFO queue written directly against the `Model` trait, as a user would.
struct Queue;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum QueueOp {
    Enqueue(i64),
    /// The dequeued value, `None` when unknown (indeterminate).
    Dequeue(Option<i64>),
}

impl Model for Queue {
    type State = VecDeque<i64>;
    type Op = QueueOp;
    fn name(&self) -> &str {
        "queue"
    }
    fn init(&self) -> VecDeque<i64> {
        VecDeque::new()
    }
    fn decode(&self, op: &Operation) -> Result<QueueOp, String> {
        match op.f.as_str() {
            "enqueue" => op
                .input
                .as_i64()
                .map(QueueOp::Enqueue)
                .ok_or("enqueue needs an integer".into()),
            "dequeue" => Ok(QueueOp::Dequeue(match op.status {
                OpStatus::Ok => Some(
                    op.output
                        .as_ref()
                        .and_then(Value::as_i64)
                        .ok_or("dequeue returns an integer")?,
                ),
                _ => None,
            })),
            other => Err(format!("unknown f {other}")),
        }
    }
    fn step(&self, state: &VecDeque<i64>, op: &QueueOp) -> Option<VecDeque<i64>> {
        let mut next = state.clone();
        match op {
            QueueOp::Enqueue(v) => next.push_back(*v),
            QueueOp::Dequeue(seen) => {
                let head = next.pop_front()?;
                if seen.is_some_and(|s| s != head) {
                    return None;
                }
            }
        }
        Some(next)
    }
    fn describe_state(&self, state: &VecDeque<i64>) -> String {
        format!("{state:?}")
    }
    fn describe_op(&self, op: &QueueOp) -> String {
        format!("{op:?}")
    }
}

#[test]
fn users_can_check_against_their_own_model() {
    // Two concurrent enqueues, then two dequeues that disagree with FIFO
    // unless the enqueues are ordered 2, 1.
    let ok = history(&[
        (0, EventType::Invoke, "enqueue", None, json!(1)),
        (1, EventType::Invoke, "enqueue", None, json!(2)),
        (0, EventType::Ok, "enqueue", None, json!(1)),
        (1, EventType::Ok, "enqueue", None, json!(2)),
        (0, EventType::Invoke, "dequeue", None, json!(null)),
        (0, EventType::Ok, "dequeue", None, json!(2)),
        (0, EventType::Invoke, "dequeue", None, json!(null)),
        (0, EventType::Ok, "dequeue", None, json!(1)),
    ]);
    assert_eq!(
        check_history(&Queue, &ok, &CheckOptions::default())
            .unwrap()
            .verdict,
        Verdict::Linearizable
    );
    let mut bad = ok.clone();
    bad.events[7].value = json!(2);
    let r = check_history(&Queue, &bad, &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    // enqueue 2, enqueue 1, dequeue 2 fit; the second dequeue of 2 cannot.
    assert_eq!(r.counterexample.unwrap().stuck_state, "[1]");
}

#[test]
fn unpartitioned_check_finds_the_same_violation_in_one_part() {
    let h = history(&[
        (0, EventType::Invoke, "write", Some("a"), json!(1)),
        (0, EventType::Ok, "write", Some("a"), json!(1)),
        (1, EventType::Invoke, "write", Some("b"), json!(2)),
        (1, EventType::Ok, "write", Some("b"), json!(2)),
        (2, EventType::Invoke, "read", Some("a"), json!(null)),
        (2, EventType::Ok, "read", Some("a"), json!(2)),
    ]);
    let whole = CheckOptions {
        partition: false,
        ..CheckOptions::default()
    };
    let r = check_history(&SpecModel::new(Register::default()), &h, &whole).unwrap();
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.parts.len(), 1);
    let cx = r.counterexample.unwrap();
    assert_eq!(cx.key, None);
    assert_eq!(cx.stuck_state, "{\"a\": 1, \"b\": 2}");
}

#[test]
fn check_result_serializes_for_reports() {
    let h = history(&[
        (0, EventType::Invoke, "write", None, json!(1)),
        (0, EventType::Ok, "write", None, json!(1)),
        (1, EventType::Invoke, "read", None, json!(null)),
        (1, EventType::Ok, "read", None, json!(7)),
    ]);
    let r = check_history(
        &SpecModel::new(Register::default()),
        &h,
        &CheckOptions::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["verdict"]["verdict"], "not_linearizable");
    assert_eq!(v["counterexample"]["ops"][1]["op"]["process"], 1);
    assert_eq!(v["counterexample"]["ops"][1]["op"]["return_time"], 30);
    assert_eq!(v["counterexample"]["longest_prefix"][0]["state_after"], "1");
}

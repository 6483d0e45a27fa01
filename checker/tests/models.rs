//! The set and counter models on small hand-written histories.

use checker::{CheckOptions, Verdict, check_with_model};
use histories::{Event, EventType, History};
use serde_json::{Value, json};

/// (process, type, f, value) in order, one time unit apart.
fn history(events: &[(u64, EventType, &str, Value)]) -> History {
    History::new(
        events
            .iter()
            .enumerate()
            .map(|(i, (process, kind, f, value))| Event {
                index: i as u64,
                process: *process,
                kind: *kind,
                f: f.to_string(),
                key: None,
                value: value.clone(),
                time: i as u64,
            })
            .collect(),
    )
}

fn verdict(model: &str, h: &History) -> Verdict {
    check_with_model(model, &h.operations().unwrap(), &CheckOptions::default())
        .unwrap()
        .verdict
}

use EventType::{Info, Invoke, Ok};

#[test]
fn set_read_must_contain_every_completed_add() {
    let complete = history(&[
        (0, Invoke, "add", json!(1)),
        (0, Ok, "add", json!(1)),
        (1, Invoke, "add", json!(2)),
        (2, Invoke, "read", json!(null)),
        (2, Ok, "read", json!([2, 1])),
        (1, Ok, "add", json!(2)),
    ]);
    assert_eq!(
        verdict("set", &complete),
        Verdict::Linearizable,
        "order of elements is irrelevant"
    );
    let lost = history(&[
        (0, Invoke, "add", json!(1)),
        (0, Ok, "add", json!(1)),
        (2, Invoke, "read", json!(null)),
        (2, Ok, "read", json!([])),
    ]);
    assert_eq!(verdict("set", &lost), Verdict::NotLinearizable);
}

#[test]
fn set_add_that_timed_out_may_or_may_not_be_read() {
    for seen in [json!([7]), json!([])] {
        let h = history(&[
            (0, Invoke, "add", json!(7)),
            (0, Info, "add", json!(7)),
            (1, Invoke, "read", json!(null)),
            (1, Ok, "read", seen.clone()),
        ]);
        assert_eq!(verdict("set", &h), Verdict::Linearizable, "{seen}");
    }
}

#[test]
fn counter_reads_follow_the_adds() {
    let ok = history(&[
        (0, Invoke, "add", json!(2)),
        (1, Invoke, "add", json!(3)),
        (2, Invoke, "read", json!(null)),
        (2, Ok, "read", json!(3)),
        (0, Ok, "add", json!(2)),
        (1, Ok, "add", json!(3)),
        (2, Invoke, "read", json!(null)),
        (2, Ok, "read", json!(5)),
    ]);
    assert_eq!(verdict("counter", &ok), Verdict::Linearizable);
    let impossible = history(&[
        (0, Invoke, "add", json!(2)),
        (0, Ok, "add", json!(2)),
        (2, Invoke, "read", json!(null)),
        (2, Ok, "read", json!(3)),
    ]);
    assert_eq!(verdict("counter", &impossible), Verdict::NotLinearizable);
}

#[test]
fn counter_value_must_be_an_integer() {
    let h = history(&[
        (0, Invoke, "add", json!("two")),
        (0, Ok, "add", json!("two")),
    ]);
    let err = check_with_model(
        "counter",
        &h.operations().unwrap(),
        &CheckOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be an integer"), "{err}");
}

//! What the suite checks on a recorded run.

use std::time::Duration;

use checker::{CheckOptions, Verdict, check_with_model};
use histories::{ReadOptions, read_jsonl_file};

use super::workload::{Journal, Outcome};

/// The classic lab property for a key only ever appended to by one
/// sequential client: in the final value every acknowledged append appears
/// exactly once, in order; an append of unknown outcome appears at most once
/// and not before anything acknowledged before it was invoked; a failed
/// append never appears; nothing else appears.
pub fn appends_exactly_once(journal: &Journal, key: &str, final_value: Option<&str>) {
    let appends = journal.appends_to(key);
    let mut rest = final_value.unwrap_or("");
    // Position in `appends` of each value found, in final-value order.
    let mut found: Vec<usize> = Vec::new();
    while !rest.is_empty() {
        let Some(index) = appends
            .iter()
            .position(|(v, _)| rest.starts_with(v.as_str()))
        else {
            panic!(
                "{key}: unexpected text at {:?} in the final value {final_value:?}",
                truncate(rest)
            );
        };
        assert!(
            !found.contains(&index),
            "{key}: append {:?} applied twice",
            appends[index].0
        );
        let (value, outcome) = &appends[index];
        assert_ne!(
            *outcome,
            Outcome::Failed,
            "{key}: append {value:?} failed definitely, yet was applied"
        );
        found.push(index);
        rest = &rest[value.len()..];
    }
    for (index, (value, outcome)) in appends.iter().enumerate() {
        if *outcome == Outcome::Ok {
            assert!(
                found.contains(&index),
                "{key}: acknowledged append {value:?} is lost"
            );
        }
    }
    // Each applied append comes after every acknowledged append invoked
    // before it.
    for (position, &index) in found.iter().enumerate() {
        for &earlier in &found[position + 1..] {
            if earlier < index {
                assert_ne!(
                    appends[earlier].1,
                    Outcome::Ok,
                    "{key}: acknowledged append {:?} applied after the later {:?}",
                    appends[earlier].0,
                    appends[index].0
                );
            }
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Checks the recorded history for linearizability against the kv model,
/// partitioned by key; panics with the counterexample if it is not.
pub fn linearizable(journal: &Journal) {
    let history =
        read_jsonl_file(journal.path(), ReadOptions::default()).expect("read the history back");
    let operations = history.operations().expect("a well-formed history");
    let options = CheckOptions {
        time_budget: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    let started = std::time::Instant::now();
    let result = check_with_model("kv", &operations, &options).expect("kv model fits the history");
    eprintln!(
        "checked {} operations of {} for linearizability in {:?}: {:?}",
        operations.len(),
        journal.path().display(),
        started.elapsed(),
        result.verdict
    );
    match result.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable => {
            let counterexample = result
                .counterexample
                .map(|c| c.to_string())
                .unwrap_or_else(|| "(no counterexample)".to_string());
            panic!(
                "history {} is not linearizable ({} operations):\n{counterexample}",
                journal.path().display(),
                operations.len()
            );
        }
        Verdict::Unknown { reason } => {
            panic!(
                "could not decide linearizability of {} ({} operations): {reason:?}",
                journal.path().display(),
                operations.len()
            )
        }
    }
}

//! The classic small examples, as files in every supported format.

use std::path::PathBuf;

use checker::{CheckOptions, CheckResult, Verdict, check_with_model};
use histories::{ReadOptions, read_file};

fn check_fixture(name: &str, model: &str) -> CheckResult {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let history =
        read_file(&path, ReadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ops = history.operations().expect("fixture pairs");
    check_with_model(model, &ops, &CheckOptions::default()).expect("fixture checks")
}

fn assert_verdict(name: &str, model: &str, expected: Verdict) -> CheckResult {
    let result = check_fixture(name, model);
    assert_eq!(result.verdict, expected, "{name}");
    assert_eq!(
        result.counterexample.is_some(),
        expected == Verdict::NotLinearizable,
        "{name}: a counterexample exactly when not linearizable"
    );
    result
}

#[test]
fn stale_read_after_a_completed_write_is_caught_and_explained() {
    let r = assert_verdict(
        "register_stale_read.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
    let cx = r.counterexample.unwrap();
    assert_eq!(cx.key, None);
    assert_eq!(cx.ops.len(), 2);
    assert_eq!(cx.initial_state, "null");
    assert_eq!(cx.longest_prefix.len(), 1);
    assert_eq!(cx.longest_prefix[0].op, 0);
    assert_eq!(cx.longest_prefix[0].state_after, "1");
    assert_eq!(cx.stuck_state, "1");
    assert_eq!(cx.candidates.len(), 1);
    assert_eq!(cx.candidates[0].op, 1);
    assert_eq!(
        cx.candidates[0].state_after, None,
        "the read of null is impossible in state 1"
    );
    assert_eq!(cx.blocking_op, Some(1));
    assert_eq!(cx.ops[1].description, "read() -> null");
    let text = cx.to_string();
    assert!(text.contains("impossible in this state"), "{text}");
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    assert_verdict(
        "register_concurrent_writes_first_wins.jsonl",
        "register",
        Verdict::Linearizable,
    );
    assert_verdict(
        "register_concurrent_writes_second_wins.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn reads_cannot_flip_between_two_concurrent_writes() {
    let r = assert_verdict(
        "register_reads_flip_flop.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
    let cx = r.counterexample.unwrap();
    // Both writes (1 then 2) and the first read of 2 fit; then nothing can
    // make the next read see 1.
    assert_eq!(cx.longest_prefix.len(), 3);
    assert_eq!(cx.longest_prefix[2].op, 2);
    assert_eq!(cx.blocking_op, Some(3));
}

#[test]
fn indeterminate_write_seen_by_a_read_is_placed() {
    assert_verdict(
        "register_info_must_be_placed.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn indeterminate_write_may_take_effect_after_the_client_gave_up() {
    assert_verdict(
        "register_info_lands_after_timeout.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn indeterminate_write_never_seen_may_never_take_effect() {
    assert_verdict(
        "register_info_never_took_effect.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn indeterminate_write_cannot_take_effect_before_its_invocation() {
    assert_verdict(
        "register_info_before_its_invoke.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
}

#[test]
fn indeterminate_write_takes_effect_at_most_once() {
    assert_verdict(
        "register_info_seen_then_unseen.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
}

#[test]
fn failed_write_never_took_effect() {
    let r = assert_verdict(
        "register_failed_write_seen.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
    let cx = r.counterexample.unwrap();
    assert_eq!(cx.ops.len(), 2, "the failed op is shown");
    assert_eq!(cx.ops[0].description, "write(1) -> fail");
    assert!(cx.longest_prefix.is_empty());
    assert_verdict(
        "register_failed_write_unseen.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn invocation_without_completion_counts_as_indeterminate() {
    assert_verdict(
        "register_pending_write_seen.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn identical_completed_writes_are_not_interchangeable() {
    // write(1) twice; the later-invoked one returns early and must come
    // first, the other lands after a write of 2 was read. Treating the two
    // as interchangeable (as is sound for indeterminate ones) breaks this.
    assert_verdict(
        "register_same_value_written_twice.jsonl",
        "register",
        Verdict::Linearizable,
    );
}

#[test]
fn compare_and_set_chain_and_impossible_swap() {
    assert_verdict(
        "register_cas_chain.jsonl",
        "register",
        Verdict::Linearizable,
    );
    assert_verdict(
        "register_cas_from_wrong_value.jsonl",
        "register",
        Verdict::NotLinearizable,
    );
}

#[test]
fn lost_append_is_caught_on_its_key() {
    let r = assert_verdict("kv_lost_append.jsonl", "kv", Verdict::NotLinearizable);
    assert_eq!(r.counterexample.unwrap().key, Some(serde_json::json!("x")));
}

#[test]
fn lab_style_edn_kv_histories_check_per_key() {
    let r = assert_verdict("kv_lab_style_ok.edn", "kv", Verdict::Linearizable);
    assert_eq!(r.parts.len(), 2);
    let r = assert_verdict("kv_lab_style_bad.edn", "kv", Verdict::NotLinearizable);
    let cx = r.counterexample.unwrap();
    assert_eq!(cx.key, Some(serde_json::json!("0")));
    // The model refutes the stale get outright: both appends completed
    // before it began, yet it saw only one.
    let why = cx.explanation.as_deref().unwrap_or_default();
    assert!(why.contains("missing the append of \"x 0 0 y\""), "{why}");
    assert_eq!(cx.blocking_op, Some(cx.ops.last().unwrap().op.id));
    assert!(cx.to_string().contains(why));
}

#[test]
fn jepsen_edn_history_with_nemesis_and_timed_out_cas() {
    let r = assert_verdict("register_jepsen.edn", "register", Verdict::NotLinearizable);
    let cx = r.counterexample.unwrap();
    assert_eq!(cx.ops.len(), 4, "the nemesis op is not a client operation");
    // write 3, the timed-out cas 3 -> 4, the read of 4: then 3 cannot be read.
    assert_eq!(cx.longest_prefix.len(), 3);
    assert_eq!(cx.stuck_state, "4");
}

#[test]
fn jepsen_text_logs_follow_jepsen_semantics() {
    // A cas that failed did not happen: nobody can read its value.
    assert_verdict(
        "register_etcd_style_failed_cas_seen.log",
        "register",
        Verdict::NotLinearizable,
    );
    // One that timed out may have happened; a read that timed out says nothing.
    assert_verdict(
        "register_etcd_style_timed_out_cas_seen.log",
        "register",
        Verdict::Linearizable,
    );
}

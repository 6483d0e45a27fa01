//! Property tests: histories generated from a correct store are always
//! linearizable; the same histories with a stale or phantom read never are;
//! and the checker's shortcuts (partitioning, hints, read-only reduction,
//! threads) never change a verdict.

mod common;

use checker::models::{KvValue, Register};
use checker::synth::{
    KvWorkload, RegisterWorkload, inject_phantom_read, inject_stale_read, kv_history,
    register_history,
};
use checker::{CheckOptions, SpecModel, Verdict, check_history};
use common::{NoHints, NoReduction, scramble_reads, verdict};
use histories::{ReadOptions, read_edn, read_jsonl, write_edn, write_jsonl};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::json;

fn kv_workload() -> impl Strategy<Value = KvWorkload> {
    (
        1usize..8,
        5usize..250,
        1usize..4,
        0.0f64..0.3,
        0.0f64..0.1,
        0.0f64..0.1,
        any::<u64>(),
    )
        .prop_map(
            |(clients, ops, keys, put_ratio, info_ratio, fail_ratio, seed)| KvWorkload {
                clients,
                ops,
                keys,
                get_ratio: 0.4,
                put_ratio,
                info_ratio,
                fail_ratio,
                latency_ns: 1_000,
                seed,
            },
        )
}

fn register_workload() -> impl Strategy<Value = RegisterWorkload> {
    (1usize..6, 5usize..120, 2u64..6, 0.0f64..0.2, any::<u64>()).prop_map(
        |(clients, ops, values, info_ratio, seed)| RegisterWorkload {
            clients,
            ops,
            values,
            read_ratio: 0.4,
            write_ratio: 0.3,
            info_ratio,
            latency_ns: 1_000,
            seed,
        },
    )
}

proptest! {
    // A fixed seed: the same cases on every run, so a slow or failing case
    // reproduces instead of coming and going.
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: RngSeed::Fixed(0x5EED_FA17),
        ..ProptestConfig::default()
    })]

    #[test]
    fn kv_history_from_a_correct_store_is_linearizable(w in kv_workload()) {
        let h = kv_history(&w);
        prop_assert_eq!(verdict(&SpecModel::new(KvValue::default()), &h), Verdict::Linearizable);
    }

    #[test]
    fn kv_stale_read_is_never_linearizable(w in kv_workload(), seed in any::<u64>()) {
        let h = kv_history(&w);
        if let Some(bad) = inject_stale_read(&h, seed) {
            prop_assert_eq!(verdict(&SpecModel::new(KvValue::default()), &bad), Verdict::NotLinearizable);
        }
    }

    #[test]
    fn kv_phantom_read_is_never_linearizable(w in kv_workload(), seed in any::<u64>()) {
        let h = kv_history(&w);
        if let Some(bad) = inject_phantom_read(&h, json!("x never written y"), seed) {
            prop_assert_eq!(verdict(&SpecModel::new(KvValue::default()), &bad), Verdict::NotLinearizable);
        }
    }

    #[test]
    fn register_history_from_a_correct_store_is_linearizable(w in register_workload()) {
        let h = register_history(&w);
        prop_assert_eq!(verdict(&SpecModel::new(Register::default()), &h), Verdict::Linearizable);
    }

    #[test]
    fn register_phantom_read_is_never_linearizable(w in register_workload(), seed in any::<u64>()) {
        let h = register_history(&w);
        if let Some(bad) = inject_phantom_read(&h, json!(999), seed) {
            prop_assert_eq!(verdict(&SpecModel::new(Register::default()), &bad), Verdict::NotLinearizable);
        }
    }

    /// Hints and the read-only reduction are shortcuts: with or without them
    /// the verdict is the same, on histories of both kinds.
    #[test]
    fn kv_shortcuts_never_change_the_verdict(w in kv_workload(), seed in any::<u64>()) {
        let w = KvWorkload { ops: w.ops.min(60), ..w };
        let domain = [json!(null), json!("x 0 0 y"), json!("x 1 0 y"), json!("x 0 0 yx 1 0 y"), json!("x 1 0 yx 0 0 y"), json!("x 0 1 y")];
        let h = scramble_reads(&kv_history(&w), seed, &domain);
        let fast = verdict(&SpecModel::new(KvValue::default()), &h);
        prop_assert_eq!(verdict(&NoHints(SpecModel::new(KvValue::default())), &h), fast.clone());
        prop_assert_eq!(verdict(&NoReduction(SpecModel::new(KvValue::default())), &h), fast.clone());
        let whole = CheckOptions { partition: false, threads: 1, ..CheckOptions::default() };
        let unpartitioned = check_history(&SpecModel::new(KvValue::default()), &h, &whole).unwrap().verdict;
        prop_assert_eq!(unpartitioned, fast);
    }

    #[test]
    fn register_reduction_never_changes_the_verdict(w in register_workload(), seed in any::<u64>()) {
        let w = RegisterWorkload { ops: w.ops.min(40), ..w };
        let domain = [json!(null), json!(0), json!(1), json!(2)];
        let h = scramble_reads(&register_history(&w), seed, &domain);
        let fast = verdict(&SpecModel::new(Register::default()), &h);
        prop_assert_eq!(verdict(&NoReduction(SpecModel::new(Register::default())), &h), fast);
    }

    /// Which counterexample is reported does not depend on thread timing.
    #[test]
    fn result_is_the_same_on_any_number_of_threads(w in kv_workload(), seed in any::<u64>()) {
        let w = KvWorkload { keys: w.keys + 3, ..w };
        let h = kv_history(&w);
        let h = inject_stale_read(&h, seed).unwrap_or(h);
        let model = SpecModel::new(KvValue::default());
        let one = check_history(&model, &h, &CheckOptions { threads: 1, ..CheckOptions::default() }).unwrap();
        let four = check_history(&model, &h, &CheckOptions { threads: 4, ..CheckOptions::default() }).unwrap();
        prop_assert_eq!(&one.verdict, &four.verdict);
        prop_assert_eq!(&one.counterexample, &four.counterexample);
    }

    #[test]
    fn generated_histories_round_trip_through_jsonl_and_edn(w in kv_workload()) {
        let h = kv_history(&w);
        let mut jsonl = Vec::new();
        write_jsonl(&h, &mut jsonl).unwrap();
        prop_assert_eq!(&read_jsonl(jsonl.as_slice(), ReadOptions::default()).unwrap(), &h);
        let mut edn = Vec::new();
        write_edn(&h, &mut edn).unwrap();
        prop_assert_eq!(&read_edn(std::str::from_utf8(&edn).unwrap()).unwrap(), &h);
    }
}

//! Proof that the randomized checker has teeth: with a known protocol bug
//! injected, it must find a failing seed quickly. Runs only with
//! `cargo test -p raft --features bug-injection`.

#![cfg(feature = "bug-injection")]

mod common;

use common::Family;
use raft::Bugs;
use raft::sim::SimError;

/// Runs seeds until one fails; returns (seed, error).
fn first_failure(bugs: Bugs, family: Family, max_seeds: u64) -> Option<(u64, SimError)> {
    (0..max_seeds).find_map(|seed| {
        common::run_schedule(seed, Some(family), |opts| opts.node_config.bugs = bugs)
            .err()
            .map(|e| (seed, e))
    })
}

fn assert_caught(name: &str, bugs: Bugs, family: Family, max_seeds: u64) {
    match first_failure(bugs, family, max_seeds) {
        Some((seed, e)) => eprintln!("{name}: caught at seed {seed}: {e}"),
        None => panic!("{name}: not caught within {max_seeds} seeds"),
    }
}

#[test]
fn granting_votes_without_up_to_date_check_is_caught() {
    let bugs = Bugs {
        skip_up_to_date_check: true,
        ..Bugs::default()
    };
    assert_caught("skip_up_to_date_check", bugs, Family::MixedFaults, 100);
}

#[test]
fn committing_previous_term_entries_by_counting_is_caught() {
    let bugs = Bugs {
        commit_previous_term: true,
        ..Bugs::default()
    };
    assert_caught("commit_previous_term", bugs, Family::LeaderChurn, 1000);
}

#[test]
fn keeping_conflicting_entries_is_caught() {
    let bugs = Bugs {
        no_truncate_on_conflict: true,
        ..Bugs::default()
    };
    assert_caught("no_truncate_on_conflict", bugs, Family::MixedFaults, 100);
}

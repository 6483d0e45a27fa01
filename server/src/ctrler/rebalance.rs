//! Spreading shards over groups: as evenly as possible, moving as few shards
//! as possible, the same way on every replica.
//!
//! With `n` groups and `N` shards every group should own `N / n` shards, and
//! `N % n` of them one more. A shard must move if its owner is gone (or it
//! was never assigned), or if its owner holds more than its target. So the
//! number of moves is fixed by who receives the `+1` targets: giving them to
//! the groups that already hold the most shards leaves the least excess, and
//! that choice is optimal. Then each group over its target gives up its
//! highest-numbered shards, and the freed shards (lowest number first) fill
//! the groups under their target, lowest gid first.
//!
//! Every tie is broken by gid or shard number, never by hash-map order, so
//! the same input always gives the same assignment.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use wire::GroupId;

/// Reassigns `shards` (`shards[s]` = owner of shard `s`, 0 = none) to the
/// `groups`, as evenly as possible with the fewest owner changes. With no
/// groups every shard goes back to gid 0.
pub(crate) fn rebalance(shards: &mut [GroupId], groups: &BTreeSet<GroupId>) {
    if groups.is_empty() {
        shards.fill(0);
        return;
    }
    let mut owned: BTreeMap<GroupId, Vec<usize>> =
        groups.iter().map(|&g| (g, Vec::new())).collect();
    let mut free = Vec::new();
    for (shard, gid) in shards.iter().enumerate() {
        match owned.get_mut(gid) {
            Some(list) => list.push(shard),
            None => free.push(shard),
        }
    }
    let targets = targets(&owned, shards.len());
    for (gid, list) in &mut owned {
        let target = targets[gid];
        if list.len() > target {
            // `list` is in shard order: the highest-numbered shards go.
            free.extend(list.drain(target..));
        }
    }
    free.sort_unstable();
    let mut free = free.into_iter();
    for (gid, list) in &owned {
        for _ in list.len()..targets[gid] {
            if let Some(shard) = free.next() {
                shards[shard] = *gid;
            }
        }
    }
}

/// How many shards each group should own: `total / n` each, plus one for
/// the `total % n` groups holding the most now (ties: lower gid first).
fn targets(owned: &BTreeMap<GroupId, Vec<usize>>, total: usize) -> BTreeMap<GroupId, usize> {
    let n = owned.len();
    let (base, extra) = (total / n, total % n);
    let mut order: Vec<(GroupId, usize)> = owned.iter().map(|(&g, list)| (g, list.len())).collect();
    order.sort_by_key(|&(gid, held)| (Reverse(held), gid));
    order
        .into_iter()
        .enumerate()
        .map(|(rank, (gid, _))| (gid, base + usize::from(rank < extra)))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const N: usize = 10;

    fn set(gids: &[GroupId]) -> BTreeSet<GroupId> {
        gids.iter().copied().collect()
    }

    fn counts(shards: &[GroupId]) -> BTreeMap<GroupId, usize> {
        let mut c = BTreeMap::new();
        for &g in shards {
            *c.entry(g).or_default() += 1;
        }
        c
    }

    fn moves(before: &[GroupId], after: &[GroupId]) -> usize {
        before.iter().zip(after).filter(|(a, b)| a != b).count()
    }

    /// The fewest owner changes any even assignment needs, found by trying
    /// every choice of which groups get the `+1` (independent of the
    /// algorithm's greedy choice).
    fn fewest_moves(before: &[GroupId], groups: &BTreeSet<GroupId>) -> usize {
        if groups.is_empty() {
            return before.iter().filter(|&&g| g != 0).count();
        }
        let held = counts(before);
        let gids: Vec<GroupId> = groups.iter().copied().collect();
        let (base, extra) = (before.len() / gids.len(), before.len() % gids.len());
        let mut best_kept = 0;
        for mask in 0u32..(1 << gids.len()) {
            if mask.count_ones() as usize != extra {
                continue;
            }
            let kept: usize = gids
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let target = base + usize::from(mask & (1 << i) != 0);
                    held.get(g).copied().unwrap_or(0).min(target)
                })
                .sum();
            best_kept = best_kept.max(kept);
        }
        before.len() - best_kept
    }

    fn assert_even(shards: &[GroupId], groups: &BTreeSet<GroupId>) {
        let c = counts(shards);
        assert!(
            shards.iter().all(|g| groups.contains(g)),
            "{shards:?} uses a group outside {groups:?}"
        );
        let per_group: Vec<usize> = groups
            .iter()
            .map(|g| c.get(g).copied().unwrap_or(0))
            .collect();
        let (min, max) = (per_group.iter().min(), per_group.iter().max());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 1),
            "uneven: {per_group:?} for {shards:?}"
        );
    }

    #[test]
    fn first_join_takes_every_shard() {
        let mut shards = [0; N];
        rebalance(&mut shards, &set(&[7]));
        assert_eq!(shards, [7; N]);
    }

    #[test]
    fn joins_move_only_what_the_newcomer_needs() {
        let mut shards = [1; N];
        rebalance(&mut shards, &set(&[1, 2]));
        assert_eq!(counts(&shards), BTreeMap::from([(1, 5), (2, 5)]));
        assert_eq!(moves(&[1; N], &shards), 5);
        let before = shards;
        rebalance(&mut shards, &set(&[1, 2, 3]));
        assert_even(&shards, &set(&[1, 2, 3]));
        // 10 over 3 is 4+3+3: the newcomer needs 3, and only those 3 move.
        assert_eq!(moves(&before, &shards), 3);
        assert_eq!(counts(&shards)[&3], 3);
    }

    #[test]
    fn leave_hands_out_only_the_leavers_shards() {
        let mut shards = [0; N];
        rebalance(&mut shards, &set(&[1, 2, 3]));
        let before = shards;
        rebalance(&mut shards, &set(&[1, 3]));
        assert_even(&shards, &set(&[1, 3]));
        for s in 0..N {
            if before[s] != 2 {
                assert_eq!(before[s], shards[s], "shard {s} of a staying group moved");
            }
        }
    }

    #[test]
    fn multi_join_and_multi_leave_are_minimal() {
        let mut shards = [0; N];
        rebalance(&mut shards, &set(&[1]));
        let before = shards;
        rebalance(&mut shards, &set(&[1, 2, 3, 4]));
        assert_even(&shards, &set(&[1, 2, 3, 4]));
        assert_eq!(
            moves(&before, &shards),
            fewest_moves(&before, &set(&[1, 2, 3, 4]))
        );
        assert_eq!(moves(&before, &shards), 7);
        let before = shards;
        rebalance(&mut shards, &set(&[1, 4]));
        assert_even(&shards, &set(&[1, 4]));
        assert_eq!(
            moves(&before, &shards),
            fewest_moves(&before, &set(&[1, 4]))
        );
    }

    #[test]
    fn more_groups_than_shards_leaves_some_groups_empty_but_serves_every_shard() {
        let groups: BTreeSet<GroupId> = (1..=12).collect();
        let mut shards = [0; N];
        rebalance(&mut shards, &groups);
        assert!(shards.iter().all(|&g| g != 0));
        assert!(counts(&shards).values().all(|&c| c == 1));
    }

    #[test]
    fn the_last_leave_unassigns_everything() {
        let mut shards = [3; N];
        rebalance(&mut shards, &BTreeSet::new());
        assert_eq!(shards, [0; N]);
    }

    #[test]
    fn an_uneven_manual_layout_is_evened_with_fewest_moves() {
        // After moves, group 1 holds 8 and group 2 holds 2.
        let before = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2];
        let mut shards = before;
        rebalance(&mut shards, &set(&[1, 2]));
        assert_even(&shards, &set(&[1, 2]));
        assert_eq!(moves(&before, &shards), 3);
    }

    #[test]
    fn same_input_same_output_regardless_of_insertion_order() {
        let a: BTreeSet<GroupId> = [5, 1, 9, 3].into_iter().collect();
        let b: BTreeSet<GroupId> = [3, 9, 1, 5].into_iter().collect();
        let (mut x, mut y) = ([0; N], [0; N]);
        rebalance(&mut x, &a);
        rebalance(&mut y, &b);
        assert_eq!(x, y);
        // Pinned, so a change of tie-breaking is noticed.
        assert_eq!(x, [1, 1, 1, 3, 3, 3, 5, 5, 9, 9]);
    }

    proptest! {
        /// Any sequence of membership changes keeps every configuration
        /// even and each step minimal.
        #[test]
        fn random_join_leave_sequences_stay_even_and_minimal(
            steps in prop::collection::vec(prop::collection::btree_set(1u64..10, 0..7), 1..25),
            nshards in 1usize..14,
        ) {
            let mut shards = vec![0; nshards];
            for groups in steps {
                let before = shards.clone();
                rebalance(&mut shards, &groups);
                if groups.is_empty() {
                    prop_assert!(shards.iter().all(|&g| g == 0));
                } else {
                    assert_even(&shards, &groups);
                }
                prop_assert_eq!(moves(&before, &shards), fewest_moves(&before, &groups));
                let mut again = before.clone();
                rebalance(&mut again, &groups);
                prop_assert_eq!(&again, &shards);
            }
        }
    }
}

//! Shared by the controller suites (`tests/ctrler_*.rs`): a controller group
//! of real `kvd --role ctrler` processes, clients for it, and the checks
//! every configuration must pass.
//!
//! Include it next to `kvd_harness` (`mod kvd_harness; mod ctrler_support;`).

#![allow(dead_code)] // each test file uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use client::{ClerkOptions, ClusterClient, CtrlerClerk, GroupId, ShardConfig};

use crate::kvd_harness::{Cluster, PATIENCE};

/// Number of shards kvd uses.
pub const NSHARDS: usize = 10;

/// Plans (does not start) a controller group of `n` nodes; `extra` flags go
/// to every node.
pub fn controllers(n: usize, extra: &[&str]) -> Cluster {
    let mut flags = vec!["--role", "ctrler"];
    flags.extend_from_slice(extra);
    Cluster::new(n, &flags)
}

/// A client for the whole group, seeded so client ids differ per test.
pub fn client(c: &Cluster, seed: u64) -> ClusterClient {
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.client_addr.clone()).collect();
    let options = ClerkOptions {
        overall_deadline: Some(PATIENCE),
        request_timeout: Duration::from_secs(2),
        seed: Some(seed),
        ..ClerkOptions::default()
    };
    ClusterClient::new(addrs, options).expect("a non-empty server list")
}

/// `gid → ["127.0.0.1:<port>"...]` for each gid: fake but distinct servers.
pub fn groups(gids: &[GroupId]) -> BTreeMap<GroupId, Vec<String>> {
    gids.iter()
        .map(|&g| {
            let servers = (0..3)
                .map(|i| format!("127.0.0.1:{}", 20_000 + g * 10 + i))
                .collect();
            (g, servers)
        })
        .collect()
}

/// Every configuration from 0 to the latest, in order.
pub async fn history(clerk: &mut CtrlerClerk) -> Vec<ShardConfig> {
    let latest = clerk.query(None).await.expect("query the latest").num;
    let mut configs = Vec::new();
    for num in 0..=latest {
        let config = clerk.query(Some(num)).await.expect("query a configuration");
        assert_eq!(config.num, num, "asked for {num}, got {config:?}");
        configs.push(config);
    }
    configs
}

/// Shards owned per group (groups owning none included).
pub fn counts(config: &ShardConfig) -> BTreeMap<GroupId, usize> {
    let mut c: BTreeMap<GroupId, usize> = config.groups.keys().map(|&g| (g, 0)).collect();
    for g in &config.shards {
        *c.entry(*g).or_default() += 1;
    }
    c
}

/// The configuration is well formed: every shard is owned by one of its
/// groups (or, with no groups, by gid 0).
pub fn assert_consistent(config: &ShardConfig) {
    assert_eq!(config.shards.len(), NSHARDS, "{config:?}");
    for (shard, gid) in config.shards.iter().enumerate() {
        if config.groups.is_empty() {
            assert_eq!(*gid, 0, "shard {shard} owned with no groups: {config:?}");
        } else {
            assert!(
                config.groups.contains_key(gid),
                "shard {shard} is on gid {gid}, which is not in {config:?}"
            );
        }
    }
}

/// Shards are spread as evenly as possible over the groups.
pub fn assert_balanced(config: &ShardConfig) {
    assert_consistent(config);
    if config.groups.is_empty() {
        return;
    }
    let c = counts(config);
    let (min, max) = (c.values().min().copied(), c.values().max().copied());
    assert!(
        max.zip(min).is_some_and(|(max, min)| max - min <= 1),
        "unbalanced: {c:?} in {config:?}"
    );
}

/// `(shard, from, to)` for every shard that changed owner.
pub fn transfers(a: &ShardConfig, b: &ShardConfig) -> Vec<(usize, GroupId, GroupId)> {
    a.shards
        .iter()
        .zip(&b.shards)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(s, (x, y))| (s, *x, *y))
        .collect()
}

/// The step from `a` to `b` (a join or leave) moved no more shards than any
/// balanced assignment of `b`'s groups would have to: computed by trying
/// every choice of which groups get the extra shard.
pub fn assert_fewest_transfers(a: &ShardConfig, b: &ShardConfig) {
    let gids: Vec<GroupId> = b.groups.keys().copied().collect();
    let moved = transfers(a, b).len();
    if gids.is_empty() {
        assert_eq!(moved, a.shards.iter().filter(|&&g| g != 0).count());
        return;
    }
    let held = counts(a);
    let (base, extra) = (NSHARDS / gids.len(), NSHARDS % gids.len());
    let mut best_kept = 0;
    for mask in 0u32..(1 << gids.len().min(16)) {
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
    assert_eq!(
        moved,
        NSHARDS - best_kept,
        "configuration {} moved more shards than needed: {a:?} -> {b:?}",
        b.num
    );
}

/// After joins into a balanced configuration, shards only move to the
/// newcomers.
pub fn assert_only_newcomers_gain(a: &ShardConfig, b: &ShardConfig) {
    let new: BTreeSet<GroupId> = b
        .groups
        .keys()
        .filter(|g| !a.groups.contains_key(g))
        .copied()
        .collect();
    for (shard, from, to) in transfers(a, b) {
        assert!(
            new.contains(&to) || from == 0,
            "shard {shard} moved from {from} to {to}, which was already in: {a:?} -> {b:?}"
        );
    }
}

/// After leaves, only the leavers' shards move.
pub fn assert_only_leavers_lose(a: &ShardConfig, b: &ShardConfig) {
    for (shard, from, to) in transfers(a, b) {
        assert!(
            !b.groups.contains_key(&from),
            "shard {shard} moved from {from} (still in) to {to}: {a:?} -> {b:?}"
        );
    }
}

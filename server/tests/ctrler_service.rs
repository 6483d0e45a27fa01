//! The shard controller as a service: a three-node `kvd --role ctrler`
//! group over real TCP, driven through `CtrlerClerk` (the classic lab's
//! controller suite).

mod ctrler_support;
mod kvd_harness;

use std::collections::BTreeSet;

use client::{AttemptError, ClerkError, GroupId};
use ctrler_support::{
    NSHARDS, assert_balanced, assert_consistent, assert_fewest_transfers, assert_only_leavers_lose,
    assert_only_newcomers_gain, client, controllers, counts, groups, history, transfers,
};
use kvd_harness::Client;
use wire::{Op, Reply};

#[tokio::test]
async fn basic_join_and_leave_keep_every_shard_on_a_live_group() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 1).ctrler_clerk();
    let zero = ck.query(None).await.unwrap();
    assert_eq!(zero.num, 0);
    assert_eq!(zero.shards, vec![0; NSHARDS]);
    assert!(zero.groups.is_empty());

    ck.join(groups(&[1])).await.unwrap();
    let one = ck.query(None).await.unwrap();
    assert_eq!(one.num, 1);
    assert_eq!(one.shards, vec![1; NSHARDS]);
    assert_eq!(one.groups, groups(&[1]));

    ck.join(groups(&[2])).await.unwrap();
    let two = ck.query(None).await.unwrap();
    assert_balanced(&two);
    assert_eq!(counts(&two), [(1, 5), (2, 5)].into());

    ck.leave(&[1]).await.unwrap();
    let three = ck.query(None).await.unwrap();
    assert_eq!(three.shards, vec![2; NSHARDS]);
    assert_eq!(three.groups, groups(&[2]));

    ck.leave(&[2]).await.unwrap();
    let four = ck.query(None).await.unwrap();
    assert_eq!(
        (four.num, four.shards, four.groups),
        (4, vec![0; NSHARDS], Default::default())
    );
}

#[tokio::test]
async fn historical_queries_return_each_configuration_as_it_was() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 2).ctrler_clerk();
    let mut seen = vec![ck.query(None).await.unwrap()];
    for step in [&[1u64][..], &[2, 3], &[4]] {
        ck.join(groups(step)).await.unwrap();
        seen.push(ck.query(None).await.unwrap());
    }
    ck.leave(&[2]).await.unwrap();
    seen.push(ck.query(None).await.unwrap());
    ck.move_shard(0, 4).await.unwrap();
    seen.push(ck.query(None).await.unwrap());
    assert_eq!(history(&mut ck).await, seen);
    // A number beyond the latest means the latest.
    assert_eq!(ck.query(Some(1000)).await.unwrap(), seen[seen.len() - 1]);
    // Another client, on another connection, sees the same past.
    let mut other = client(&c, 3).ctrler_clerk();
    assert_eq!(history(&mut other).await, seen);
}

#[tokio::test]
async fn move_assigns_exactly_the_named_shard_and_refuses_unknown_groups() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 4).ctrler_clerk();
    ck.join(groups(&[1, 2])).await.unwrap();
    for shard in 0..NSHARDS as u32 {
        let before = ck.query(None).await.unwrap();
        let gid: GroupId = if shard % 2 == 0 { 1 } else { 2 };
        ck.move_shard(shard, gid).await.unwrap();
        let after = ck.query(None).await.unwrap();
        assert_eq!(after.num, before.num + 1);
        assert_eq!(after.shards[shard as usize], gid);
        for (s, _, _) in transfers(&before, &after) {
            assert_eq!(s, shard as usize, "move {shard} also moved shard {s}");
        }
    }
    let moved = ck.query(None).await.unwrap();
    // A join rebalances from the moved layout, and moves as little as it can.
    ck.join(groups(&[3])).await.unwrap();
    let joined = ck.query(None).await.unwrap();
    assert_balanced(&joined);
    assert_fewest_transfers(&moved, &joined);

    let latest = joined.num;
    let refused = ck.move_shard(0, 99).await.unwrap_err();
    assert!(refused.is_definite(), "{refused}");
    assert!(
        matches!(refused.last_attempt(), Some(AttemptError::BadRequest { reason, .. }) if reason.contains("99")),
        "{refused}"
    );
    let out_of_range = ck.move_shard(NSHARDS as u32, 1).await.unwrap_err();
    assert!(out_of_range.is_definite(), "{out_of_range}");
    assert_eq!(
        ck.query(None).await.unwrap().num,
        latest,
        "a refused move made a configuration"
    );
}

#[tokio::test]
async fn concurrent_joins_and_leaves_each_take_effect_exactly_once() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let cluster = client(&c, 5);
    let mut tasks = tokio::task::JoinSet::new();
    for gid in 1..=8u64 {
        let mut ck = cluster.ctrler_clerk();
        tasks.spawn(async move {
            ck.join(groups(&[gid])).await?;
            if gid % 2 == 0 {
                ck.leave(&[gid]).await?;
            }
            Ok::<_, ClerkError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("join/leave");
    }
    let mut ck = cluster.ctrler_clerk();
    let configs = history(&mut ck).await;
    // 8 joins + 4 leaves, each made exactly one configuration.
    assert_eq!(configs.len(), 1 + 8 + 4);
    let latest = &configs[configs.len() - 1];
    assert_eq!(latest.groups, groups(&[1, 3, 5, 7]));
    for pair in configs.windows(2) {
        assert_balanced(&pair[1]);
        assert_fewest_transfers(&pair[0], &pair[1]);
    }
}

#[tokio::test]
async fn joins_transfer_only_the_newcomers_share() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 6).ctrler_clerk();
    ck.join(groups(&[1])).await.unwrap();
    for gid in 2..=NSHARDS as u64 + 2 {
        let before = ck.query(None).await.unwrap();
        ck.join(groups(&[gid])).await.unwrap();
        let after = ck.query(None).await.unwrap();
        assert_balanced(&after);
        assert_only_newcomers_gain(&before, &after);
        assert_fewest_transfers(&before, &after);
        assert_eq!(transfers(&before, &after).len(), counts(&after)[&gid]);
    }
}

#[tokio::test]
async fn leaves_transfer_only_the_leavers_shards() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 7).ctrler_clerk();
    let all: Vec<GroupId> = (1..=12).collect();
    ck.join(groups(&all)).await.unwrap();
    for gid in all {
        let before = ck.query(None).await.unwrap();
        ck.leave(&[gid]).await.unwrap();
        let after = ck.query(None).await.unwrap();
        assert_balanced(&after);
        assert_only_leavers_lose(&before, &after);
        assert_fewest_transfers(&before, &after);
    }
    assert_eq!(ck.query(None).await.unwrap().shards, vec![0; NSHARDS]);
}

#[tokio::test]
async fn multi_group_joins_and_leaves_are_balanced_with_fewest_transfers() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 8).ctrler_clerk();
    let steps: [(&[GroupId], bool); 6] = [
        (&[1, 2, 3], true),
        (&[4, 5], true),
        (&[1, 4], false),
        (&[6, 7, 8, 9], true),
        (&[2, 3, 5, 6], false),
        (&[7, 8, 9], false),
    ];
    for (gids, join) in steps {
        let before = ck.query(None).await.unwrap();
        if join {
            ck.join(groups(gids)).await.unwrap();
        } else {
            ck.leave(gids).await.unwrap();
        }
        let after = ck.query(None).await.unwrap();
        assert_eq!(after.num, before.num + 1, "one configuration per call");
        assert_balanced(&after);
        assert_fewest_transfers(&before, &after);
        if join {
            assert_only_newcomers_gain(&before, &after);
            assert!(gids.iter().all(|g| after.groups.contains_key(g)));
        } else {
            assert_only_leavers_lose(&before, &after);
            assert!(gids.iter().all(|g| !after.groups.contains_key(g)));
        }
    }
    assert!(ck.query(None).await.unwrap().groups.is_empty());
}

#[tokio::test]
async fn concurrent_multi_joins_and_leaves_keep_every_step_minimal() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let cluster = client(&c, 9);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4u64 {
        let mut ck = cluster.ctrler_clerk();
        tasks.spawn(async move {
            let mine = [worker * 10 + 1, worker * 10 + 2, worker * 10 + 3];
            ck.join(groups(&mine)).await?;
            ck.leave(&mine[..2]).await?;
            ck.join(groups(&mine[..1])).await?;
            Ok::<_, ClerkError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("multi join/leave");
    }
    let mut ck = cluster.ctrler_clerk();
    let configs = history(&mut ck).await;
    assert_eq!(configs.len(), 1 + 4 * 3);
    let expected: BTreeSet<GroupId> = (0..4).flat_map(|w| [w * 10 + 1, w * 10 + 3]).collect();
    let latest = &configs[configs.len() - 1];
    assert_eq!(
        latest.groups.keys().copied().collect::<BTreeSet<_>>(),
        expected
    );
    for pair in configs.windows(2) {
        assert_balanced(&pair[1]);
        assert_fewest_transfers(&pair[0], &pair[1]);
    }
}

#[tokio::test]
async fn a_retried_write_keeps_its_first_answer_and_applies_once() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let mut ck = client(&c, 10).ctrler_clerk();
    ck.join(groups(&[1])).await.unwrap();
    // The same session and seq, sent again by hand: no second configuration.
    let join = Op::Join {
        groups: groups(&[2]),
        client_id: 4242,
        seq: 1,
    };
    assert_eq!(c.call(join.clone()).await, Reply::Ok);
    assert_eq!(c.call(join).await, Reply::Ok);
    let latest = ck.query(None).await.unwrap();
    assert_eq!(latest.num, 2);
    // A refused write is refused again on retry, even though the state now
    // allows it: the retry is the same write, not a new one.
    let leave = Op::Leave {
        gids: vec![3],
        client_id: 4343,
        seq: 1,
    };
    let leader = c.leader().await;
    let mut raw = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    let first = raw.call(leave.clone()).await.unwrap();
    assert!(matches!(first, Reply::BadRequest { .. }), "{first:?}");
    ck.join(groups(&[3])).await.unwrap();
    assert_eq!(raw.call(leave).await.unwrap(), first);
    let latest = ck.query(None).await.unwrap();
    assert!(latest.groups.contains_key(&3));
    assert_consistent(&latest);
}

#[tokio::test]
async fn controller_and_kv_nodes_refuse_each_others_operations() {
    let mut ctrl = controllers(1, &[]);
    let mut kv = kvd_harness::Cluster::new(1, &[]);
    ctrl.start_all().await;
    kv.start_all().await;
    ctrl.leader().await;
    kv.leader().await;
    let mut to_ctrl = Client::connect(&ctrl.nodes[0].client_addr).await.unwrap();
    let mut to_kv = Client::connect(&kv.nodes[0].client_addr).await.unwrap();
    let kv_ops = [
        Op::Get { key: "k".into() },
        Op::Put {
            key: "k".into(),
            value: "v".into(),
            client_id: 1,
            seq: 1,
        },
    ];
    for op in kv_ops {
        let reply = to_ctrl.call(op.clone()).await.unwrap();
        assert!(
            matches!(&reply, Reply::BadRequest { reason } if reason.contains("ctrler node")),
            "{op:?} -> {reply:?}"
        );
    }
    let ctrl_ops = [
        Op::Query { num: None },
        Op::Join {
            groups: groups(&[1]),
            client_id: 1,
            seq: 1,
        },
        Op::Leave {
            gids: vec![1],
            client_id: 1,
            seq: 2,
        },
        Op::Move {
            shard: 0,
            gid: 1,
            client_id: 1,
            seq: 3,
        },
    ];
    for op in ctrl_ops {
        let reply = to_kv.call(op.clone()).await.unwrap();
        assert!(
            matches!(&reply, Reply::BadRequest { reason } if reason.contains("kv node")),
            "{op:?} -> {reply:?}"
        );
    }
    // Both still serve their own operations.
    assert!(matches!(
        to_ctrl.call(Op::Query { num: None }).await.unwrap(),
        Reply::Config(_)
    ));
    assert!(matches!(
        to_kv.call(Op::Get { key: "k".into() }).await.unwrap(),
        Reply::Value { .. }
    ));
}

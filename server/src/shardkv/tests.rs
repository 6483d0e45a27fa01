//! The migration protocol, step by step, on two groups' state machines.

use super::*;

const A: GroupId = 100;
const B: GroupId = 101;

fn group(gid: GroupId) -> ShardGroup {
    ShardGroup::new(&GroupEnv { gid })
}

/// Configuration `num` where `owners[s]` owns shard `s`.
fn config(num: u64, owners: [GroupId; 10]) -> ShardConfig {
    let groups = owners
        .iter()
        .filter(|&&g| g != 0)
        .map(|&g| (g, vec![format!("g{g}:1")]))
        .collect();
    ShardConfig {
        num,
        shards: owners.to_vec(),
        groups,
    }
}

fn apply(g: &mut ShardGroup, command: Command) -> Reply {
    g.apply(&command.encode())
}

fn reconfigure(g: &mut ShardGroup, c: &ShardConfig) -> Reply {
    apply(g, Command::Reconfigure { config: c.clone() })
}

fn put(g: &mut ShardGroup, key: &str, value: &str, client_id: ClientId, seq: u64) -> Reply {
    let command = kv::Command::Put {
        key: key.into(),
        value: value.into(),
        client_id,
        seq,
    };
    apply(g, Command::Write(command))
}

fn append(g: &mut ShardGroup, key: &str, value: &str, client_id: ClientId, seq: u64) -> Reply {
    let command = kv::Command::Append {
        key: key.into(),
        value: value.into(),
        client_id,
        seq,
    };
    apply(g, Command::Write(command))
}

fn get(g: &ShardGroup, key: &str) -> Reply {
    g.read(&Query::Get(key.into()))
}

fn state(g: &ShardGroup, shard: ShardId) -> Option<ShardState> {
    g.states().get(&shard).copied()
}

/// A key of `shard`.
fn key_in(shard: ShardId) -> String {
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|k| key_to_shard(k, NSHARDS) == shard)
        .expect("some key hashes to every shard")
}

/// Moves `shard` from `from` (at `next`) to `to` (at `next`), running every
/// step of the protocol, and returns the pulled data.
fn migrate(from: &mut ShardGroup, to: &mut ShardGroup, shard: ShardId, num: u64) -> ShardData {
    let Reply::Shard(data) = from.read(&Query::Pull {
        shard,
        config_num: num,
    }) else {
        panic!("old owner must hand over shard {shard}");
    };
    assert_eq!(
        apply(to, Command::Install { data: data.clone() }),
        Reply::Ok
    );
    assert_eq!(state(to, shard), Some(ShardState::Arrived));
    let delete = Command::Delete {
        shard,
        config_num: num,
    };
    assert_eq!(apply(from, delete), Reply::Ok);
    assert_eq!(state(from, shard), None, "old copy deleted");
    let confirm = Command::Confirm {
        shard,
        config_num: num,
    };
    assert_eq!(apply(to, confirm), Reply::Ok);
    assert_eq!(state(to, shard), Some(ShardState::Serving));
    data
}

#[test]
fn a_new_group_serves_nothing_until_its_first_configuration() {
    let g = group(A);
    let k = key_in(3);
    assert_eq!(
        get(&g, &k),
        Reply::WrongGroup {
            shard: 3,
            config_num: 0
        }
    );
    assert_eq!(g.shard_group_status().unwrap().config_num, 0);
}

#[test]
fn shards_nobody_owned_before_are_served_at_once() {
    let mut a = group(A);
    assert_eq!(reconfigure(&mut a, &config(1, [A; 10])), Reply::Ok);
    assert!(a.states().values().all(|&s| s == ShardState::Serving));
    let k = key_in(4);
    assert_eq!(put(&mut a, &k, "v", 1, 1), Reply::Ok);
    assert_eq!(
        get(&a, &k),
        Reply::Value {
            value: Some("v".into())
        }
    );
}

#[test]
fn configurations_apply_one_at_a_time_in_order() {
    let mut a = group(A);
    // Skipping ahead or repeating changes nothing.
    assert_eq!(reconfigure(&mut a, &config(2, [A; 10])), Reply::Ok);
    assert_eq!(a.config().num, 0);
    reconfigure(&mut a, &config(1, [A; 10]));
    reconfigure(&mut a, &config(1, [B; 10]));
    assert_eq!(a.config().num, 1);
    assert_eq!(state(&a, 0), Some(ShardState::Serving));
}

#[test]
fn a_shard_given_away_is_frozen_and_handed_over_as_of_the_reconfiguration() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let k = key_in(2);
    put(&mut a, &k, "before", 7, 1);
    let c2 = config(2, [A, A, B, A, A, A, A, A, A, A]);
    // The new owner cannot pull before the old owner has moved.
    reconfigure(&mut b, &c2);
    assert_eq!(state(&b, 2), Some(ShardState::Pulling));
    assert_eq!(
        a.read(&Query::Pull {
            shard: 2,
            config_num: 2
        }),
        Reply::NotReady { config_num: 1 }
    );
    reconfigure(&mut a, &c2);
    assert_eq!(state(&a, 2), Some(ShardState::Leaving));
    // A write that was proposed before the reconfiguration but applies
    // after it is refused: the old owner no longer serves the shard.
    assert_eq!(
        put(&mut a, &k, "late", 7, 2),
        Reply::WrongGroup {
            shard: 2,
            config_num: 2
        }
    );
    assert!(matches!(get(&a, &k), Reply::WrongGroup { .. }));
    // Shards that do not move are served throughout.
    let other = key_in(5);
    assert_eq!(put(&mut a, &other, "x", 7, 3), Reply::Ok);
    let data = migrate(&mut a, &mut b, 2, 2);
    assert_eq!(data.kv.get(&k).map(String::as_str), Some("before"));
    assert_eq!(
        get(&b, &k),
        Reply::Value {
            value: Some("before".into())
        }
    );
}

#[test]
fn an_arrived_shard_is_served_before_the_rest_of_its_configuration_arrives() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A, A, A, A, A, B, B, B, B, B]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let c2 = config(2, [B, B, A, A, A, B, B, B, B, B]);
    reconfigure(&mut a, &c2);
    reconfigure(&mut b, &c2);
    let Reply::Shard(data) = a.read(&Query::Pull {
        shard: 0,
        config_num: 2,
    }) else {
        panic!("shard 0 must be handed over");
    };
    apply(&mut b, Command::Install { data });
    assert_eq!(state(&b, 0), Some(ShardState::Arrived));
    assert_eq!(state(&b, 1), Some(ShardState::Pulling));
    assert!(matches!(get(&b, &key_in(0)), Reply::Value { .. }));
    assert!(matches!(get(&b, &key_in(1)), Reply::WrongGroup { .. }));
}

#[test]
fn sessions_move_with_the_shard_so_a_retried_write_applies_once() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let k = key_in(6);
    assert_eq!(append(&mut a, &k, "x", 9, 1), Reply::Ok);
    let c2 = config(2, [A, A, A, A, A, A, B, A, A, A]);
    reconfigure(&mut a, &c2);
    reconfigure(&mut b, &c2);
    migrate(&mut a, &mut b, 6, 2);
    // The client never saw its `ok` and retries at the new owner.
    assert_eq!(append(&mut b, &k, "x", 9, 1), Reply::Ok);
    assert_eq!(
        get(&b, &k),
        Reply::Value {
            value: Some("x".into())
        }
    );
    assert_eq!(append(&mut b, &k, "y", 9, 2), Reply::Ok);
    assert_eq!(
        get(&b, &k),
        Reply::Value {
            value: Some("xy".into())
        }
    );
}

#[test]
fn the_next_configuration_waits_until_every_shard_is_serving() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let c2 = config(2, [B, A, A, A, A, A, A, A, A, A]);
    let c3 = config(3, [B, B, A, A, A, A, A, A, A, A]);
    reconfigure(&mut a, &c2);
    reconfigure(&mut b, &c2);
    assert_eq!(reconfigure(&mut a, &c3), Reply::NotReady { config_num: 2 });
    assert_eq!(reconfigure(&mut b, &c3), Reply::NotReady { config_num: 2 });
    migrate(&mut a, &mut b, 0, 2);
    assert_eq!(reconfigure(&mut a, &c3), Reply::Ok);
    assert_eq!(reconfigure(&mut b, &c3), Reply::Ok);
    assert_eq!(a.config().num, 3);
}

#[test]
fn a_late_delete_never_touches_a_shard_owned_again() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let k = key_in(1);
    put(&mut a, &k, "v", 1, 1);
    let c2 = config(2, [A, B, A, A, A, A, A, A, A, A]);
    reconfigure(&mut a, &c2);
    reconfigure(&mut b, &c2);
    migrate(&mut a, &mut b, 1, 2);
    let c3 = config(3, [A; 10]);
    reconfigure(&mut a, &c3);
    reconfigure(&mut b, &c3);
    migrate(&mut b, &mut a, 1, 3);
    // The delete of configuration 2, repeated late, changes nothing.
    let stale = Command::Delete {
        shard: 1,
        config_num: 2,
    };
    assert_eq!(apply(&mut a, stale), Reply::Ok);
    assert_eq!(
        get(&a, &k),
        Reply::Value {
            value: Some("v".into())
        }
    );
    // Neither does a stale install or confirm.
    let before = a.clone();
    let stale_install = Command::Install {
        data: ShardData {
            shard: 1,
            config_num: 2,
            kv: BTreeMap::new(),
            sessions: BTreeMap::new(),
        },
    };
    apply(&mut a, stale_install);
    apply(
        &mut a,
        Command::Confirm {
            shard: 1,
            config_num: 2,
        },
    );
    assert_eq!(a, before);
    // A delete for a configuration the group has not reached is not ready.
    let early = Command::Delete {
        shard: 1,
        config_num: 9,
    };
    assert_eq!(apply(&mut a, early), Reply::NotReady { config_num: 3 });
}

#[test]
fn a_handed_over_shard_cannot_be_pulled_again() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    let c2 = config(2, [B, A, A, A, A, A, A, A, A, A]);
    reconfigure(&mut a, &c2);
    reconfigure(&mut b, &c2);
    migrate(&mut a, &mut b, 0, 2);
    assert!(matches!(
        a.read(&Query::Pull {
            shard: 0,
            config_num: 2
        }),
        Reply::BadRequest { .. }
    ));
}

#[test]
fn a_shard_given_to_no_group_is_dropped() {
    let mut a = group(A);
    reconfigure(&mut a, &config(1, [A; 10]));
    put(&mut a, &key_in(0), "v", 1, 1);
    reconfigure(&mut a, &config(2, [0; 10]));
    assert!(a.states().is_empty());
    assert_eq!(a.size(), 0);
}

#[test]
fn snapshots_keep_shards_states_and_sessions_and_belong_to_one_group() {
    let (mut a, mut b) = (group(A), group(B));
    let c1 = config(1, [A; 10]);
    reconfigure(&mut a, &c1);
    reconfigure(&mut b, &c1);
    put(&mut a, &key_in(3), "v", 4, 1);
    let c2 = config(2, [A, A, A, B, A, A, A, A, A, A]);
    reconfigure(&mut a, &c2);
    let image = StateMachine::snapshot(&a);
    let restored = ShardGroup::restore(&image, &GroupEnv { gid: A }).unwrap();
    assert_eq!(restored, a);
    assert_eq!(state(&restored, 3), Some(ShardState::Leaving));
    assert!(matches!(
        ShardGroup::restore(&image, &GroupEnv { gid: B }),
        Err(SnapshotDecodeError::Foreign(_))
    ));
    assert!(ShardGroup::restore(b"\xc1", &GroupEnv { gid: A }).is_err());
}

#[test]
fn garbage_entries_and_foreign_operations_are_refused_without_change() {
    let mut a = group(A);
    reconfigure(&mut a, &config(1, [A; 10]));
    let before = a.clone();
    assert!(matches!(a.apply(b"\xc1junk"), Reply::BadRequest { .. }));
    assert_eq!(a, before);
    let bad = config(2, [A; 10]);
    let short = ShardConfig {
        shards: vec![A; 3],
        ..bad
    };
    assert!(matches!(
        reconfigure(&mut a, &short),
        Reply::BadRequest { .. }
    ));
    assert_eq!(a, before);
    assert!(matches!(
        ShardGroup::admit(Op::Join {
            groups: BTreeMap::new(),
            client_id: 1,
            seq: 1
        }),
        Admission::Refuse(Reply::BadRequest { .. })
    ));
}

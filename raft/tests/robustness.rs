//! Messages from a faulty or malicious peer never panic a node or break its
//! internal invariants, and nodes are deterministic values.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use proptest::prelude::*;
use raft::sim::Cluster;
use raft::{Entry, Message, MessageBody, RawNode, RejectHint, Role, Snapshot, SnapshotMeta};

/// Nodes in interesting states: a leader and followers of a cluster that
/// has committed a few entries, with compacted logs.
fn sample_nodes() -> Vec<RawNode> {
    let mut opts = raft::sim::SimOptions::new(3, 60);
    opts.snapshot_every = Some(4);
    let mut c = Cluster::new(opts);
    for n in 0..10 {
        c.one(common::cmd(n), 3, false)
            .expect("healthy cluster commits");
    }
    c.ids().filter_map(|id| c.node(id).cloned()).collect()
}

fn small() -> impl Strategy<Value = u64> {
    prop_oneof![0..20u64, Just(u64::MAX), Just(u64::MAX - 1)]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (small(), small(), prop::bool::ANY).prop_map(|(index, term, noop)| Entry {
            index,
            term,
            data: if noop {
                Bytes::new()
            } else {
                Bytes::from_static(b"x")
            },
        }),
        0..5,
    )
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (small(), small()).prop_map(|(last_log_index, last_log_term)| MessageBody::PreVote {
            last_log_index,
            last_log_term
        }),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        (small(), small(), any::<bool>()).prop_map(|(last_log_index, last_log_term, transfer)| {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                transfer,
            }
        }),
        any::<bool>().prop_map(|granted| MessageBody::RequestVoteResponse { granted }),
        (small(), small(), entries(), small()).prop_map(
            |(prev_index, prev_term, entries, commit)| {
                MessageBody::AppendEntries {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                }
            }
        ),
        (small(), prop::option::of((small(), small()))).prop_map(|(index, hint)| {
            MessageBody::AppendEntriesResponse {
                index,
                reject: hint.map(|(index, term)| RejectHint { index, term }),
            }
        }),
        (small(), small())
            .prop_map(|(commit, read_seq)| MessageBody::Heartbeat { commit, read_seq }),
        small().prop_map(|read_seq| MessageBody::HeartbeatResponse { read_seq }),
        (small(), small()).prop_map(|(index, term)| MessageBody::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta { index, term },
                data: Bytes::from_static(b"junk"),
            },
        }),
        Just(MessageBody::TimeoutNow),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (0..5u64, prop_oneof![1..4u64, Just(9)], small(), body()).prop_map(|(from, to, term, body)| {
        Message {
            from,
            to,
            term,
            body,
        }
    })
}

#[derive(Debug, Clone)]
enum Input {
    Step(Message),
    Tick,
    Ready,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => message().prop_map(Input::Step),
        1 => Just(Input::Tick),
        2 => Just(Input::Ready),
    ]
}

fn apply(node: &mut RawNode, input: &Input) -> Option<raft::Ready> {
    match input {
        Input::Step(msg) => {
            let mut msg = msg.clone();
            if msg.to != 9 {
                msg.to = node.id();
            }
            let _ = node.step(msg);
            None
        }
        Input::Tick => {
            node.tick();
            None
        }
        Input::Ready => {
            let rd = node.ready();
            node.advance();
            Some(rd)
        }
    }
}

fn hash_of(node: &RawNode) -> u64 {
    let mut h = DefaultHasher::new();
    node.hash(&mut h);
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_messages_never_break_a_node(inputs in prop::collection::vec(input(), 1..40)) {
        for mut node in sample_nodes() {
            let mut term = node.term();
            for input in &inputs {
                apply(&mut node, input);
                prop_assert!(node.term() >= term, "term went backwards");
                term = node.term();
                prop_assert!(node.commit_index() <= node.last_index());
                prop_assert!(node.applied_index() <= node.commit_index());
                prop_assert!(node.first_index() <= node.last_index() + 1);
                if node.role() == Role::Leader {
                    prop_assert_eq!(node.leader_id(), Some(node.id()));
                }
            }
        }
    }

    #[test]
    fn messages_round_trip_through_msgpack(msg in message()) {
        let bytes = rmp_serde::to_vec_named(&msg).expect("messages serialize");
        let back: Message = rmp_serde::from_slice(&bytes).expect("and deserialize");
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn equal_nodes_given_equal_inputs_stay_equal(inputs in prop::collection::vec(input(), 1..40)) {
        for node in sample_nodes() {
            let mut a = node.clone();
            let mut b = node;
            for input in &inputs {
                let ra = apply(&mut a, input);
                let rb = apply(&mut b, input);
                prop_assert_eq!(ra, rb);
                prop_assert!(a == b);
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
        }
    }
}

#[test]
fn messages_for_other_nodes_or_from_strangers_are_refused() {
    let mut node = sample_nodes().remove(0);
    let before = node.clone();
    let msg = |from, to| Message {
        from,
        to,
        term: 100,
        body: MessageBody::TimeoutNow,
    };
    assert!(node.step(msg(2, 9)).is_err(), "wrong recipient");
    assert!(node.step(msg(7, node.id())).is_err(), "unknown sender");
    assert!(node.step(msg(node.id(), node.id())).is_err(), "from itself");
    assert!(node == before, "refused messages must not change the node");
}

//! Log compaction and InstallSnapshot: the 6.824 2D scenarios plus the
//! follower-side rules for snapshots.

mod common;

use bytes::Bytes;
use common::cmd;
use raft::sim::{Cluster, NetConfig, SimError, SimOptions};
use raft::{Config, Entry, HardState, Message, MessageBody, RawNode, Snapshot, SnapshotMeta};

const SNAPSHOT_EVERY: u64 = 10;

fn snapshotting_cluster(nodes: usize, seed: u64, net: NetConfig) -> Cluster {
    let mut opts = SimOptions::new(nodes, seed);
    opts.snapshot_every = Some(SNAPSHOT_EVERY);
    opts.net = net;
    Cluster::new(opts)
}

#[test]
fn snapshots_keep_every_log_short() -> Result<(), SimError> {
    let mut c = snapshotting_cluster(3, 30, NetConfig::reliable());
    for n in 0..60 {
        c.one(cmd(n), 3, false)?;
    }
    for id in c.ids().collect::<Vec<_>>() {
        let node = c.node(id).expect("running");
        assert!(
            node.snapshot().meta.index >= 50,
            "node {id} never compacted"
        );
        assert!(
            node.log_entries().len() as u64 <= 2 * SNAPSHOT_EVERY,
            "node {id} keeps {} entries",
            node.log_entries().len()
        );
    }
    Ok(())
}

/// The 6.824 `snapcommon`: repeatedly take a node away (disconnect or
/// crash), commit enough for the others to compact past it, bring it back
/// and require it to catch up — through InstallSnapshot.
fn install_after_absence(
    mut c: Cluster,
    disconnect: bool,
    crash: bool,
    reliable: bool,
) -> Result<(), SimError> {
    let n = c.ids().count();
    let mut next = 0u64;
    let mut fresh = || {
        next += 1;
        cmd(next)
    };
    c.one(fresh(), n, true)?;
    let mut leader = c.check_one_leader()?;
    for iteration in 0..20 {
        let mut victim = leader % n as u64 + 1;
        let mut sender = leader;
        if iteration % 3 == 1 {
            sender = victim;
            victim = leader;
        }
        if disconnect {
            c.disconnect(victim);
            c.one(fresh(), n - 1, true)?;
        }
        if crash {
            c.crash(victim)?;
            c.one(fresh(), n - 1, true)?;
        }
        // Enough entries to force a snapshot past the victim's log.
        let batch: Vec<Bytes> = (0..SNAPSHOT_EVERY + 1 + iteration % SNAPSHOT_EVERY)
            .map(|_| fresh())
            .collect();
        let _ = c.propose_batch(sender, batch)?;
        if reliable {
            c.one(fresh(), n - 1, true)?;
        } else {
            let timeout = c.election_timeout();
            c.run_for(timeout / 2)?;
        }
        if disconnect {
            c.connect(victim);
            c.one(fresh(), n, true)?;
            leader = c.check_one_leader()?;
        }
        if crash {
            c.restart(victim)?;
            c.one(fresh(), n, true)?;
            leader = c.check_one_leader()?;
        }
    }
    assert!(
        c.net_stats().sent_of("InstallSnapshot") > 0,
        "catching up never needed a snapshot"
    );
    Ok(())
}

#[test]
fn snapshot_installed_on_disconnected_follower() -> Result<(), SimError> {
    install_after_absence(
        snapshotting_cluster(3, 31, NetConfig::reliable()),
        true,
        false,
        true,
    )
}

#[test]
fn snapshot_installed_on_disconnected_follower_over_unreliable_network() -> Result<(), SimError> {
    install_after_absence(
        snapshotting_cluster(3, 32, NetConfig::unreliable()),
        true,
        false,
        false,
    )
}

#[test]
fn snapshot_installed_on_crashed_follower() -> Result<(), SimError> {
    install_after_absence(
        snapshotting_cluster(3, 33, NetConfig::reliable()),
        false,
        true,
        true,
    )
}

#[test]
fn snapshot_installed_on_crashed_follower_over_unreliable_network() -> Result<(), SimError> {
    install_after_absence(
        snapshotting_cluster(3, 34, NetConfig::unreliable()),
        false,
        true,
        false,
    )
}

#[test]
fn whole_cluster_restarts_from_snapshots() -> Result<(), SimError> {
    let mut c = snapshotting_cluster(3, 35, NetConfig::reliable());
    let mut last = c.one(cmd(0), 3, true)?;
    for round in 0..5u64 {
        for n in 0..SNAPSHOT_EVERY + 1 {
            c.one(cmd(round * 100 + n + 1), 3, true)?;
        }
        for id in 1..=3 {
            c.crash(id)?;
        }
        for id in 1..=3 {
            c.restart(id)?;
        }
        for id in 1..=3 {
            let sm = c.state_machine(id).expect("node exists");
            let snap = c.durable(id).and_then(|d| d.snapshot.clone());
            assert!(snap.is_some(), "node {id} restarted without a snapshot");
            assert!(sm.applied >= snap.map_or(0, |s| s.meta.index));
        }
        let index = c.one(cmd(round * 100 + 99), 3, true)?;
        assert!(index > last, "the log went backwards after a restart");
        last = index;
    }
    Ok(())
}

#[test]
fn restart_from_snapshot_without_new_entries_keeps_working() -> Result<(), SimError> {
    let mut c = snapshotting_cluster(3, 36, NetConfig::reliable());
    for n in 0..SNAPSHOT_EVERY + 1 {
        c.one(cmd(n), 3, true)?;
    }
    for _ in 0..2 {
        for id in 1..=3 {
            c.crash(id)?;
        }
        for id in 1..=3 {
            c.restart(id)?;
        }
        c.one(cmd(1000), 3, true)?;
    }
    Ok(())
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::from(format!("{index}@{term}")),
    }
}

fn follower_with(entries: Vec<Entry>, term: u64) -> RawNode {
    let hard = HardState {
        term,
        vote: None,
        commit: 0,
    };
    RawNode::restore(Config::new(1, vec![1, 2, 3]), hard, None, entries).expect("valid state")
}

fn install(snapshot_index: u64, snapshot_term: u64, term: u64) -> Message {
    Message {
        from: 2,
        to: 1,
        term,
        body: MessageBody::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index: snapshot_index,
                    term: snapshot_term,
                },
                data: Bytes::from_static(b"state"),
            },
        },
    }
}

#[test]
fn follower_holding_the_snapshot_entries_keeps_its_log() {
    let mut node = follower_with((1..=5).map(|i| entry(i, 1)).collect(), 1);
    node.step(install(3, 1, 2)).expect("well-formed");
    let rd = node.ready();
    assert_eq!(rd.snapshot, None, "no need to replace matching entries");
    assert_eq!(node.commit_index(), 3);
    assert_eq!(node.last_index(), 5);
    assert_eq!(rd.committed_entries.len(), 3);
}

#[test]
fn follower_with_divergent_log_replaces_it_with_the_snapshot() {
    let mut node = follower_with((1..=5).map(|i| entry(i, 1)).collect(), 1);
    node.step(install(7, 2, 2)).expect("well-formed");
    let rd = node.ready();
    let snapshot = rd.snapshot.expect("snapshot to persist and restore");
    assert_eq!(snapshot.meta, SnapshotMeta { index: 7, term: 2 });
    assert!(rd.entries.is_empty());
    assert!(rd.committed_entries.is_empty(), "the snapshot holds them");
    assert_eq!(node.commit_index(), 7);
    assert_eq!(node.last_index(), 7);
    assert!(node.log_entries().is_empty());
    assert!(matches!(
        rd.messages.as_slice(),
        [Message {
            body: MessageBody::AppendEntriesResponse {
                index: 7,
                reject: None
            },
            ..
        }]
    ));
}

#[test]
fn stale_snapshot_is_acknowledged_without_effect() {
    let mut node = follower_with((1..=5).map(|i| entry(i, 1)).collect(), 1);
    node.step(Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::Heartbeat {
            commit: 5,
            read_seq: 0,
        },
    })
    .expect("well-formed");
    node.ready();
    node.advance();
    node.step(install(3, 1, 1)).expect("well-formed");
    let rd = node.ready();
    assert_eq!(rd.snapshot, None);
    assert_eq!(node.commit_index(), 5);
    assert_eq!(node.last_index(), 5);
}

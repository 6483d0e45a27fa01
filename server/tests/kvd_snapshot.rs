//! Snapshots: the log is compacted past the threshold, a restarted node
//! recovers from its snapshot, and a follower that missed the compacted
//! entries catches up through InstallSnapshot.

mod kvd_harness;

use kvd_harness::{Client, Cluster, Session, dir_bytes, wait_until};
use wire::{NodeRole, Op, Reply};

/// Small enough that a few dozen writes pass it several times.
const TINY_THRESHOLD: &[&str] = &["--snapshot-threshold", "4096"];

fn value(n: usize) -> String {
    format!("{n:0>200}")
}

#[tokio::test]
async fn restarted_node_recovers_from_its_snapshot_and_sessions() {
    let mut c = Cluster::new(1, TINY_THRESHOLD);
    c.start_all().await;
    let mut s = Session::new(20);
    // Five rounds over 60 keys: about 75 KB of log for a 13 KB state.
    for n in 0..300 {
        assert_eq!(
            c.call(s.put(&format!("k{}", n % 60), &value(n))).await,
            Reply::Ok
        );
    }
    let st = c.status(0).await.unwrap();
    assert!(st.snapshot_index > 0, "no snapshot taken: {st:?}");
    let used = dir_bytes(&c.nodes[0].data_dir);
    assert!(used < 64 * 1024, "the data dir holds {used} bytes");
    c.kill(0);
    c.start(0).await;
    let recovered = c.nodes[0]
        .log_lines()
        .into_iter()
        .rfind(|l| l.contains("recovered durable state"))
        .expect("recovery logged");
    assert!(!recovered.contains("snapshot_index=0 "), "{recovered}");
    for k in 0..60 {
        assert_eq!(c.get(&format!("k{k}")).await, Some(value(240 + k)));
    }
    // The session table came back with the snapshot: a replay is a no-op.
    s.seq = 1;
    assert_eq!(c.call(s.put("k0", "replayed")).await, Reply::Ok);
    assert_eq!(c.get("k0").await, Some(value(240)));
}

#[tokio::test]
async fn follower_that_was_down_catches_up_by_install_snapshot() {
    let mut c = Cluster::new(3, TINY_THRESHOLD);
    c.start_all().await;
    let leader = c.leader().await;
    let lagger = (leader + 1) % 3;
    c.kill(lagger);
    let mut s = Session::new(21);
    for n in 0..60 {
        assert_eq!(
            c.call(s.append(&format!("k{}", n % 7), &value(n))).await,
            Reply::Ok
        );
    }
    // The entries the lagger misses are gone from the leader's log.
    let st = c.status(leader).await.unwrap();
    assert!(st.snapshot_index > 2, "leader has not compacted: {st:?}");
    c.start(lagger).await;
    let target = st.commit_index;
    wait_until("the restarted follower to catch up", || async {
        c.status(lagger)
            .await
            .is_ok_and(|s| s.applied_index >= target)
    })
    .await;
    c.wait_logged(lagger, "installed snapshot from the leader")
        .await;
    // Make the caught-up node the leader and read everything from it.
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    let to = c.nodes[lagger].id;
    assert_eq!(
        client.call(Op::TransferLeader { to }).await.unwrap(),
        Reply::Ok
    );
    wait_until("the caught-up follower to lead", || async {
        c.status(lagger)
            .await
            .is_ok_and(|s| s.role == NodeRole::Leader)
    })
    .await;
    let mut direct = Client::connect(&c.nodes[lagger].client_addr).await.unwrap();
    for k in 0..7 {
        let expected: String = (0..60).filter(|n| n % 7 == k).map(value).collect();
        let got = direct
            .call(Op::Get {
                key: format!("k{k}"),
            })
            .await
            .unwrap();
        assert_eq!(
            got,
            Reply::Value {
                value: Some(expected)
            },
            "key k{k}"
        );
    }
}

//! kvd across real partitions: each node in its own network namespace, cut
//! from the others by iptables `DROP` rules (root only; CI runs as root).
//!
//! A dropped packet is silence, not an error: TCP retransmits into the void
//! with exponential backoff and no connection ever fails by itself. These
//! tests pin what kvd does about it.

mod kvd_harness;

use std::time::Duration;

use kvd_harness::{Cluster, Session, wait_until};
use nemesis::{NetnsNetwork, NetworkFaults, NodeId, grudge};
use tokio::time::Instant;
use wire::Reply;

const NODES: [NodeId; 3] = [1, 2, 3];

fn network() -> NetnsNetwork {
    if let Err(error) = NetnsNetwork::check_available() {
        panic!(
            "the netns tests need root with `ip` and `iptables` (CI runs them as root): {error}"
        );
    }
    NetnsNetwork::create(&NODES).expect("create the namespace network")
}

/// Without help, a connection cut for 7 s by `DROP` carries data again only
/// at TCP's next retransmission, about 6 s after the heal (the retries come
/// 0.2, 0.6, 1.4, 3, 6.2 and 12.6 s after the first loss). Peer sockets with
/// a user timeout and keepalive are torn down during the cut and redialled,
/// so the follower hears from the leader again within about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_by_a_silent_partition_hears_the_leader_soon_after_the_heal() {
    let net = network();
    let mut cluster = Cluster::in_netns(&net, &[]);
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % NODES.len();
    let mut session = Session::new(7);
    assert_eq!(cluster.call(session.put("k", "before")).await, Reply::Ok);

    net.apply_grudge(&grudge::isolate(&NODES, cluster.nodes[follower].id))
        .expect("cut the follower off");
    // The majority keeps committing while the follower hears nothing.
    let cut_until = Instant::now() + Duration::from_secs(7);
    let mut writes = 0;
    while Instant::now() < cut_until {
        assert_eq!(
            cluster.call(session.put("k", &format!("w{writes}"))).await,
            Reply::Ok
        );
        writes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the majority has committed by now is what the follower must get.
    let mut target = 0;
    for i in (0..NODES.len()).filter(|&i| i != follower) {
        let status = cluster.status(i).await.expect("a majority node answers");
        target = target.max(status.commit_index);
    }
    net.heal().expect("heal");
    let healed = Instant::now();

    wait_until("the follower to catch up after the heal", || {
        let cluster = &cluster;
        async move {
            cluster
                .status(follower)
                .await
                .is_ok_and(|s| s.commit_index >= target)
        }
    })
    .await;
    let took = healed.elapsed();
    eprintln!("{writes} writes during the cut; the follower caught up {took:?} after the heal");
    assert!(
        took < Duration::from_secs(3),
        "the follower caught up only {took:?} after the heal (TCP's next retransmission \
         comes about 6 s after it)"
    );
}

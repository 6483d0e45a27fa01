//! A three-node kvd group over real TCP: election, serving, routing,
//! exactly-once writes, leadership transfer, and a leader without a quorum.

mod kvd_harness;

use kvd_harness::{Client, Cluster, Session, wait_until};
use wire::{NodeRole, Op, Reply};

#[tokio::test]
async fn three_nodes_elect_a_leader_and_serve_put_get_append() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut s = Session::new(1);
    assert_eq!(c.call(s.put("k", "a")).await, Reply::Ok);
    assert_eq!(c.call(s.append("k", "b")).await, Reply::Ok);
    assert_eq!(
        c.call(s.append("fresh", "x")).await,
        Reply::Ok,
        "append to a missing key"
    );
    assert_eq!(c.get("k").await.as_deref(), Some("ab"));
    assert_eq!(c.get("fresh").await.as_deref(), Some("x"));
    assert_eq!(c.get("missing").await, None);

    // Every node applies the same log.
    let commit = c.status(leader).await.unwrap().commit_index;
    for i in 0..3 {
        wait_until("every node to apply the writes", || async {
            c.status(i).await.is_ok_and(|s| s.applied_index >= commit)
        })
        .await;
    }
}

#[tokio::test]
async fn follower_answers_wrong_leader_with_the_leaders_client_address() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let mut client = Client::connect(&c.nodes[follower].client_addr)
        .await
        .unwrap();
    let mut s = Session::new(2);
    for op in [s.put("k", "v"), Op::Get { key: "k".into() }] {
        match client.call(op).await.unwrap() {
            Reply::WrongLeader { leader: Some(hint) } => {
                assert_eq!(hint.node_id, c.nodes[leader].id);
                assert_eq!(hint.client_addr, c.nodes[leader].client_addr);
            }
            other => panic!("follower answered {other:?}"),
        }
    }
    // The follower did not apply the refused put.
    assert_eq!(c.get("k").await, None);
}

#[tokio::test]
async fn retried_write_with_the_same_session_applies_once() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    let op = Op::Append {
        key: "k".into(),
        value: "x".into(),
        client_id: 77,
        seq: 1,
    };
    // Twice pipelined on one connection (both reach the log before either
    // is applied), then twice more one after the other.
    client.send(op.clone()).await.unwrap();
    client.send(op.clone()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(client.recv().await.unwrap().reply, Reply::Ok);
    }
    assert_eq!(client.call(op.clone()).await.unwrap(), Reply::Ok);
    assert_eq!(client.call(op.clone()).await.unwrap(), Reply::Ok);
    assert_eq!(c.get("k").await.as_deref(), Some("x"));
    // The next seq of the same client is applied.
    let next = Op::Append {
        key: "k".into(),
        value: "y".into(),
        client_id: 77,
        seq: 2,
    };
    assert_eq!(c.call(next).await, Reply::Ok);
    assert_eq!(c.get("k").await.as_deref(), Some("xy"));
}

#[tokio::test]
async fn retry_after_a_leader_change_is_not_applied_twice() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let op = Op::Append {
        key: "k".into(),
        value: "once".into(),
        client_id: 5,
        seq: 1,
    };
    assert_eq!(c.call(op.clone()).await, Reply::Ok);
    c.kill(leader);
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    assert_eq!(c.call(op).await, Reply::Ok);
    assert_eq!(c.get("k").await.as_deref(), Some("once"));
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_are_all_answered() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..100u64 {
        let op = Op::Put {
            key: format!("k{n}"),
            value: format!("v{n}"),
            client_id: 1000 + n,
            seq: 1,
        };
        ids.push(client.send(op).await.unwrap());
        ids.push(
            client
                .send(Op::Get {
                    key: format!("k{n}"),
                })
                .await
                .unwrap(),
        );
    }
    let mut answered = Vec::new();
    for _ in 0..ids.len() {
        let r = client.recv().await.unwrap();
        assert!(
            !r.reply.is_error(),
            "request {} answered {:?}",
            r.request_id,
            r.reply
        );
        answered.push(r.request_id);
    }
    answered.sort_unstable();
    assert_eq!(answered, ids);
}

#[tokio::test]
async fn status_reports_the_raft_view_on_every_node() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut s = Session::new(3);
    c.call(s.put("a", "1")).await;
    for i in 0..3 {
        let st = c.status(i).await.unwrap();
        assert_eq!(st.node_id, c.nodes[i].id);
        assert_eq!(st.leader, Some(c.nodes[leader].id));
        assert_eq!(st.role == NodeRole::Leader, i == leader);
        assert!(st.commit_index <= st.last_log_index);
        assert!(st.applied_index <= st.commit_index);
        assert_eq!(st.members.len(), 3);
        assert!(
            st.members
                .iter()
                .any(|m| m.client_addr == c.nodes[leader].client_addr)
        );
    }
}

#[tokio::test]
async fn transfer_leader_hands_leadership_to_the_named_node() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    let leader = c.leader().await;
    let target = (leader + 1) % 3;
    let to = c.nodes[target].id;
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    assert_eq!(
        client.call(Op::TransferLeader { to }).await.unwrap(),
        Reply::Ok
    );
    wait_until("the target to lead", || async {
        c.status(target)
            .await
            .is_ok_and(|s| s.role == NodeRole::Leader)
    })
    .await;
    let mut s = Session::new(4);
    assert_eq!(c.call(s.put("after", "transfer")).await, Reply::Ok);
    assert_eq!(c.get("after").await.as_deref(), Some("transfer"));
}

#[tokio::test]
async fn leader_without_a_quorum_answers_instead_of_hanging() {
    let mut c = Cluster::new(3, &["--request-timeout", "500ms"]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    for i in 0..3 {
        if i != leader {
            c.kill(i);
        }
    }
    // A write sent now cannot commit: it must come back as timeout (or as
    // wrong_leader once check-quorum has deposed the leader), never hang.
    let mut s = Session::new(6);
    for op in [s.put("k", "v"), Op::Get { key: "k".into() }] {
        let reply = client.call(op).await.unwrap();
        assert!(
            matches!(reply, Reply::Timeout | Reply::WrongLeader { leader: None }),
            "answered {reply:?}"
        );
    }
}

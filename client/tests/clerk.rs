//! The Clerk against scripted fake servers: leader finding, exactly-once
//! retries, and the definite/unknown split of its errors.

mod fake_kv;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{AttemptError, ClerkError, ClerkOptions, ClusterClient};
use fake_kv::FakeKv;
use tokio::net::TcpListener;
use wire::{LeaderHint, LocalNode, Op, Reply, Request, Response};

/// What a fake server does with one request.
enum Action {
    Reply(Reply),
    /// Never answer.
    Ignore,
    /// Close the connection without answering.
    Hangup,
}

/// The replicated state the fake servers pretend to agree on, plus a log of
/// every request each node received.
#[derive(Default)]
struct FakeState {
    kv: FakeKv,
    received: Vec<(usize, Op)>,
}

impl FakeState {
    /// Applies a request the way kvd does, deduplicating writes.
    fn apply(&mut self, op: &Op) -> Reply {
        self.kv.apply(op).unwrap_or_else(|| match op {
            Op::TransferLeader { .. } => Reply::Ok,
            _ => Reply::BadRequest {
                reason: "not served by the fake".into(),
            },
        })
    }
}

type Behaviour = Arc<dyn Fn(usize, &Op, &mut FakeState) -> Action + Send + Sync>;

struct FakeCluster {
    addrs: Vec<String>,
    state: Arc<Mutex<FakeState>>,
    connections: Arc<AtomicUsize>,
}

impl FakeCluster {
    async fn start(nodes: usize, behaviour: Behaviour) -> FakeCluster {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let mut addrs = Vec::new();
        for node in 0..nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap().to_string());
            let (state, behaviour, connections) =
                (state.clone(), behaviour.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (state, behaviour) = (state.clone(), behaviour.clone());
                    tokio::spawn(serve(node, stream, state, behaviour));
                }
            });
        }
        FakeCluster {
            addrs,
            state,
            connections,
        }
    }

    fn received(&self) -> Vec<(usize, Op)> {
        self.state.lock().unwrap().received.clone()
    }

    fn value(&self, key: &str) -> Option<String> {
        self.state.lock().unwrap().kv.value(key)
    }
}

async fn serve(
    node: usize,
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<FakeState>>,
    behaviour: Behaviour,
) {
    let me = LocalNode {
        node_id: node as u64,
        cluster_id: 1,
    };
    let Ok(mut conn) = wire::accept_client(stream, &me).await else {
        return;
    };
    while let Ok(Some(Request { request_id, op })) = conn.read_frame().await {
        let action = {
            let mut state = state.lock().unwrap();
            state.received.push((node, op.clone()));
            behaviour(node, &op, &mut state)
        };
        match action {
            Action::Reply(reply) => {
                if conn
                    .write_frame(&Response { request_id, reply })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Action::Ignore => {}
            Action::Hangup => return,
        }
    }
}

fn options(deadline_ms: Option<u64>) -> ClerkOptions {
    ClerkOptions {
        request_timeout: Duration::from_millis(200),
        overall_deadline: deadline_ms.map(Duration::from_millis),
        connect_timeout: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(2),
        backoff_max: Duration::from_millis(20),
        seed: Some(1),
        ..ClerkOptions::default()
    }
}

/// Node `leader` serves; the others redirect to it by hint.
fn leader_at(leader: usize, addrs: Arc<Mutex<Vec<String>>>) -> Behaviour {
    Arc::new(move |node, op, state| {
        if node == leader || matches!(op, Op::Status) {
            Action::Reply(state.apply(op))
        } else {
            let client_addr = addrs.lock().unwrap()[leader].clone();
            Action::Reply(Reply::WrongLeader {
                leader: Some(LeaderHint {
                    node_id: leader as u64,
                    client_addr,
                }),
            })
        }
    })
}

#[tokio::test]
async fn clerk_follows_the_leader_hint_and_then_stays_with_the_leader() {
    let addrs = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeCluster::start(3, leader_at(2, addrs.clone())).await;
    *addrs.lock().unwrap() = fake.addrs.clone();

    let cluster = ClusterClient::new(fake.addrs.clone(), options(Some(2_000))).unwrap();
    let mut clerk = cluster.clerk();
    clerk.put("k", "a").await.unwrap();
    clerk.append("k", "b").await.unwrap();
    assert_eq!(clerk.get("k").await.unwrap().as_deref(), Some("ab"));
    assert_eq!(clerk.get("absent").await.unwrap(), None);

    let to_node: Vec<usize> = fake.received().iter().map(|(node, _)| *node).collect();
    // One redirect from node 0, then everything at the leader.
    assert_eq!(to_node, vec![0, 2, 2, 2, 2]);
    assert_eq!(cluster.presumed_leader(), fake.addrs[2]);

    // A second Clerk of the same cluster starts at the cached leader.
    let mut other = cluster.clerk();
    other.put("k2", "x").await.unwrap();
    assert_eq!(fake.received().last().unwrap().0, 2);
    assert_eq!(fake.received().len(), 6);
}

#[tokio::test]
async fn clerk_without_hints_tries_every_server_until_one_leads() {
    let fake = FakeCluster::start(
        3,
        Arc::new(|node, op, state| {
            if node == 1 {
                Action::Reply(state.apply(op))
            } else {
                Action::Reply(Reply::WrongLeader { leader: None })
            }
        }),
    )
    .await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(2_000)))
        .unwrap()
        .clerk();
    clerk.put("k", "v").await.unwrap();
    assert_eq!(fake.value("k").as_deref(), Some("v"));
}

#[tokio::test]
async fn a_write_whose_reply_is_lost_is_retried_with_the_same_seq_and_applied_once() {
    // The leader applies every write but times out (answers `timeout`) on
    // the first attempt of each seq, as a leader does when commit is slow.
    let seen: Arc<Mutex<HashMap<(u64, u64), usize>>> = Arc::default();
    let behaviour: Behaviour = {
        let seen = seen.clone();
        Arc::new(move |_, op, state| {
            let reply = state.apply(op);
            match op.session() {
                Some(session) => {
                    let mut seen = seen.lock().unwrap();
                    let tries = seen.entry(session).or_default();
                    *tries += 1;
                    if *tries == 1 {
                        Action::Reply(Reply::Timeout)
                    } else {
                        Action::Reply(reply)
                    }
                }
                None => Action::Reply(reply),
            }
        })
    };
    let fake = FakeCluster::start(1, behaviour).await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(5_000)))
        .unwrap()
        .clerk();
    for part in ["x", "y", "z"] {
        clerk.append("log", part).await.unwrap();
    }
    assert_eq!(clerk.get("log").await.unwrap().as_deref(), Some("xyz"));

    let writes: Vec<(u64, u64)> = fake
        .received()
        .iter()
        .filter_map(|(_, op)| op.session())
        .collect();
    let id = clerk.client_id();
    assert_eq!(
        writes,
        vec![(id, 1), (id, 1), (id, 2), (id, 2), (id, 3), (id, 3)]
    );
    assert_eq!(clerk.last_seq(), 3);
}

#[tokio::test]
async fn a_write_that_was_sent_and_never_answered_gives_up_as_unknown() {
    let fake = FakeCluster::start(1, Arc::new(|_, _, _| Action::Ignore)).await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(500)))
        .unwrap()
        .clerk();
    let err = clerk.put("k", "v").await.unwrap_err();
    assert!(
        matches!(err, ClerkError::Unknown { op: "put", .. }),
        "{err}"
    );
    assert!(!err.is_definite());
}

#[tokio::test]
async fn a_write_the_leader_keeps_timing_out_on_gives_up_as_unknown() {
    // The leader appends every attempt but never sees it commit in time.
    let fake = FakeCluster::start(1, Arc::new(|_, _, _| Action::Reply(Reply::Timeout))).await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(300)))
        .unwrap()
        .clerk();
    let err = clerk.append("k", "v").await.unwrap_err();
    assert!(matches!(err, ClerkError::Unknown { .. }), "{err}");
    assert!(matches!(
        err.last_attempt(),
        Some(AttemptError::ServerTimeout { .. })
    ));
}

#[tokio::test]
async fn a_connection_lost_after_sending_makes_the_outcome_unknown() {
    let fake = FakeCluster::start(1, Arc::new(|_, _, _| Action::Hangup)).await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(300)))
        .unwrap()
        .clerk();
    let err = clerk.append("k", "v").await.unwrap_err();
    assert!(!err.is_definite(), "{err}");
    assert!(
        fake.received().len() >= 2,
        "the clerk should have reconnected and retried"
    );
}

#[tokio::test]
async fn without_any_leader_a_write_gives_up_as_certainly_not_applied() {
    let fake = FakeCluster::start(
        3,
        Arc::new(|_, _, _| Action::Reply(Reply::WrongLeader { leader: None })),
    )
    .await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(300)))
        .unwrap()
        .clerk();
    let err = clerk.put("k", "v").await.unwrap_err();
    assert!(err.is_definite(), "{err}");
    assert!(matches!(
        err.last_attempt(),
        Some(AttemptError::WrongLeader { hint: None, .. })
    ));
}

#[tokio::test]
async fn unreachable_servers_give_up_as_certainly_not_applied() {
    // Reserve ports and release them, so that nothing listens there.
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
    }
    let mut clerk = ClusterClient::new(addrs, options(Some(300)))
        .unwrap()
        .clerk();
    let err = clerk.put("k", "v").await.unwrap_err();
    assert!(matches!(err, ClerkError::NotApplied { .. }), "{err}");
    assert!(matches!(
        err.last_attempt(),
        Some(AttemptError::Connect { .. })
    ));
}

#[tokio::test]
async fn an_unknown_attempt_followed_by_definite_ones_is_still_unknown() {
    // First attempt: no answer (it may commit later); then only redirects
    // without a leader. The write must not be reported as failed.
    let calls = Arc::new(AtomicUsize::new(0));
    let behaviour: Behaviour = {
        let calls = calls.clone();
        Arc::new(move |_, _, _| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Action::Ignore
            } else {
                Action::Reply(Reply::WrongLeader { leader: None })
            }
        })
    };
    let fake = FakeCluster::start(2, behaviour).await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(Some(600)))
        .unwrap()
        .clerk();
    let err = clerk.put("k", "v").await.unwrap_err();
    assert!(matches!(err, ClerkError::Unknown { .. }), "{err}");
    assert!(matches!(
        err.last_attempt(),
        Some(AttemptError::WrongLeader { .. })
    ));
}

#[tokio::test]
async fn a_bad_request_fails_at_once_without_retrying() {
    let fake = FakeCluster::start(
        3,
        Arc::new(|_, _, _| {
            Action::Reply(Reply::BadRequest {
                reason: "no such operation".into(),
            })
        }),
    )
    .await;
    let mut clerk = ClusterClient::new(fake.addrs.clone(), options(None))
        .unwrap()
        .clerk();
    let err = clerk.get("k").await.unwrap_err();
    assert!(
        matches!(err.last_attempt(), Some(AttemptError::BadRequest { .. })),
        "{err}"
    );
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn many_clerks_share_one_pipelined_connection_per_server() {
    let fake = FakeCluster::start(1, Arc::new(|_, op, state| Action::Reply(state.apply(op)))).await;
    let cluster = ClusterClient::new(fake.addrs.clone(), options(Some(5_000))).unwrap();
    let mut tasks = Vec::new();
    for c in 0..32 {
        let mut clerk = cluster.clerk();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                clerk
                    .append(&format!("k{c}"), &format!("{i},"))
                    .await
                    .unwrap();
            }
            clerk.get(&format!("k{c}")).await.unwrap()
        }));
    }
    let expected: String = (0..20).map(|i| format!("{i},")).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().as_deref(), Some(expected.as_str()));
    }
    assert_eq!(fake.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn clerks_of_one_cluster_get_distinct_client_ids_reproducibly() {
    let ids = || {
        let cluster = ClusterClient::new(["127.0.0.1:1"], options(None)).unwrap();
        (0..4)
            .map(|_| cluster.clerk().client_id())
            .collect::<Vec<_>>()
    };
    let first = ids();
    assert_eq!(first, ids(), "same seed, same ids");
    let mut sorted = first.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
}

#[tokio::test]
async fn status_and_transfer_leader_reach_the_right_nodes() {
    let addrs = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeCluster::start(3, leader_at(1, addrs.clone())).await;
    *addrs.lock().unwrap() = fake.addrs.clone();
    let cluster = ClusterClient::new(fake.addrs.clone(), options(Some(2_000))).unwrap();

    // The fake has no status; it answers bad_request, which must surface.
    let err = cluster.status(&fake.addrs[0]).await.unwrap_err();
    assert!(matches!(err, AttemptError::BadRequest { .. }), "{err}");

    cluster.transfer_leader(2).await.unwrap();
    let last = fake.received().last().cloned().unwrap();
    assert_eq!(last, (1, Op::TransferLeader { to: 2 }));
}

#[test]
fn an_empty_server_list_is_refused() {
    let err = ClusterClient::new(Vec::<String>::new(), ClerkOptions::default())
        .err()
        .unwrap();
    assert_eq!(err, ClerkError::NoServers);
}

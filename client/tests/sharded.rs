//! The sharded clerk against a scripted fake deployment: a one-node fake
//! controller whose latest configuration the test moves on, and one-node
//! fake replica groups that serve the shards the test gives them.

mod fake_kv;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{AttemptError, ClerkError, ClerkOptions, ClusterClient, ShardedClient};
use fake_kv::FakeKv;
use tokio::net::TcpListener;
use wire::{GroupId, LocalNode, NSHARDS, Op, Reply, Request, Response, ShardConfig, key_to_shard};

/// What the fake deployment holds, shared by every fake node.
#[derive(Default)]
struct World {
    /// The controller's latest configuration.
    config: Option<ShardConfig>,
    /// Which shards each group serves, and the configuration it says it is in.
    serving: BTreeMap<GroupId, (BTreeSet<u32>, u64)>,
    /// Groups that take requests and never answer.
    silent: BTreeSet<GroupId>,
    /// The data and the exactly-once table, as if migration moved both.
    kv: FakeKv,
    /// Every kv request each group received.
    received: Vec<(GroupId, Op)>,
    queries: usize,
}

impl World {
    fn handle_kv(&mut self, gid: GroupId, op: &Op) -> Option<Reply> {
        self.received.push((gid, op.clone()));
        if self.silent.contains(&gid) {
            return None;
        }
        let key = match op {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } => key,
            _ => {
                return Some(Reply::BadRequest {
                    reason: "not a kv op".into(),
                });
            }
        };
        let shard = key_to_shard(key, NSHARDS);
        let (shards, config_num) = self.serving.get(&gid).cloned().unwrap_or_default();
        if !shards.contains(&shard) {
            return Some(Reply::WrongGroup { shard, config_num });
        }
        self.kv.apply(op)
    }
}

type Shared = Arc<Mutex<World>>;

/// Starts one fake node; `gid` 0 is the controller.
async fn start_node(world: Shared, gid: GroupId, query_delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let world = world.clone();
            tokio::spawn(async move {
                let me = LocalNode {
                    node_id: 1,
                    cluster_id: 100 + gid,
                };
                let Ok(mut conn) = wire::accept_client(stream, &me).await else {
                    return;
                };
                while let Ok(Some(Request { request_id, op })) = conn.read_frame().await {
                    let reply = if gid == 0 {
                        let config = {
                            let mut w = world.lock().unwrap();
                            w.queries += 1;
                            w.config.clone()
                        };
                        tokio::time::sleep(query_delay).await;
                        config.map(Reply::Config)
                    } else {
                        world.lock().unwrap().handle_kv(gid, &op)
                    };
                    let Some(reply) = reply else { continue };
                    if conn
                        .write_frame(&Response { request_id, reply })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A fake controller and groups `1..=groups`, one node each.
struct Fake {
    world: Shared,
    ctrler: String,
    groups: BTreeMap<GroupId, String>,
}

impl Fake {
    async fn start(groups: u64, query_delay: Duration) -> Fake {
        let world: Shared = Arc::default();
        let ctrler = start_node(world.clone(), 0, query_delay).await;
        let mut addrs = BTreeMap::new();
        for gid in 1..=groups {
            addrs.insert(gid, start_node(world.clone(), gid, Duration::ZERO).await);
        }
        Fake {
            world,
            ctrler,
            groups: addrs,
        }
    }

    /// Publishes configuration `num` with `shards[s]` owning shard `s`.
    fn publish(&self, num: u64, shards: [GroupId; 10]) {
        let groups = shards
            .iter()
            .filter(|&&g| g != 0)
            .map(|g| (*g, vec![self.groups[g].clone()]))
            .collect();
        self.world.lock().unwrap().config = Some(ShardConfig {
            num,
            shards: shards.to_vec(),
            groups,
        });
    }

    /// Makes group `gid` serve `shards`, claiming configuration `num`.
    fn serve(&self, gid: GroupId, num: u64, shards: &[u32]) {
        let set = shards.iter().copied().collect();
        self.world.lock().unwrap().serving.insert(gid, (set, num));
    }

    fn received_by(&self, gid: GroupId) -> Vec<Op> {
        let w = self.world.lock().unwrap();
        w.received
            .iter()
            .filter(|(g, _)| *g == gid)
            .map(|(_, op)| op.clone())
            .collect()
    }

    fn client(&self, deadline_ms: Option<u64>) -> ShardedClient {
        ShardedClient::new([self.ctrler.clone()], options(deadline_ms)).unwrap()
    }
}

fn options(deadline_ms: Option<u64>) -> ClerkOptions {
    ClerkOptions {
        request_timeout: Duration::from_millis(200),
        overall_deadline: deadline_ms.map(Duration::from_millis),
        connect_timeout: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(2),
        backoff_max: Duration::from_millis(20),
        seed: Some(5),
        ..ClerkOptions::default()
    }
}

/// "x" is in shard 5 (see the protocol doc's table).
const KEY: &str = "x";
const SHARD: u32 = 5;
const ALL: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

#[tokio::test]
async fn a_write_is_routed_to_the_group_owning_its_shard() {
    let fake = Fake::start(2, Duration::ZERO).await;
    fake.publish(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    fake.serve(1, 1, &[0, 1, 2, 3, 4]);
    fake.serve(2, 1, &[5, 6, 7, 8, 9]);
    let client = fake.client(Some(2_000));
    let mut clerk = client.clerk();
    assert_eq!(key_to_shard(KEY, NSHARDS), SHARD);
    clerk.put(KEY, "1").await.unwrap();
    clerk.append(KEY, "2").await.unwrap();
    assert_eq!(clerk.get(KEY).await.unwrap().as_deref(), Some("12"));
    assert!(
        fake.received_by(1).is_empty(),
        "group 1 does not own shard 5"
    );
    assert_eq!(fake.received_by(2).len(), 3);
    assert_eq!(client.cached_config().map(|c| c.num), Some(1));
}

#[tokio::test]
async fn a_write_refused_as_wrong_group_is_retried_at_the_new_owner_with_the_same_seq() {
    let fake = Fake::start(2, Duration::ZERO).await;
    fake.publish(1, [1; 10]);
    fake.serve(1, 1, &ALL);
    let client = fake.client(Some(5_000));
    let mut clerk = client.clerk();
    clerk.put("a", "first").await.unwrap();

    // The shard moves to group 2 in configuration 2; group 1 has seen it.
    fake.publish(2, [1, 1, 1, 1, 1, 2, 1, 1, 1, 1]);
    fake.serve(1, 2, &[0, 1, 2, 3, 4, 6, 7, 8, 9]);
    fake.serve(2, 2, &[SHARD]);
    clerk.put(KEY, "moved").await.unwrap();

    let seqs = |ops: Vec<Op>| -> Vec<(u64, u64)> {
        ops.iter()
            .filter(|op| matches!(op, Op::Put { key, .. } if key == KEY))
            .filter_map(Op::session)
            .collect()
    };
    let expected = (clerk.client_id(), 2);
    assert_eq!(seqs(fake.received_by(1)), vec![expected], "refused once");
    assert_eq!(seqs(fake.received_by(2)), vec![expected], "then retried");
    assert_eq!(clerk.last_seq(), 2);
    assert_eq!(client.cached_config().map(|c| c.num), Some(2));
}

#[tokio::test]
async fn a_group_that_lags_behind_is_waited_for_without_asking_the_controller() {
    let fake = Fake::start(1, Duration::ZERO).await;
    fake.publish(3, [1; 10]);
    // Group 1 is still in configuration 2, where it does not own shard 5.
    fake.serve(1, 2, &[0, 1, 2, 3, 4]);
    let client = fake.client(None);
    client.latest_config().await.unwrap();
    let mut clerk = client.clerk();
    let world = fake.world.clone();
    let catch_up = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        world.lock().unwrap().serving.insert(1, (ALL.into(), 3));
    });
    clerk.put(KEY, "v").await.unwrap();
    catch_up.await.unwrap();
    assert!(fake.received_by(1).len() > 1, "retried until it caught up");
    assert_eq!(
        fake.world.lock().unwrap().queries,
        1,
        "no refresh: the group was behind the cached configuration"
    );
}

#[tokio::test]
async fn a_silent_group_is_left_for_the_shards_new_owner() {
    let fake = Fake::start(2, Duration::ZERO).await;
    fake.publish(1, [1; 10]);
    fake.world.lock().unwrap().silent.insert(1);
    let client = fake.client(Some(5_000));
    client.latest_config().await.unwrap();
    // Only a configuration refresh can get this done: group 1 never answers.
    fake.publish(2, [2; 10]);
    fake.serve(2, 2, &ALL);
    let mut clerk = client.clerk();
    clerk.put(KEY, "v").await.unwrap();
    assert_eq!(fake.received_by(1).len(), 1, "one round over group 1");
    assert_eq!(fake.received_by(2).len(), 1);
}

#[tokio::test]
async fn a_write_unanswered_in_one_group_and_refused_by_the_next_is_unknown() {
    let fake = Fake::start(2, Duration::ZERO).await;
    fake.publish(1, [1; 10]);
    fake.world.lock().unwrap().silent.insert(1);
    let client = fake.client(Some(800));
    client.latest_config().await.unwrap();
    fake.publish(2, [2; 10]);
    // Group 2 never finishes pulling the shard.
    fake.serve(2, 2, &[]);
    let mut clerk = client.clerk();
    let error = clerk.put(KEY, "v").await.unwrap_err();
    assert!(!error.is_definite(), "{error}");
    assert!(!fake.received_by(2).is_empty(), "went on to the new owner");
}

#[tokio::test]
async fn a_write_only_ever_refused_gives_up_as_not_applied() {
    let fake = Fake::start(1, Duration::ZERO).await;
    fake.publish(1, [1; 10]);
    fake.serve(1, 1, &[]);
    // Pauses longer than the deadline: after the first refusal the clerk
    // waits out the deadline, so no attempt is ever cut short by it (which
    // would rightly make the outcome unknown), however slow the machine.
    let options = ClerkOptions {
        backoff_initial: Duration::from_secs(5),
        backoff_max: Duration::from_secs(5),
        ..options(Some(500))
    };
    let client = ShardedClient::new([fake.ctrler.clone()], options).unwrap();
    let error = client.clerk().append(KEY, "v").await.unwrap_err();
    assert!(error.is_definite(), "{error}");
    assert!(
        matches!(
            error,
            ClerkError::NotApplied {
                last: AttemptError::WrongGroup { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn with_no_group_joined_a_call_gives_up_as_not_applied_without_sending() {
    let fake = Fake::start(1, Duration::ZERO).await;
    fake.publish(0, [0; 10]);
    let mut clerk = fake.client(Some(300)).clerk();
    let error = clerk.put(KEY, "v").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClerkError::NotApplied {
                attempts: 0,
                last: AttemptError::NoGroup {
                    shard: SHARD,
                    config_num: 0
                },
                ..
            }
        ),
        "{error}"
    );
    assert!(fake.received_by(1).is_empty());
}

#[tokio::test]
async fn an_unreachable_controller_fails_the_call_as_not_applied() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let client = ShardedClient::new([addr], options(Some(300))).unwrap();
    let error = client.clerk().put(KEY, "v").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClerkError::NotApplied {
                last: AttemptError::Connect { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(client.cached_config().is_none());
}

#[tokio::test]
async fn clerks_that_fail_together_share_controller_queries() {
    const CLERKS: usize = 8;
    // A slow controller: every clerk fails while the first refresh is out.
    let fake = Fake::start(2, Duration::from_millis(100)).await;
    fake.publish(1, [1; 10]);
    fake.serve(1, 1, &[]);
    let client = fake.client(Some(10_000));
    client.latest_config().await.unwrap();
    fake.publish(2, [2; 10]);
    fake.serve(2, 2, &ALL);
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLERKS)
        .map(|i| {
            let (mut clerk, done) = (client.clerk(), done.clone());
            tokio::spawn(async move {
                clerk.put(&format!("k{i}"), "v").await.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), CLERKS);
    let refreshes = fake.world.lock().unwrap().queries - 1;
    eprintln!("{refreshes} controller queries refreshed {CLERKS} clerks");
    assert!(
        (1..CLERKS).contains(&refreshes),
        "{refreshes} controller queries for {CLERKS} clerks"
    );
}

#[tokio::test]
async fn clerks_of_one_client_share_its_configuration_and_get_distinct_ids() {
    let fake = Fake::start(1, Duration::ZERO).await;
    fake.publish(1, [1; 10]);
    fake.serve(1, 1, &ALL);
    let client = fake.client(Some(2_000));
    let (mut a, mut b) = (client.clerk(), client.clerk());
    assert_ne!(a.client_id(), b.client_id());
    a.put(KEY, "a").await.unwrap();
    b.put(KEY, "b").await.unwrap();
    assert_eq!(fake.world.lock().unwrap().queries, 1, "one query for both");
    let again = fake.client(Some(2_000));
    assert_eq!(again.clerk().client_id(), a.client_id(), "seeded");
    assert_eq!(client.clerk_with_id(77).client_id(), 77);
}

#[tokio::test]
async fn a_plain_clerk_at_a_shard_group_fails_fast_on_wrong_group() {
    let fake = Fake::start(1, Duration::ZERO).await;
    fake.serve(1, 4, &[]);
    // One attempt, long before the deadline: the group's answer is final.
    let cluster = ClusterClient::new([fake.groups[&1].clone()], options(Some(5_000))).unwrap();
    let error = cluster.clerk().put(KEY, "v").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClerkError::NotApplied {
                attempts: 1,
                last: AttemptError::WrongGroup {
                    shard: SHARD,
                    config_num: 4,
                    ..
                },
                ..
            }
        ),
        "{error}"
    );
}

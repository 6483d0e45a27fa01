//! Every controller replica holds the same configurations: after concurrent
//! changes, after a replica was killed and caught up (through a snapshot),
//! and after the whole group restarted from disk.

mod ctrler_support;
mod kvd_harness;

use client::{ClerkError, ShardConfig};
use ctrler_support::{assert_balanced, client, controllers, groups, history};
use kvd_harness::{Client, Cluster, PATIENCE, free_addr, wait_until};
use wire::{Op, Reply};

/// Every configuration as node `i` holds it. Only a leader answers
/// queries, so leadership is handed to `i` first.
async fn configs_at(c: &Cluster, i: usize) -> Vec<ShardConfig> {
    let id = c.nodes[i].id;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    'retry: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "could not read every configuration at node {id}"
        );
        let leader = c.leader().await;
        if leader != i {
            c.call(Op::TransferLeader { to: id }).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        let Ok(mut conn) = Client::connect(&c.nodes[i].client_addr).await else {
            continue;
        };
        let mut configs = Vec::new();
        for num in 0.. {
            match conn.call(Op::Query { num: Some(num) }).await {
                Ok(Reply::Config(config)) if config.num == num => configs.push(config),
                // Past the latest: the latest came back again.
                Ok(Reply::Config(_)) => return configs,
                _ => continue 'retry,
            }
        }
    }
}

/// Asserts that every node holds exactly `expected`.
async fn assert_replicas_agree(c: &Cluster, expected: &[ShardConfig]) {
    for i in 0..c.nodes.len() {
        assert_eq!(
            configs_at(c, i).await,
            expected,
            "node {} holds other configurations",
            c.nodes[i].id
        );
    }
}

/// Joins then leaves five groups at a time, `rounds` times: large entries,
/// to push the log past a small snapshot threshold.
async fn churn(ck: &mut client::CtrlerClerk, base: u64, rounds: u64) -> Result<(), ClerkError> {
    for r in 0..rounds {
        let gids: Vec<u64> = (0..5).map(|k| base + r * 10 + k).collect();
        ck.join(groups(&gids)).await?;
        ck.leave(&gids[..4]).await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_replica_holds_the_same_configurations() {
    let mut c = controllers(3, &[]);
    c.start_all().await;
    let cluster = client(&c, 21);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..3u64 {
        let mut ck = cluster.ctrler_clerk();
        tasks.spawn(async move {
            churn(&mut ck, 1000 * (worker + 1), 3).await?;
            ck.move_shard(worker as u32, 1000 * (worker + 1) + 4).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("controller calls");
    }
    let expected = history(&mut cluster.ctrler_clerk()).await;
    assert_eq!(expected.len(), 1 + 3 * (3 * 2 + 1));
    assert_replicas_agree(&c, &expected).await;
}

#[tokio::test]
async fn a_killed_replica_catches_up_and_a_restarted_group_recovers_the_same_configurations() {
    let mut c = controllers(3, &["--snapshot-threshold", "4096"]);
    c.start_all().await;
    let cluster = client(&c, 22);
    let mut ck = cluster.ctrler_clerk();
    churn(&mut ck, 100, 3).await.unwrap();
    c.kill(2);
    churn(&mut ck, 500, 12).await.unwrap();
    // The others compacted their logs past everything node 3 has.
    c.wait_logged(0, "took a snapshot").await;
    c.wait_logged(1, "took a snapshot").await;
    c.start(2).await;
    c.wait_logged(2, "installed snapshot from the leader").await;
    churn(&mut ck, 2000, 2).await.unwrap();
    let expected = history(&mut ck).await;
    assert_eq!(expected.len(), 1 + 2 * (3 + 12 + 2));
    for config in &expected[1..] {
        assert_balanced(config);
    }
    assert_replicas_agree(&c, &expected).await;

    // The whole group, killed at once, comes back from its disks.
    for i in 0..3 {
        c.kill(i);
    }
    c.start_all().await;
    assert_replicas_agree(&c, &expected).await;
    // And keeps deduplicating: the session table came back too.
    let latest = expected[expected.len() - 1].num;
    let retry = Op::Join {
        groups: groups(&[7]),
        client_id: 77,
        seq: 1,
    };
    assert_eq!(c.call(retry.clone()).await, Reply::Ok);
    c.kill(0);
    c.start(0).await;
    assert_eq!(c.call(retry).await, Reply::Ok);
    assert_eq!(history(&mut ck).await.len() as u64, latest + 2);
}

#[tokio::test]
async fn a_controller_data_dir_refuses_to_start_as_a_kv_node() {
    let mut c = controllers(1, &[]);
    c.start_all().await;
    c.leader().await;
    let mut ck = client(&c, 23).ctrler_clerk();
    ck.join(groups(&[1])).await.unwrap();
    c.kill(0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvd"))
        .args(["--id", "1", "--role", "kv", "--client-addr"])
        .arg(free_addr())
        .arg("--peer-addr")
        .arg(free_addr())
        .arg("--data-dir")
        .arg(&c.nodes[0].data_dir)
        .output()
        .expect("run kvd");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds a ctrler group's data"), "{stderr}");
    // The directory is untouched and still serves as a controller.
    c.start(0).await;
    wait_until(
        "the controller to serve its configuration again",
        || async {
            let Ok(mut conn) = Client::connect(&c.nodes[0].client_addr).await else {
                return false;
            };
            matches!(
                conn.call(Op::Query { num: None }).await,
                Ok(Reply::Config(config)) if config.num == 1
            )
        },
    )
    .await;
}

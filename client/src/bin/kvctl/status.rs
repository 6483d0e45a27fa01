//! The `status` table, for one group or a whole sharded deployment.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Context;
use client::{
    AttemptError, ClusterClient, NodeRole, NodeStatus, ShardGroupStatus, ShardState, ShardedClient,
};

const HEADERS: [&str; 9] = [
    "SERVER", "NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "SNAPSHOT",
];

/// One row per server, columns aligned; servers that did not answer get
/// their address and the error.
pub fn render(statuses: &[(String, Result<NodeStatus, AttemptError>)]) -> String {
    let mut rows: Vec<Vec<String>> = vec![HEADERS.iter().map(|h| h.to_string()).collect()];
    let mut failures = Vec::new();
    for (addr, status) in statuses {
        match status {
            Ok(s) => rows.push(vec![
                addr.clone(),
                s.node_id.to_string(),
                role_name(s.role).to_string(),
                s.term.to_string(),
                s.leader.map_or_else(|| "-".to_string(), |l| l.to_string()),
                s.commit_index.to_string(),
                s.applied_index.to_string(),
                s.last_log_index.to_string(),
                s.snapshot_index.to_string(),
            ]),
            Err(e) => failures.push(format!("{addr}: unreachable: {e}")),
        }
    }
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for (addr, status) in statuses {
        if let Ok(NodeStatus {
            shard_group: Some(group),
            ..
        }) = status
        {
            let _ = writeln!(out, "{addr}  {}", shard_line(group));
        }
    }
    for failure in failures {
        let _ = writeln!(out, "{failure}");
    }
    out
}

/// What a shard group node holds: its group, configuration and key count,
/// then its shards grouped by state, e.g.
/// `group 1, config 3, 12 keys: serving 0,1,2; pulling 5`.
fn shard_line(group: &ShardGroupStatus) -> String {
    let mut by_state: BTreeMap<ShardState, Vec<String>> = BTreeMap::new();
    for (shard, state) in &group.shards {
        by_state.entry(*state).or_default().push(shard.to_string());
    }
    let shards = if by_state.is_empty() {
        "no shards".to_string()
    } else {
        by_state
            .iter()
            .map(|(state, shards)| format!("{} {}", state_name(*state), shards.join(",")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "group {}, config {}, {} keys: {shards}",
        group.gid, group.config_num, group.keys
    )
}

fn state_name(state: ShardState) -> &'static str {
    match state {
        ShardState::Serving => "serving",
        ShardState::Pulling => "pulling",
        ShardState::Leaving => "leaving",
        ShardState::Arrived => "arrived",
    }
}

/// `status --ctrlers`: the controller group's table, then one table per
/// replica group of the latest configuration.
pub async fn run_sharded(sharded: &ShardedClient) -> anyhow::Result<()> {
    let ctrlers = sharded.ctrler().status_all().await;
    println!("controller group");
    print!("{}", render(&ctrlers));
    let mut answered = ctrlers.iter().any(|(_, s)| s.is_ok());
    let config = sharded
        .latest_config()
        .await
        .context("cannot read the latest configuration from the controller")?;
    for (gid, servers) in &config.groups {
        println!();
        println!("group {gid} (in configuration {})", config.num);
        let group = ClusterClient::new(servers.iter().cloned(), sharded.ctrler().options().clone());
        let Ok(group) = group else {
            println!("no servers listed");
            continue;
        };
        let statuses = group.status_all().await;
        answered |= statuses.iter().any(|(_, s)| s.is_ok());
        print!("{}", render(&statuses));
    }
    anyhow::ensure!(answered, "no server answered");
    Ok(())
}

fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Follower => "follower",
        NodeRole::PreCandidate => "pre-candidate",
        NodeRole::Candidate => "candidate",
        NodeRole::Leader => "leader",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_lists_unreachable_servers() {
        let status = NodeStatus {
            node_id: 1,
            role: NodeRole::Leader,
            term: 3,
            leader: Some(1),
            commit_index: 120,
            applied_index: 119,
            last_log_index: 121,
            snapshot_index: 100,
            members: Vec::new(),
            shard_group: None,
        };
        let down = AttemptError::Connect {
            addr: "127.0.0.1:7002".into(),
            reason: "connection refused".into(),
        };
        let table = render(&[
            ("127.0.0.1:7001".into(), Ok(status)),
            ("127.0.0.1:7002".into(), Err(down)),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("SERVER          NODE  ROLE    TERM"));
        assert!(lines[1].starts_with("127.0.0.1:7001  1     leader  3"));
        assert!(lines[2].contains("127.0.0.1:7002: unreachable"));
    }

    #[test]
    fn shard_group_nodes_get_a_line_with_their_shards_by_state() {
        let status = NodeStatus {
            node_id: 2,
            role: NodeRole::Follower,
            term: 3,
            leader: Some(1),
            commit_index: 10,
            applied_index: 10,
            last_log_index: 10,
            snapshot_index: 0,
            members: Vec::new(),
            shard_group: Some(ShardGroupStatus {
                gid: 7,
                config_num: 4,
                shards: BTreeMap::from([
                    (0, ShardState::Serving),
                    (5, ShardState::Pulling),
                    (2, ShardState::Serving),
                    (9, ShardState::Leaving),
                ]),
                keys: 12,
            }),
        };
        let table = render(&[("127.0.0.1:7102".into(), Ok(status))]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert_eq!(
            lines[2],
            "127.0.0.1:7102  group 7, config 4, 12 keys: serving 0,2; pulling 5; leaving 9"
        );
        let empty = ShardGroupStatus {
            gid: 1,
            config_num: 0,
            shards: BTreeMap::new(),
            keys: 0,
        };
        assert_eq!(shard_line(&empty), "group 1, config 0, 0 keys: no shards");
    }
}

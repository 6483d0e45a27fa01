//! The `status` table.

use std::fmt::Write;

use client::{AttemptError, NodeRole, NodeStatus};

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
    for failure in failures {
        let _ = writeln!(out, "{failure}");
    }
    out
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
}

//! `kvctl ctrl`: operate the shard controller (a `kvd --role ctrler` group).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::str::FromStr;

use anyhow::Context;
use clap::Subcommand;
use client::{ClusterClient, GroupId, ShardConfig, ShardId};

/// The controller's operations.
#[derive(Debug, Subcommand)]
pub enum CtrlCommand {
    /// Add replica groups and rebalance shards onto them.
    Join {
        /// A group and its servers' client addresses, e.g.
        /// `1=127.0.0.1:7101,127.0.0.1:7102`. Give several to join them at once.
        #[arg(required = true, value_name = "GID=ADDR,ADDR...")]
        groups: Vec<GroupSpec>,
    },
    /// Remove replica groups; their shards go to the remaining ones.
    Leave {
        /// Groups to remove.
        #[arg(required = true, value_name = "GID")]
        gids: Vec<GroupId>,
    },
    /// Assign one shard to one (joined) group.
    Move {
        /// The shard.
        shard: ShardId,
        /// The group that should own it.
        gid: GroupId,
    },
    /// Print a configuration: which group owns each shard, and every group's
    /// servers.
    Query {
        /// Configuration number; absent or -1 for the latest.
        #[arg(allow_negative_numbers = true)]
        num: Option<i64>,
        /// Print the configuration as one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// `GID=ADDR,ADDR...` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    gid: GroupId,
    servers: Vec<String>,
}

impl FromStr for GroupSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (gid, servers) = s
            .split_once('=')
            .ok_or_else(|| format!("expected GID=ADDR,ADDR..., got {s:?}"))?;
        let gid = gid
            .trim()
            .parse()
            .map_err(|e| format!("gid {gid:?} is not a number: {e}"))?;
        let servers: Vec<String> = servers.split(',').map(|a| a.trim().to_owned()).collect();
        if servers.iter().any(String::is_empty) {
            return Err(format!("group {gid} has an empty server address in {s:?}"));
        }
        Ok(GroupSpec { gid, servers })
    }
}

/// Runs one `ctrl` subcommand; writes print the configuration they led to.
pub async fn run(cluster: &ClusterClient, command: CtrlCommand) -> anyhow::Result<()> {
    let mut clerk = cluster.ctrler_clerk();
    match command {
        CtrlCommand::Join { groups } => {
            let mut map = BTreeMap::new();
            for g in groups {
                anyhow::ensure!(
                    map.insert(g.gid, g.servers).is_none(),
                    "group {} is named twice",
                    g.gid
                );
            }
            clerk.join(map).await?;
        }
        CtrlCommand::Leave { gids } => clerk.leave(&gids).await?,
        CtrlCommand::Move { shard, gid } => clerk.move_shard(shard, gid).await?,
        CtrlCommand::Query { num, json } => {
            let config = clerk.query(num.and_then(|n| u64::try_from(n).ok())).await?;
            if json {
                println!("{}", serde_json::to_string(&config)?);
            } else {
                print!("{}", render(&config));
            }
            return Ok(());
        }
    }
    let config = clerk
        .query(None)
        .await
        .context("the change was applied, but reading the new configuration failed")?;
    print!("{}", render(&config));
    Ok(())
}

/// A configuration for people: a shard → group table, then one line per
/// group with its shards and servers.
pub fn render(config: &ShardConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration {}: {} group(s), {} shards",
        config.num,
        config.groups.len(),
        config.shards.len()
    );
    let shard_cells: Vec<String> = (0..config.shards.len()).map(|s| s.to_string()).collect();
    let gid_cells: Vec<String> = config
        .shards
        .iter()
        .map(|&g| {
            if g == 0 {
                "-".to_owned()
            } else {
                g.to_string()
            }
        })
        .collect();
    let widths: Vec<usize> = shard_cells
        .iter()
        .zip(&gid_cells)
        .map(|(s, g)| s.len().max(g.len()))
        .collect();
    let row = |label: &str, cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        format!("{label:<7}{}", cells.join(" "))
            .trim_end()
            .to_owned()
    };
    let _ = writeln!(out, "{}", row("shard", &shard_cells));
    let _ = writeln!(out, "{}", row("group", &gid_cells));
    if config.groups.is_empty() {
        let _ = writeln!(out, "no groups: every shard is unassigned (-)");
        return out;
    }
    let gid_width = config
        .groups
        .keys()
        .map(|g| g.to_string().len())
        .max()
        .unwrap_or(1)
        .max("GROUP".len());
    let _ = writeln!(out, "{:<gid_width$}  SHARDS  SERVERS", "GROUP");
    for (gid, servers) in &config.groups {
        let owned = config.shards.iter().filter(|&&g| g == *gid).count();
        let _ = writeln!(out, "{gid:<gid_width$}  {owned:<6}  {}", servers.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_spec_parses_gid_and_addresses() {
        let g: GroupSpec = "3=a:1,b:2".parse().unwrap();
        assert_eq!(g.gid, 3);
        assert_eq!(g.servers, vec!["a:1", "b:2"]);
        assert!("a:1".parse::<GroupSpec>().is_err());
        assert!("x=a:1".parse::<GroupSpec>().is_err());
        assert!("3=".parse::<GroupSpec>().is_err());
        assert!("3=a:1,,b:2".parse::<GroupSpec>().is_err());
    }

    #[test]
    fn render_shows_the_shard_table_and_each_groups_servers() {
        let config = ShardConfig {
            num: 4,
            shards: vec![1, 1, 1, 1, 12, 12, 12, 1, 12, 12],
            groups: BTreeMap::from([
                (1, vec!["h:1".into(), "h:2".into()]),
                (12, vec!["h:3".into()]),
            ]),
        };
        let expected = "\
configuration 4: 2 group(s), 10 shards
shard  0 1 2 3  4  5  6 7  8  9
group  1 1 1 1 12 12 12 1 12 12
GROUP  SHARDS  SERVERS
1      5       h:1,h:2
12     5       h:3
";
        assert_eq!(render(&config), expected);
        let empty = ShardConfig {
            num: 0,
            shards: vec![0; 3],
            groups: BTreeMap::new(),
        };
        assert!(render(&empty).contains("group  - - -\nno groups"));
    }
}

//! Executes the nemesis schedule against the cluster, recording every
//! fault's start and end in `nemesis.jsonl`.
//!
//! Each [`Lane`] of the schedule runs as its own sequence, all lanes at
//! once: a lane's faults never overlap (the schedule guarantees it), so
//! each undo restores exactly what its fault broke, while faults of other
//! lanes may be in force around it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use nemesis::{NodeId, grudge};
use tokio::sync::{Mutex as AsyncMutex, watch};
use tokio::time::Instant;

use super::cluster::Cluster;
use super::schedule::{Fault, Lane, Schedule, ScheduledFault, Targets, grudge_of};
use super::store::NemesisLog;

/// Faults in force now, by id → description (for the progress line).
pub type ActiveFaults = Arc<Mutex<BTreeMap<u64, String>>>;

/// A fault that has been applied and must be undone.
struct Applied {
    id: u64,
    family: &'static str,
    nodes: Vec<NodeId>,
    description: String,
    undo: Undo,
}

/// How to end a fault.
enum Undo {
    /// Lift the partition.
    Heal,
    /// Restart or resume these nodes.
    Revive(Vec<NodeId>),
    /// Nothing to undo (a configuration change stays; the next one may
    /// reverse it).
    Nothing,
}

/// Runs `schedule` (offsets from `epoch`) until it is done or `stop`
/// turns true; a fault in force when stopping is undone first. Errors
/// (a node that does not come back, a failing iptables) end the nemesis
/// and are returned.
pub async fn run(
    schedule: Schedule,
    cluster: Arc<AsyncMutex<Cluster>>,
    log: Arc<NemesisLog>,
    epoch: Instant,
    active: ActiveFaults,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let lane = |lane: Lane| -> Vec<ScheduledFault> {
        schedule
            .faults
            .iter()
            .filter(|f| f.fault.lane() == lane)
            .cloned()
            .collect()
    };
    let [network, process, reconfigure] = Lane::ALL.map(lane);
    let lane_task = |faults| run_lane(faults, &cluster, &log, epoch, &active, stop.clone());
    tokio::try_join!(
        lane_task(network),
        lane_task(process),
        lane_task(reconfigure)
    )?;
    Ok(())
}

/// Runs one lane's faults, one after the other.
async fn run_lane(
    faults: Vec<ScheduledFault>,
    cluster: &AsyncMutex<Cluster>,
    log: &NemesisLog,
    epoch: Instant,
    active: &ActiveFaults,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    for fault in faults {
        let start = epoch + std::time::Duration::from_millis(fault.start_ms);
        if wait_until(start, &mut stop).await {
            return Ok(());
        }
        let applied = apply(&fault, cluster).await?;
        log.record(
            "start",
            applied.family,
            applied.id,
            &applied.nodes,
            &applied.description,
        )?;
        active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(applied.id, applied.description.clone());
        let end = epoch + std::time::Duration::from_millis(fault.end_ms);
        wait_until(end, &mut stop).await;
        let result = undo(&applied, cluster).await;
        active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&applied.id);
        log.record(
            "end",
            applied.family,
            applied.id,
            &applied.nodes,
            &applied.description,
        )?;
        result?;
    }
    Ok(())
}

/// Sleeps until `at`; returns `true` if `stop` fired first.
async fn wait_until(at: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

async fn apply(fault: &ScheduledFault, cluster: &AsyncMutex<Cluster>) -> Result<Applied> {
    if let Fault::Reconfigure { seed } = &fault.fault {
        // The controller may take seconds; other lanes' faults (a restart
        // that is due) must not wait on it, so the lock is not held.
        let change = cluster.lock().await.reconfiguration(*seed);
        return Ok(Applied {
            id: fault.id,
            family: fault.fault.family(),
            nodes: Vec::new(),
            description: change.run().await,
            undo: Undo::Nothing,
        });
    }
    let mut cluster = cluster.lock().await;
    let ids = cluster.ids();
    let (nodes, description, undo) = match &fault.fault {
        Fault::Partition { shape, cut } => {
            let grudge = grudge_of(cut);
            blocking(|| cluster.network().apply_grudge(&grudge))?;
            let nodes = cut_off(&ids, cut);
            (
                nodes,
                format!("partition {shape}: {}", describe_cut(&ids, cut)),
                Undo::Heal,
            )
        }
        Fault::PartitionLeader => {
            let (leader, how) = resolve_leader(&cluster, fault.id).await;
            let grudge = grudge::isolate(&ids, leader);
            blocking(|| cluster.network().apply_grudge(&grudge))?;
            (
                vec![leader],
                format!("partition leader: node {leader} ({how}) isolated"),
                Undo::Heal,
            )
        }
        Fault::Kill { targets } => {
            let (nodes, how) = resolve(&cluster, targets, fault.id).await;
            cluster.kill(&nodes).await.context("kill failed")?;
            let description = format!("kill {how}: {}", list(&nodes));
            (nodes.clone(), description, Undo::Revive(nodes))
        }
        Fault::Pause { targets } => {
            let (nodes, how) = resolve(&cluster, targets, fault.id).await;
            cluster.pause(&nodes).context("pause failed")?;
            let description = format!("pause {how}: {}", list(&nodes));
            (nodes.clone(), description, Undo::Revive(nodes))
        }
        Fault::Reconfigure { .. } => unreachable!("handled above, without the lock"),
    };
    Ok(Applied {
        id: fault.id,
        family: fault.fault.family(),
        nodes,
        description,
        undo,
    })
}

async fn undo(applied: &Applied, cluster: &AsyncMutex<Cluster>) -> Result<()> {
    let mut cluster = cluster.lock().await;
    match &applied.undo {
        Undo::Heal => Ok(blocking(|| cluster.network().heal())?),
        Undo::Revive(nodes) => cluster.revive(nodes).await,
        Undo::Nothing => Ok(()),
    }
}

/// Runs a network change that may block on `ip`/`iptables` (the netns
/// backend) without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The nodes a process fault hits, and how they were chosen.
async fn resolve(cluster: &Cluster, targets: &Targets, id: u64) -> (Vec<NodeId>, String) {
    match targets {
        Targets::Nodes { label, nodes } => (nodes.clone(), label.clone()),
        Targets::Leader => {
            let (leader, how) = resolve_leader(cluster, id).await;
            (vec![leader], how)
        }
    }
}

/// The current leader, or (when none answers) a node picked from the fault
/// id so replays pick the same one.
async fn resolve_leader(cluster: &Cluster, id: u64) -> (NodeId, String) {
    match cluster.leader().await {
        Some(leader) => (leader, "leader".to_owned()),
        None => {
            let ids = cluster.ids();
            let node = ids[(id as usize) % ids.len()];
            (node, "no leader found; fallback node".to_owned())
        }
    }
}

/// The nodes a partition leaves without a majority (the ones it hurts);
/// every node touched by the cut when all still see a majority.
fn cut_off(ids: &[NodeId], cut: &[[NodeId; 2]]) -> Vec<NodeId> {
    let sees = |a: NodeId| {
        ids.iter()
            .filter(|&&b| b != a && !cut.contains(&[a.min(b), a.max(b)]))
            .count()
    };
    let minority: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&a| (sees(a) + 1) * 2 <= ids.len())
        .collect();
    if minority.is_empty() {
        let mut touched: Vec<NodeId> = cut.iter().flatten().copied().collect();
        touched.sort_unstable();
        touched.dedup();
        touched
    } else {
        minority
    }
}

fn list(nodes: &[NodeId]) -> String {
    let names: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
    names.join(" ")
}

/// How a cut reads to a person: `n1 n2 | n3 n4 n5` when it splits the
/// nodes into groups, else what each node still sees (`n1 sees n2 n5; ...`).
fn describe_cut(ids: &[NodeId], cut: &[[NodeId; 2]]) -> String {
    let is_cut = |a: NodeId, b: NodeId| cut.contains(&[a.min(b), a.max(b)]);
    let sees = |a: NodeId| -> Vec<NodeId> {
        ids.iter()
            .copied()
            .filter(|&b| b != a && !is_cut(a, b))
            .collect()
    };
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for &a in ids {
        let mut group = vec![a];
        group.extend(sees(a));
        group.sort_unstable();
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    let disjoint = groups.iter().all(|g| {
        groups
            .iter()
            .all(|h| g == h || g.iter().all(|n| !h.contains(n)))
    });
    if disjoint {
        let parts: Vec<String> = groups.iter().map(|g| list(g)).collect();
        parts.join(" | ")
    } else {
        let views: Vec<String> = ids
            .iter()
            .map(|&a| format!("n{a} sees {}", list(&sees(a))))
            .collect();
        views.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partitions_read_as_groups() {
        let ids = [1, 2, 3, 4, 5];
        let g = grudge::from_groups(&ids, &[vec![1, 2], vec![3, 4, 5]]);
        let cut = super::super::schedule::cut_pairs(&g);
        assert_eq!(describe_cut(&ids, &cut), "n1 n2 | n3 n4 n5");
    }

    #[test]
    fn rings_read_as_what_each_node_sees() {
        let ids = [1, 2, 3, 4, 5];
        // 1-2-3-4-5-1 ring: each sees its two neighbours.
        let cut = vec![[1, 3], [1, 4], [2, 4], [2, 5], [3, 5]];
        assert!(describe_cut(&ids, &cut).starts_with("n1 sees n2 n5; n2 sees n1 n3"));
    }
}

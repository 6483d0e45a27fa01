//! Leader election: the 6.824 2A scenarios, plus pre-vote and check-quorum.

mod common;

use common::cluster;
use raft::Role;
use raft::sim::{Cluster, SimError, SimOptions};

#[test]
fn initial_election_elects_one_leader_and_keeps_it() -> Result<(), SimError> {
    let mut c = cluster(3, 1);
    c.check_one_leader()?;
    let term = c.check_terms()?;
    assert!(term >= 1, "a leader implies an election in term >= 1");
    // Without failures, the leader stays and nobody starts an election.
    let timeout = c.election_timeout();
    c.run_for(5 * timeout)?;
    assert_eq!(c.check_terms()?, term, "term changed without failures");
    c.check_one_leader()?;
    Ok(())
}

#[test]
fn reelection_after_leader_disconnects() -> Result<(), SimError> {
    let mut c = cluster(3, 2);
    let leader1 = c.check_one_leader()?;

    // Leader gone: the others elect a new one.
    c.disconnect(leader1);
    let leader2 = c.check_one_leader()?;
    assert_ne!(leader1, leader2);

    // The old leader rejoins: it must not disturb the new one.
    c.connect(leader1);
    assert_eq!(c.check_one_leader()?, leader2);

    // No quorum: no leader.
    c.disconnect(leader2);
    let third = (leader2 % 3) + 1;
    c.disconnect(third);
    let timeout = c.election_timeout();
    c.run_for(2 * timeout)?;
    c.check_no_leader()?;

    // A quorum again: a leader.
    c.connect(third);
    c.check_one_leader()?;

    // Everyone back: still one leader.
    c.connect(leader2);
    c.check_one_leader()?;
    Ok(())
}

#[test]
fn many_elections_always_converge_on_one_leader() -> Result<(), SimError> {
    let mut c = cluster(7, 3);
    c.check_one_leader()?;
    let ids: Vec<u64> = c.ids().collect();
    for iteration in 0..10u64 {
        // Disconnect three distinct nodes, chosen by the iteration number.
        let victims: Vec<u64> = (0..3)
            .map(|k| ids[((iteration * 3 + k * 2) % 7) as usize])
            .collect();
        for &v in &victims {
            c.disconnect(v);
        }
        // Four of seven remain: still a quorum.
        c.check_one_leader()?;
        for &v in &victims {
            c.connect(v);
        }
    }
    c.check_one_leader()?;
    Ok(())
}

#[test]
fn rejoining_partitioned_node_does_not_depose_healthy_leader() -> Result<(), SimError> {
    let mut c = cluster(3, 4);
    let leader = c.check_one_leader()?;
    let term = c.check_terms()?;
    let loner = (leader % 3) + 1;
    c.disconnect(loner);
    let timeout = c.election_timeout();
    c.run_for(10 * timeout)?;
    assert_eq!(
        c.node(loner).map(|n| n.term()),
        Some(term),
        "pre-vote keeps an isolated node from bumping its term"
    );
    c.connect(loner);
    c.run_for(3 * timeout)?;
    assert_eq!(c.check_one_leader()?, leader);
    assert_eq!(c.check_terms()?, term);
    Ok(())
}

/// Cuts and restores the link between the leader and one follower over and
/// over, each cut longer than an election timeout. Returns the terms seen
/// before and after, and whether the original leader still leads.
fn flap_leader_link(mut c: Cluster) -> Result<(u64, u64, bool), SimError> {
    let leader = c.check_one_leader()?;
    let term = c.check_terms()?;
    let follower = (leader % 3) + 1;
    let timeout = c.election_timeout();
    for _ in 0..10 {
        c.set_link(leader, follower, false);
        c.run_for(timeout + timeout / 2)?;
        c.set_link(leader, follower, true);
        c.run_for(timeout / 4)?;
    }
    c.run_for(2 * timeout)?;
    let still_leader = c.node(leader).is_some_and(|n| n.role() == Role::Leader);
    Ok((term, c.check_terms()?, still_leader))
}

#[test]
fn flapping_link_does_not_disrupt_leader_with_pre_vote_and_check_quorum() -> Result<(), SimError> {
    let (before, after, still_leader) = flap_leader_link(cluster(3, 5))?;
    assert_eq!(before, after, "no election may happen");
    assert!(still_leader);
    Ok(())
}

#[test]
fn flapping_link_disrupts_leader_without_pre_vote() -> Result<(), SimError> {
    // The same scenario without the protections shows what they prevent.
    let mut opts = SimOptions::new(3, 5);
    opts.node_config.pre_vote = false;
    opts.node_config.check_quorum = false;
    let (before, after, _) = flap_leader_link(Cluster::new(opts))?;
    assert!(after > before, "the cut-off follower forces new elections");
    Ok(())
}

#[test]
fn leader_cut_off_from_majority_steps_down() -> Result<(), SimError> {
    let mut c = cluster(5, 6);
    let leader = c.check_one_leader()?;
    c.disconnect(leader);
    let timeout = c.election_timeout();
    c.run_for(timeout)?;
    let role = c.node(leader).map(|n| n.role());
    assert_ne!(role, Some(Role::Leader), "check-quorum makes it step down");
    let others = c.check_one_leader()?;
    assert_ne!(others, leader);
    Ok(())
}

#[test]
fn leader_without_check_quorum_keeps_believing_it_leads_when_cut_off() -> Result<(), SimError> {
    let mut opts = SimOptions::new(5, 6);
    opts.node_config.check_quorum = false;
    let mut c = Cluster::new(opts);
    let leader = c.check_one_leader()?;
    c.disconnect(leader);
    let timeout = c.election_timeout();
    c.run_for(3 * timeout)?;
    assert_eq!(c.node(leader).map(|n| n.role()), Some(Role::Leader));
    Ok(())
}

#[test]
fn single_node_cluster_elects_itself_and_commits_alone() -> Result<(), SimError> {
    let mut c = cluster(1, 7);
    assert_eq!(c.check_one_leader()?, 1);
    let index = c.one(common::cmd(1), 1, false)?;
    assert_eq!(index, 2);
    Ok(())
}

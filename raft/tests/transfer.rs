//! Leadership transfer (TimeoutNow): hand leadership to a chosen voter
//! without waiting for timeouts, after catching it up.

mod common;

use bytes::Bytes;
use common::{cluster, cmd};
use raft::sim::SimError;
use raft::{ProposeError, Role, TransferError};

#[test]
fn transfer_to_up_to_date_follower_makes_it_leader_in_the_next_term() -> Result<(), SimError> {
    let mut c = cluster(3, 50);
    c.one(cmd(1), 3, false)?;
    let old = c.check_one_leader()?;
    let term = c.check_terms()?;
    let target = old % 3 + 1;
    let start = c.now();
    assert_eq!(c.transfer_leader(old, target)?, Ok(()));
    let timeout = c.election_timeout();
    let moved = c.run_until(timeout, |c| {
        c.node(target).is_some_and(|n| n.role() == Role::Leader)
    })?;
    assert!(
        moved,
        "transfer did not complete within an election timeout"
    );
    assert!(
        c.now() - start < timeout / 2,
        "transfer waited for a timeout"
    );
    assert_eq!(c.node(target).map(|n| n.term()), Some(term + 1));
    c.run_for(timeout / 4)?;
    assert_eq!(c.node(old).map(|n| n.role()), Some(Role::Follower));
    c.one(cmd(2), 3, false)?;
    Ok(())
}

#[test]
fn transfer_to_lagging_follower_catches_it_up_first() -> Result<(), SimError> {
    let mut c = cluster(3, 51);
    c.one(cmd(0), 3, false)?;
    let old = c.check_one_leader()?;
    let target = old % 3 + 1;
    c.disconnect(target);
    for n in 1..=20 {
        c.one(cmd(n), 2, false)?;
    }
    c.connect(target);
    let behind = c.node(target).map(|n| n.last_index()) < c.node(old).map(|n| n.last_index());
    assert!(behind, "the target must start behind");
    assert_eq!(c.transfer_leader(old, target)?, Ok(()));
    let timeout = c.election_timeout();
    let moved = c.run_until(timeout, |c| {
        c.node(target).is_some_and(|n| n.role() == Role::Leader)
    })?;
    assert!(moved);
    c.one(cmd(21), 3, false)?;
    Ok(())
}

#[test]
fn transfer_to_unreachable_node_is_abandoned_after_an_election_timeout() -> Result<(), SimError> {
    let mut c = cluster(3, 52);
    c.one(cmd(0), 3, false)?;
    let leader = c.check_one_leader()?;
    let target = leader % 3 + 1;
    c.disconnect(target);
    c.one(cmd(1), 2, false)?;
    assert_eq!(c.transfer_leader(leader, target)?, Ok(()));
    assert_eq!(
        c.propose(leader, Bytes::from_static(b"during"))?,
        Err(ProposeError::TransferInProgress { to: target })
    );
    let timeout = c.election_timeout();
    c.run_for(timeout)?;
    assert_eq!(c.node(leader).map(|n| n.role()), Some(Role::Leader));
    assert_eq!(c.node(leader).and_then(|n| n.transferee()), None);
    assert!(c.propose(leader, Bytes::from_static(b"after"))?.is_ok());
    Ok(())
}

#[test]
fn transfer_requests_are_validated() -> Result<(), SimError> {
    let mut c = cluster(3, 53);
    let leader = c.check_one_leader()?;
    let follower = leader % 3 + 1;
    assert_eq!(
        c.transfer_leader(follower, leader)?,
        Err(TransferError::NotLeader {
            leader_hint: Some(leader)
        })
    );
    assert_eq!(
        c.transfer_leader(leader, 99)?,
        Err(TransferError::UnknownNode(99))
    );
    // Transferring to itself changes nothing.
    assert_eq!(c.transfer_leader(leader, leader)?, Ok(()));
    assert_eq!(c.node(leader).and_then(|n| n.transferee()), None);
    c.one(cmd(1), 3, false)?;
    Ok(())
}

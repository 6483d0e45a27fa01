//! Linearizable reads through ReadIndex: no log writes, a heartbeat round
//! to confirm leadership, and a commit in the leader's own term first.

mod common;

use common::{cluster, cmd, single_leader};
use raft::sim::{Cluster, SimError, SimOptions};
use raft::{ReadIndexError, Role};

#[test]
fn read_on_fresh_leader_waits_for_a_commit_in_its_term() -> Result<(), SimError> {
    let mut c = cluster(3, 40);
    let timeout = c.election_timeout();
    assert!(c.run_until(10 * timeout, single_leader)?);
    let leader = c.leader().expect("just elected");
    let node = c.node(leader).expect("running");
    let (noop, term) = (node.last_index(), node.term());
    assert!(
        node.commit_index() < noop,
        "the no-op cannot have committed yet"
    );

    assert_eq!(c.read_index(leader, 7)?, Ok(()));
    assert!(
        c.completed_reads(leader).is_empty(),
        "answered before committing in its term"
    );
    assert!(c.run_until(timeout, |c| !c.completed_reads(leader).is_empty())?);
    let read = c.completed_reads(leader)[0];
    assert_eq!(read.ctx, 7);
    assert!(
        read.index >= noop,
        "read index {} is before the no-op {noop}",
        read.index
    );
    assert_eq!(c.node(leader).and_then(|n| n.term_at(noop)), Some(term));
    Ok(())
}

#[test]
fn reads_do_not_write_the_log_and_share_a_heartbeat_round() -> Result<(), SimError> {
    let mut c = cluster(3, 41);
    c.one(cmd(1), 3, false)?;
    let leader = c.check_one_leader()?;
    let last_index = c.node(leader).map(|n| n.last_index());
    let heartbeats = c.net_stats().sent_of("Heartbeat");
    assert_eq!(c.read_index_batch(leader, 0..100)?, Ok(()));
    assert!(
        c.run_until(c.election_timeout(), |c| c.completed_reads(leader).len()
            == 100)?
    );
    assert_eq!(
        c.node(leader).map(|n| n.last_index()),
        last_index,
        "reads wrote the log"
    );
    let commit = c.node(leader).map(|n| n.commit_index());
    assert!(
        c.completed_reads(leader)
            .iter()
            .all(|r| Some(r.index) == commit)
    );
    let rounds = c.net_stats().sent_of("Heartbeat") - heartbeats;
    assert!(rounds <= 4, "100 reads took {rounds} heartbeats to confirm");
    Ok(())
}

#[test]
fn leader_cut_off_from_majority_never_answers_reads() -> Result<(), SimError> {
    // Without check-quorum the old leader keeps believing it leads, which is
    // exactly when ReadIndex must protect the reader.
    let mut opts = SimOptions::new(3, 42);
    opts.node_config.check_quorum = false;
    let mut c = Cluster::new(opts);
    c.one(cmd(1), 3, false)?;
    let old = c.check_one_leader()?;
    c.disconnect(old);
    assert_eq!(c.read_index(old, 1)?, Ok(()));
    // The majority moves on and commits a write the old leader cannot see.
    c.one(cmd(2), 2, true)?;
    let timeout = c.election_timeout();
    c.run_for(5 * timeout)?;
    assert_eq!(c.node(old).map(|n| n.role()), Some(Role::Leader));
    assert!(
        c.completed_reads(old).is_empty(),
        "a deposed leader served a read"
    );
    Ok(())
}

#[test]
fn follower_refuses_reads_and_names_the_leader() -> Result<(), SimError> {
    let mut c = cluster(3, 43);
    let leader = c.check_one_leader()?;
    let follower = leader % 3 + 1;
    assert_eq!(
        c.read_index(follower, 1)?,
        Err(ReadIndexError::NotLeader {
            leader_hint: Some(leader)
        })
    );
    Ok(())
}

#[test]
fn single_node_answers_reads_at_once() -> Result<(), SimError> {
    let mut c = cluster(1, 44);
    c.one(cmd(1), 1, false)?;
    assert_eq!(c.read_index(1, 9)?, Ok(()));
    let reads = c.completed_reads(1);
    assert_eq!(reads.len(), 1);
    assert_eq!(Some(reads[0].index), c.node(1).map(|n| n.commit_index()));
    Ok(())
}

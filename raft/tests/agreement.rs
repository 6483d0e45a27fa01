//! Log agreement: the 6.824 2B scenarios.

mod common;

use bytes::Bytes;
use common::{cluster, cmd};
use raft::sim::{Cluster, NetConfig, SimError, SimOptions};
use raft::{Config, Entry, HardState, Message, MessageBody, RawNode, Role};

#[test]
fn basic_agreement_commits_on_every_node() -> Result<(), SimError> {
    let mut c = cluster(3, 10);
    c.check_one_leader()?;
    let mut last = 1; // index 1 is the first leader's no-op
    for n in 1..=3 {
        let (count, _) = c.n_committed(last + 1);
        assert_eq!(count, 0, "nothing may commit before it is proposed");
        let index = c.one(cmd(n), 3, false)?;
        assert_eq!(index, last + 1, "commands occupy consecutive slots");
        last = index;
    }
    Ok(())
}

#[test]
fn each_command_is_sent_to_each_follower_once() -> Result<(), SimError> {
    let mut c = cluster(3, 11);
    c.check_one_leader()?;
    let before = c.net_stats().payload_bytes;
    let size = 5000;
    let commands = 10u64;
    for n in 0..commands {
        let payload = Bytes::from(vec![b'a' + n as u8; size]);
        c.one(payload, 3, false)?;
    }
    let sent = c.net_stats().payload_bytes - before;
    let expected = commands * size as u64 * 2;
    assert!(
        sent <= expected,
        "sent {sent} payload bytes, one copy per follower is {expected}"
    );
    Ok(())
}

#[test]
fn agreement_continues_with_a_follower_disconnected() -> Result<(), SimError> {
    let mut c = cluster(3, 12);
    c.one(cmd(101), 3, false)?;
    let leader = c.check_one_leader()?;
    let follower = (leader % 3) + 1;
    c.disconnect(follower);
    // The remaining two still form a majority.
    c.one(cmd(102), 2, false)?;
    c.one(cmd(103), 2, false)?;
    let timeout = c.election_timeout();
    c.run_for(timeout)?;
    c.one(cmd(104), 2, false)?;
    c.one(cmd(105), 2, false)?;
    // The follower returns and catches up.
    c.connect(follower);
    c.one(cmd(106), 3, true)?;
    c.run_for(timeout)?;
    c.one(cmd(107), 3, true)?;
    Ok(())
}

#[test]
fn no_agreement_without_a_majority() -> Result<(), SimError> {
    let mut c = cluster(5, 13);
    c.one(cmd(10), 5, false)?;
    let leader = c.check_one_leader()?;
    let followers: Vec<u64> = c.ids().filter(|&id| id != leader).take(3).collect();
    for &f in &followers {
        c.disconnect(f);
    }
    let index = match c.propose(leader, cmd(20))? {
        Ok(index) => index,
        Err(e) => panic!("leader refused the proposal: {e}"),
    };
    let timeout = c.election_timeout();
    c.run_for(2 * timeout)?;
    assert_eq!(c.n_committed(index).0, 0, "two of five cannot commit");
    for &f in &followers {
        c.connect(f);
    }
    // The group recovers; whatever happens to index `index` is consistent
    // (the invariant checker watches), and new commands commit.
    c.check_one_leader()?;
    c.one(cmd(1000), 5, true)?;
    Ok(())
}

#[test]
fn concurrent_proposals_all_commit_in_some_order() -> Result<(), SimError> {
    let mut c = cluster(3, 14);
    let leader = c.check_one_leader()?;
    let mut indices = Vec::new();
    for n in 0..5 {
        match c.propose(leader, cmd(n))? {
            Ok(index) => indices.push(index),
            Err(e) => panic!("leader refused a proposal: {e}"),
        }
    }
    let term = c.node(leader).map(|n| n.term());
    let mut seen = Vec::new();
    for &index in &indices {
        match c.wait(index, 3, term)? {
            Some(data) => seen.push(data),
            None => panic!("term changed; no failures were injected"),
        }
    }
    for n in 0..5 {
        assert!(seen.contains(&cmd(n)), "command {n} was lost");
    }
    Ok(())
}

#[test]
fn partitioned_leader_rejoins_and_gives_way() -> Result<(), SimError> {
    let mut c = cluster(3, 15);
    c.one(cmd(101), 3, true)?;
    let leader1 = c.check_one_leader()?;
    c.disconnect(leader1);
    // The old leader accepts commands that can never commit.
    for n in 102..=104 {
        let _ = c.propose(leader1, cmd(n))?;
    }
    // The others elect a new leader and commit.
    c.one(cmd(103), 2, true)?;
    let leader2 = c.check_one_leader()?;
    c.disconnect(leader2);
    c.connect(leader1);
    c.one(cmd(104), 2, true)?;
    c.connect(leader2);
    c.one(cmd(105), 3, true)?;
    Ok(())
}

#[test]
fn leader_backs_up_quickly_over_divergent_logs() -> Result<(), SimError> {
    let mut c = cluster(5, 16);
    let mut n = 0;
    let mut next = || {
        n += 1;
        cmd(n)
    };
    c.one(next(), 5, true)?;
    let leader1 = c.check_one_leader()?;
    let ids: Vec<u64> = c.ids().collect();
    let others: Vec<u64> = ids.iter().copied().filter(|&i| i != leader1).collect();
    // Put the leader and one follower in a minority.
    for &f in &others[1..] {
        c.disconnect(f);
    }
    let uncommitted: Vec<Bytes> = (0..50).map(|_| next()).collect();
    let _ = c.propose_batch(leader1, uncommitted)?;
    let timeout = c.election_timeout();
    c.run_for(timeout / 2)?;
    c.disconnect(leader1);
    c.disconnect(others[0]);
    // The majority side commits many entries.
    for &f in &others[1..] {
        c.connect(f);
    }
    for _ in 0..50 {
        c.one(next(), 3, true)?;
    }
    // Its leader loses one follower and piles up uncommitted entries.
    let leader2 = c.check_one_leader()?;
    let other = others[1..]
        .iter()
        .copied()
        .find(|&f| f != leader2)
        .unwrap_or(others[1]);
    c.disconnect(other);
    let uncommitted: Vec<Bytes> = (0..50).map(|_| next()).collect();
    let _ = c.propose_batch(leader2, uncommitted)?;
    c.run_for(timeout / 2)?;
    // The first minority plus `other` take over and must overwrite.
    for id in c.ids().collect::<Vec<_>>() {
        c.disconnect(id);
    }
    c.connect(leader1);
    c.connect(others[0]);
    c.connect(other);
    for _ in 0..50 {
        c.one(next(), 3, true)?;
    }
    for id in c.ids().collect::<Vec<_>>() {
        c.connect(id);
    }
    c.one(next(), 5, true)?;
    Ok(())
}

#[test]
fn message_budget_stays_small() -> Result<(), SimError> {
    let mut c = cluster(3, 17);
    // An election costs a handful of messages, not a storm.
    let elected = c.run_until(10 * c.election_timeout(), common::single_leader)?;
    assert!(elected);
    let election_msgs = c.net_stats().sent;
    assert!(
        election_msgs <= 30,
        "{election_msgs} messages to elect a leader"
    );
    let leader = c.check_one_leader()?;
    let term = c.check_terms()?;

    // Ten commands proposed together travel in one append per follower.
    let before = c.net_stats().sent;
    let appends_before = c.net_stats().sent_of("AppendEntries");
    let batch: Vec<Bytes> = (0..10).map(cmd).collect();
    let last = match c.propose_batch(leader, batch)? {
        Ok(index) => index,
        Err(e) => panic!("leader refused proposals: {e}"),
    };
    assert!(c.wait(last, 3, Some(term))?.is_some());
    let agreement_msgs = c.net_stats().sent - before;
    let appends = c.net_stats().sent_of("AppendEntries") - appends_before;
    assert_eq!(appends, 2, "the batch must share one append per follower");
    assert!(
        agreement_msgs <= (10 + 1 + 3) * 3 * 2,
        "{agreement_msgs} messages to commit 10 commands"
    );

    // Idle: only heartbeats and their answers, one round per tick.
    let before = c.net_stats().sent;
    let ticks = 100;
    c.run_for(ticks * c.options().tick_interval)?;
    let idle_msgs = c.net_stats().sent - before;
    assert!(
        idle_msgs <= (ticks + 1) * 2 * 2,
        "{idle_msgs} messages in {ticks} idle ticks"
    );
    assert_eq!(c.check_terms()?, term);
    Ok(())
}

#[test]
fn agreement_over_an_unreliable_network() -> Result<(), SimError> {
    let mut opts = SimOptions::new(5, 18);
    opts.net = NetConfig::unreliable();
    let mut c = Cluster::new(opts);
    for iteration in 1..30u64 {
        for j in 0..4 {
            if let Some(leader) = c.leader() {
                let _ = c.propose(leader, cmd(100 * iteration + j))?;
            }
        }
        c.one(cmd(iteration), 1, true)?;
    }
    c.set_net(NetConfig::reliable());
    c.one(cmd(100), 5, true)?;
    Ok(())
}

fn restored(id: u64, terms: &[u64]) -> RawNode {
    let mut config = Config::new(id, vec![1, 2, 3]);
    config.pre_vote = false;
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            term,
            index: i as u64 + 1,
            data: cmd(i as u64),
        })
        .collect();
    let hard = HardState {
        term: 2,
        vote: None,
        commit: 1,
    };
    RawNode::restore(config, hard, None, entries).expect("valid state")
}

fn ack(index: u64) -> Message {
    Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::AppendEntriesResponse {
            index,
            reject: None,
        },
    }
}

#[test]
fn leader_never_commits_an_earlier_term_entry_by_counting_replicas() {
    // Node 1 holds entry 2 from term 2, which never committed; it wins
    // term 3 with node 2's vote and appends its no-op at index 3.
    let mut leader = restored(1, &[1, 2]);
    let mut voter = restored(2, &[1]);
    leader.campaign();
    for request in leader.ready().messages.into_iter().filter(|m| m.to == 2) {
        voter.step(request).expect("well-formed");
    }
    for reply in voter.ready().messages {
        leader.step(reply).expect("well-formed");
    }
    assert_eq!(leader.role(), Role::Leader);
    assert_eq!(leader.term_at(3), Some(3), "the no-op");
    leader.ready();

    // A majority (leader and node 2) now stores entry 2, but it is from
    // term 2: committing it by counting is the Figure 8 bug.
    leader.step(ack(2)).expect("well-formed");
    assert_eq!(leader.commit_index(), 1);
    // Once the no-op is on a majority, it commits and entry 2 with it.
    leader.step(ack(3)).expect("well-formed");
    assert_eq!(leader.commit_index(), 3);
}

//! Crashes and restarts from persisted state: the 6.824 2C scenarios
//! (persist 1–3, Figure 8, churn) and the persistence contract itself.

mod common;

use bytes::Bytes;
use common::{cluster, cmd};
use raft::sim::{Cluster, NetConfig, SimError, SimOptions};
use raft::{Config, HardState, Message, MessageBody, RawNode, Role};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

#[test]
fn committed_log_survives_crashes_of_every_node() -> Result<(), SimError> {
    let mut c = cluster(3, 20);
    c.one(cmd(11), 3, true)?;
    for id in 1..=3 {
        c.crash(id)?;
    }
    for id in 1..=3 {
        c.restart(id)?;
    }
    c.one(cmd(12), 3, true)?;

    let leader1 = c.check_one_leader()?;
    c.crash_and_restart(leader1)?;
    c.one(cmd(13), 3, true)?;

    let leader2 = c.check_one_leader()?;
    c.disconnect(leader2);
    let index = c.one(cmd(14), 2, true)?;
    c.connect(leader2);
    c.crash_and_restart(leader2)?;
    c.wait(index, 3, None)?;

    let other = (leader2 % 3) + 1;
    c.crash_and_restart(other)?;
    c.one(cmd(16), 3, true)?;
    Ok(())
}

#[test]
fn more_persistence_with_partitions_and_restarts() -> Result<(), SimError> {
    let mut c = cluster(5, 21);
    let at = |l: u64, k: u64| (l - 1 + k) % 5 + 1;
    for iteration in 0..5u64 {
        c.one(cmd(10 + iteration), 5, true)?;
        let leader1 = c.check_one_leader()?;
        c.disconnect(at(leader1, 1));
        c.disconnect(at(leader1, 2));
        c.one(cmd(20 + iteration), 3, true)?;
        c.disconnect(leader1);
        c.disconnect(at(leader1, 3));
        c.disconnect(at(leader1, 4));
        c.crash_and_restart(at(leader1, 1))?;
        c.crash_and_restart(at(leader1, 2))?;
        c.connect(at(leader1, 1));
        c.connect(at(leader1, 2));
        let timeout = c.election_timeout();
        c.run_for(timeout)?;
        c.crash_and_restart(at(leader1, 3))?;
        c.connect(at(leader1, 3));
        c.one(cmd(30 + iteration), 3, true)?;
        c.connect(leader1);
        c.connect(at(leader1, 4));
    }
    c.one(cmd(1000), 5, true)?;
    Ok(())
}

#[test]
fn crashed_majority_recovers_with_the_committed_log() -> Result<(), SimError> {
    let mut c = cluster(3, 22);
    c.one(cmd(101), 3, false)?;
    let leader = c.check_one_leader()?;
    let at = |k: u64| (leader - 1 + k) % 3 + 1;
    c.disconnect(at(2));
    c.one(cmd(102), 2, false)?;
    c.crash(at(0))?;
    c.crash(at(1))?;
    c.connect(at(2));
    c.restart(at(0))?;
    c.one(cmd(103), 2, true)?;
    c.restart(at(1))?;
    c.one(cmd(104), 3, true)?;
    Ok(())
}

/// The 6.824 Figure 8 test: leaders crash shortly after taking office,
/// leaving entries of many terms partly replicated.
fn figure8(mut c: Cluster, seed: u64, unreliable: bool) -> Result<(), SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    c.one(cmd(0), 1, true)?;
    let ids: Vec<u64> = c.ids().collect();
    let mut up = ids.len();
    let mut leaders_lost = 0;
    for iteration in 0..1000u64 {
        let mut leader = None;
        for &id in &ids {
            if c.propose(id, cmd(iteration * 10 + id))?.is_ok() && c.is_connected(id) {
                leader = Some(id);
            }
        }
        let pause = if rng.random_bool(0.1) {
            rng.random_range(0..c.election_timeout() * 2)
        } else {
            rng.random_range(0..14)
        };
        c.run_for(pause)?;
        if let Some(l) = leader {
            if unreliable {
                c.disconnect(l);
            } else {
                c.crash(l)?;
            }
            up -= 1;
            leaders_lost += 1;
        }
        if up < 3 {
            let id = ids[rng.random_range(0..ids.len())];
            let down = if unreliable {
                !c.is_connected(id)
            } else {
                !c.is_up(id)
            };
            if down {
                c.restart(id)?;
                c.connect(id);
                up += 1;
            }
        }
    }
    for &id in &ids {
        c.restart(id)?;
        c.connect(id);
    }
    assert!(
        leaders_lost >= 30,
        "only {leaders_lost} leaders were taken down"
    );
    c.set_net(NetConfig::reliable());
    c.one(cmd(1_000_000), 5, true)?;
    Ok(())
}

#[test]
fn figure8_leader_churn_never_loses_committed_entries() -> Result<(), SimError> {
    figure8(cluster(5, 23), 23, false)
}

#[test]
fn figure8_over_an_unreliable_network() -> Result<(), SimError> {
    let mut opts = SimOptions::new(5, 24);
    opts.net = NetConfig::unreliable();
    figure8(Cluster::new(opts), 24, true)
}

/// The 6.824 churn tests: nodes crash, restart, disconnect and reconnect at
/// random while commands keep arriving; every command that was seen
/// committed must end up applied everywhere.
fn churn(mut c: Cluster, seed: u64) -> Result<(), SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<u64> = c.ids().collect();
    let mut seen_committed: Vec<(u64, Bytes)> = Vec::new();
    let mut pending: Vec<(u64, Bytes)> = Vec::new();
    let mut next = 0u64;
    while c.now() < 20 * c.election_timeout() {
        for &id in &ids {
            next += 1;
            if let Ok(index) = c.propose(id, cmd(next))? {
                pending.push((index, cmd(next)));
            }
        }
        // What a client would have been told: its command committed.
        pending.retain(|(index, sent)| match c.n_committed(*index) {
            (n, Some(data)) if n > 0 => {
                if data == *sent {
                    seen_committed.push((*index, data));
                }
                false
            }
            _ => true,
        });
        let id = ids[rng.random_range(0..ids.len())];
        match rng.random_range(0..6) {
            0 => c.disconnect(id),
            1 => c.connect(id),
            2 => c.crash(id)?,
            3 => {
                c.restart(id)?;
                c.connect(id);
            }
            _ => {}
        }
        // Keep a majority running so that the run makes progress.
        let running = ids.iter().filter(|&&i| c.is_connected(i)).count();
        if running < 3 {
            for &i in &ids {
                c.restart(i)?;
                c.connect(i);
            }
        }
        c.run_for(rng.random_range(0..c.election_timeout() / 2))?;
    }
    for &id in &ids {
        c.restart(id)?;
        c.connect(id);
    }
    c.set_net(NetConfig::reliable());
    let last = c.one(cmd(u64::MAX), 5, true)?;
    assert!(!seen_committed.is_empty(), "churn committed nothing");
    for (index, data) in seen_committed {
        assert!(index <= last);
        let (count, now) = c.n_committed(index);
        assert_eq!(count, 5, "index {index} not applied everywhere");
        assert_eq!(now, Some(data), "committed entry {index} changed");
    }
    Ok(())
}

#[test]
fn reliable_churn_keeps_every_committed_command() -> Result<(), SimError> {
    churn(cluster(5, 25), 25)
}

#[test]
fn unreliable_churn_keeps_every_committed_command() -> Result<(), SimError> {
    let mut opts = SimOptions::new(5, 26);
    opts.net = NetConfig::unreliable();
    churn(Cluster::new(opts), 26)
}

/// Drives a node's `Ready` loop with a no-op driver that only keeps the
/// hard state, returning the messages it sends.
fn drain(node: &mut RawNode, hard: &mut HardState) -> Vec<Message> {
    let mut out = Vec::new();
    while node.has_ready() {
        let rd = node.ready();
        if let Some(hs) = rd.hard_state {
            *hard = hs;
        }
        out.extend(rd.messages);
        node.advance();
    }
    out
}

fn vote_request(from: u64, term: u64) -> Message {
    Message {
        from,
        to: 1,
        term,
        body: MessageBody::RequestVote {
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        },
    }
}

#[test]
fn vote_is_persisted_before_it_is_sent_and_survives_restart() {
    let config = Config::new(1, vec![1, 2, 3]);
    let mut node = RawNode::new(config.clone()).expect("valid config");
    let mut hard = HardState::default();
    node.step(vote_request(2, 5)).expect("well-formed");
    // The grant and the durable vote leave in the same Ready, vote first.
    let rd = node.ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 5,
            vote: Some(2),
            commit: 0
        })
    );
    assert!(matches!(
        rd.messages.as_slice(),
        [Message {
            body: MessageBody::RequestVoteResponse { granted: true },
            ..
        }]
    ));
    hard = rd.hard_state.unwrap_or(hard);
    node.advance();

    // After a crash, the restored node remembers it voted in term 5.
    let mut node = RawNode::restore(config, hard, None, Vec::new()).expect("valid state");
    node.step(vote_request(3, 5)).expect("well-formed");
    let replies = drain(&mut node, &mut hard);
    assert!(matches!(
        replies.as_slice(),
        [Message {
            body: MessageBody::RequestVoteResponse { granted: false },
            ..
        }]
    ));
    assert_eq!(node.vote(), Some(2));
    assert_eq!(node.role(), Role::Follower);
}

//! The shard controller's replicated state machine (`kvd --role ctrler`).
//!
//! The controller decides which replica group serves which shard. It keeps
//! every configuration it has ever made, numbered from 0; configuration 0
//! has no groups and every shard on gid 0 (nobody). Each successful write
//! makes the next configuration:
//!
//! - `join` adds groups (gid → the client addresses of its servers) and
//!   rebalances;
//! - `leave` removes groups and rebalances their shards onto the rest;
//! - `move` assigns one shard to one group, nothing else changes (operators
//!   and tests use it; the next join or leave evens things out again).
//!
//! Rebalancing ([`rebalance`]) spreads shards as evenly as possible with the
//! fewest moves, deterministically, so every replica computes the same
//! configuration from the same log. `query` returns configuration `num`, or
//! the latest.
//!
//! Writes are exactly-once like kv writes, with one difference: a controller
//! write can be refused *when it is applied* (joining a gid that is already
//! in, leaving one that is not), so the session table keeps the reply of
//! each client's latest write, and a retry gets the same answer as the first
//! attempt. Sessions and configurations together are the snapshot image.

mod rebalance;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wire::{ClientId, GroupId, NSHARDS, Op, Reply, ShardConfig, ShardId};

use crate::state_machine::{Admission, SnapshotDecodeError, StateMachine, not_served};

/// A controller write as it travels through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Add groups and rebalance.
    Join {
        groups: BTreeMap<GroupId, Vec<String>>,
        client_id: ClientId,
        seq: u64,
    },
    /// Remove groups and rebalance.
    Leave {
        gids: Vec<GroupId>,
        client_id: ClientId,
        seq: u64,
    },
    /// Give `shard` to `gid`.
    Move {
        shard: ShardId,
        gid: GroupId,
        client_id: ClientId,
        seq: u64,
    },
}

impl Command {
    fn encode(&self) -> Bytes {
        // Maps, vectors, strings and integers always encode into a Vec.
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    fn decode(data: &[u8]) -> Result<Command, rmp_serde::decode::Error> {
        rmp_serde::from_slice(data)
    }

    fn session(&self) -> (ClientId, u64) {
        match *self {
            Command::Join { client_id, seq, .. }
            | Command::Leave { client_id, seq, .. }
            | Command::Move { client_id, seq, .. } => (client_id, seq),
        }
    }

    /// Checks what does not depend on the state: refused before proposing,
    /// and again when applied (an entry is not trusted to have been checked).
    fn validate(&self, nshards: usize) -> Result<(), String> {
        match self {
            Command::Join { groups, .. } => {
                if groups.is_empty() {
                    return Err("join names no groups".into());
                }
                if groups.contains_key(&0) {
                    return Err("gid 0 means \"no group\" and cannot join".into());
                }
                for (gid, servers) in groups {
                    if servers.is_empty() {
                        return Err(format!("group {gid} has no servers"));
                    }
                    if servers.iter().any(String::is_empty) {
                        return Err(format!("group {gid} has an empty server address"));
                    }
                }
                Ok(())
            }
            Command::Leave { gids, .. } if gids.is_empty() => Err("leave names no groups".into()),
            Command::Leave { .. } => Ok(()),
            Command::Move { shard, .. } if *shard as usize >= nshards => Err(format!(
                "shard {shard} does not exist (shards are 0..{nshards})"
            )),
            Command::Move { .. } => Ok(()),
        }
    }

    /// Bytes of user payload (addresses), for the frame limit.
    fn payload_bytes(&self) -> usize {
        match self {
            Command::Join { groups, .. } => groups
                .values()
                .flatten()
                .map(|a| a.len() + 8)
                .sum::<usize>(),
            Command::Leave { gids, .. } => gids.len() * 8,
            Command::Move { .. } => 12,
        }
    }
}

/// A client's latest applied write and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    reply: Reply,
}

/// Every configuration so far and the session table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Controller {
    /// `configs[n].num == n`; never empty (configuration 0 is always there).
    configs: Vec<ShardConfig>,
    sessions: BTreeMap<ClientId, Session>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller::with_shards(NSHARDS.get() as usize)
    }
}

impl Controller {
    /// A controller for `nshards` shards, holding only configuration 0.
    pub(crate) fn with_shards(nshards: usize) -> Self {
        Controller {
            configs: vec![ShardConfig {
                num: 0,
                shards: vec![0; nshards],
                groups: BTreeMap::new(),
            }],
            sessions: BTreeMap::new(),
        }
    }

    /// The newest configuration.
    pub(crate) fn latest(&self) -> &ShardConfig {
        // `configs` starts with configuration 0 and only grows.
        &self.configs[self.configs.len() - 1]
    }

    /// Configuration `num`, or the latest when `num` is `None` or beyond it.
    pub(crate) fn query(&self, num: Option<u64>) -> &ShardConfig {
        num.and_then(|n| usize::try_from(n).ok())
            .and_then(|n| self.configs.get(n))
            .unwrap_or_else(|| self.latest())
    }

    fn nshards(&self) -> usize {
        self.latest().shards.len()
    }

    /// Applies a decoded command: dedup, then the change itself.
    fn apply_command(&mut self, command: Command) -> Reply {
        let (client_id, seq) = command.session();
        if let Some(reply) = StateMachine::duplicate(self, client_id, seq) {
            return reply;
        }
        let reply = match self.change(command) {
            Ok(()) => Reply::Ok,
            Err(reason) => Reply::BadRequest { reason },
        };
        self.sessions.insert(
            client_id,
            Session {
                seq,
                reply: reply.clone(),
            },
        );
        reply
    }

    /// Makes the next configuration, or explains why this command cannot.
    fn change(&mut self, command: Command) -> Result<(), String> {
        command.validate(self.nshards())?;
        let mut next = self.latest().clone();
        next.num += 1;
        match command {
            Command::Join { groups, .. } => {
                let already: Vec<GroupId> = groups
                    .keys()
                    .filter(|g| next.groups.contains_key(g))
                    .copied()
                    .collect();
                if !already.is_empty() {
                    return Err(format!(
                        "groups {already:?} have already joined (leave first to change their servers)"
                    ));
                }
                next.groups.extend(groups);
                rebalance::rebalance(&mut next.shards, &next.groups.keys().copied().collect());
            }
            Command::Leave { gids, .. } => {
                let unknown: BTreeSet<GroupId> = gids
                    .iter()
                    .filter(|g| !next.groups.contains_key(g))
                    .copied()
                    .collect();
                if !unknown.is_empty() {
                    return Err(format!(
                        "groups {unknown:?} are not in configuration {}",
                        next.num - 1
                    ));
                }
                for gid in &gids {
                    next.groups.remove(gid);
                }
                rebalance::rebalance(&mut next.shards, &next.groups.keys().copied().collect());
            }
            Command::Move { shard, gid, .. } => {
                if !next.groups.contains_key(&gid) {
                    return Err(format!(
                        "group {gid} is not in configuration {}; join it first",
                        next.num - 1
                    ));
                }
                next.shards[shard as usize] = gid;
            }
        }
        self.configs.push(next);
        Ok(())
    }
}

impl StateMachine for Controller {
    /// The configuration number asked for (`None`: the latest).
    type Query = Option<u64>;
    type Env = ();

    const SERVICE: &'static str = "ctrler";

    fn new((): &()) -> Self {
        Controller::default()
    }

    fn admit(op: Op) -> Admission<Option<u64>> {
        let command = match op {
            Op::Query { num } => return Admission::Read(num),
            Op::Join {
                groups,
                client_id,
                seq,
            } => Command::Join {
                groups,
                client_id,
                seq,
            },
            Op::Leave {
                gids,
                client_id,
                seq,
            } => Command::Leave {
                gids,
                client_id,
                seq,
            },
            Op::Move {
                shard,
                gid,
                client_id,
                seq,
            } => Command::Move {
                shard,
                gid,
                client_id,
                seq,
            },
            other => {
                return Admission::Refuse(not_served(
                    Self::SERVICE,
                    "join, leave, move, query",
                    &other,
                ));
            }
        };
        if let Err(reason) = command.validate(NSHARDS.get() as usize) {
            return Admission::Refuse(Reply::BadRequest { reason });
        }
        Admission::Write {
            entry: command.encode(),
            session: Some(command.session()),
            payload_bytes: command.payload_bytes(),
        }
    }

    fn apply(&mut self, entry: &[u8]) -> Reply {
        match Command::decode(entry) {
            Ok(command) => self.apply_command(command),
            Err(e) => {
                tracing::warn!(len = entry.len(), error = %e, "skipping undecodable log entry");
                Reply::BadRequest {
                    reason: format!("the committed command could not be decoded: {e}"),
                }
            }
        }
    }

    fn duplicate(&self, client_id: ClientId, seq: u64) -> Option<Reply> {
        let session = self.sessions.get(&client_id)?;
        if seq == session.seq {
            Some(session.reply.clone())
        } else if seq < session.seq {
            // The client has moved on (one write at a time), so nobody is
            // waiting for this answer; the write itself is not repeated.
            Some(Reply::Ok)
        } else {
            None
        }
    }

    fn read(&self, num: &Option<u64>) -> Reply {
        Reply::Config(self.query(*num).clone())
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    fn restore(image: &[u8], (): &()) -> Result<Self, SnapshotDecodeError> {
        let controller: Controller =
            rmp_serde::from_slice(image).map_err(|source| SnapshotDecodeError::Decode {
                service: Self::SERVICE,
                source,
            })?;
        let numbered = controller
            .configs
            .iter()
            .enumerate()
            .all(|(n, c)| c.num == n as u64);
        if controller.configs.is_empty() || !numbered {
            return Err(SnapshotDecodeError::Decode {
                service: Self::SERVICE,
                source: serde::de::Error::custom(
                    "the configurations in the image are not numbered 0, 1, 2, ...",
                ),
            });
        }
        Ok(controller)
    }

    fn size(&self) -> usize {
        self.configs.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One test client's session numbering.
    struct Client {
        id: ClientId,
        seq: u64,
    }

    impl Client {
        fn new(id: ClientId) -> Self {
            Client { id, seq: 0 }
        }

        fn join(&mut self, gids: &[GroupId]) -> Op {
            self.seq += 1;
            Op::Join {
                groups: gids
                    .iter()
                    .map(|&g| (g, vec![format!("127.0.0.1:{}", 7000 + g)]))
                    .collect(),
                client_id: self.id,
                seq: self.seq,
            }
        }

        fn leave(&mut self, gids: &[GroupId]) -> Op {
            self.seq += 1;
            Op::Leave {
                gids: gids.to_vec(),
                client_id: self.id,
                seq: self.seq,
            }
        }

        fn move_shard(&mut self, shard: ShardId, gid: GroupId) -> Op {
            self.seq += 1;
            Op::Move {
                shard,
                gid,
                client_id: self.id,
                seq: self.seq,
            }
        }
    }

    /// Admits `op` and applies its entry, as the leader and then every
    /// replica would.
    fn run(ctrler: &mut Controller, op: Op) -> Reply {
        match Controller::admit(op) {
            Admission::Write { entry, .. } => StateMachine::apply(ctrler, &entry),
            Admission::Read(num) => ctrler.read(&num),
            Admission::Refuse(reply) => reply,
        }
    }

    fn owners(config: &ShardConfig) -> BTreeMap<GroupId, usize> {
        let mut c = BTreeMap::new();
        for &g in &config.shards {
            *c.entry(g).or_default() += 1;
        }
        c
    }

    fn changed(a: &ShardConfig, b: &ShardConfig) -> usize {
        a.shards
            .iter()
            .zip(&b.shards)
            .filter(|(x, y)| x != y)
            .count()
    }

    #[test]
    fn configuration_zero_has_no_groups_and_every_shard_on_gid_zero() {
        let c = Controller::default();
        let zero = c.query(Some(0));
        assert_eq!(zero.num, 0);
        assert_eq!(zero.shards, vec![0; 10]);
        assert!(zero.groups.is_empty());
        assert_eq!(c.query(None), zero);
    }

    #[test]
    fn join_and_leave_make_numbered_configurations_and_old_ones_stay_queryable() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        assert_eq!(run(&mut c, client.join(&[1])), Reply::Ok);
        assert_eq!(run(&mut c, client.join(&[2])), Reply::Ok);
        assert_eq!(run(&mut c, client.leave(&[1])), Reply::Ok);
        assert_eq!(c.latest().num, 3);
        assert_eq!(c.query(Some(1)).shards, vec![1; 10]);
        assert_eq!(owners(c.query(Some(2))), BTreeMap::from([(1, 5), (2, 5)]));
        assert_eq!(c.query(Some(3)).shards, vec![2; 10]);
        assert_eq!(
            c.query(Some(3)).groups.keys().copied().collect::<Vec<_>>(),
            vec![2]
        );
        // Beyond the latest means the latest.
        assert_eq!(c.query(Some(99)).num, 3);
        assert_eq!(c.query(Some(u64::MAX)).num, 3);
    }

    #[test]
    fn joins_and_leaves_move_the_fewest_shards() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        run(&mut c, client.join(&[1]));
        for gid in 2..=5 {
            let before = c.latest().clone();
            run(&mut c, client.join(&[gid]));
            let after = c.latest();
            // The newcomer's share is all that moves.
            assert_eq!(changed(&before, after), owners(after)[&gid]);
            assert_eq!(owners(after)[&gid], 10 / gid as usize);
        }
        for gid in 1..=4 {
            let before = c.latest().clone();
            let leaving = owners(&before)[&gid];
            run(&mut c, client.leave(&[gid]));
            // Only the leaver's shards move.
            assert_eq!(changed(&before, c.latest()), leaving);
        }
        assert_eq!(c.latest().shards, vec![5; 10]);
    }

    #[test]
    fn multi_join_and_multi_leave_are_even_and_minimal() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        run(&mut c, client.join(&[1, 2, 3]));
        let counts: Vec<usize> = owners(c.latest()).into_values().collect();
        assert_eq!(counts.iter().sum::<usize>(), 10);
        assert!(counts.iter().all(|&n| n == 3 || n == 4), "{counts:?}");
        let before = c.latest().clone();
        run(&mut c, client.join(&[4, 5]));
        // 10 over 5 groups: 2 each; the two newcomers take 4 shards.
        assert!(owners(c.latest()).values().all(|&n| n == 2));
        assert_eq!(changed(&before, c.latest()), 4);
        let before = c.latest().clone();
        run(&mut c, client.leave(&[1, 3]));
        assert_eq!(changed(&before, c.latest()), 4);
        let counts: Vec<usize> = owners(c.latest()).into_values().collect();
        assert!(counts.iter().all(|&n| n == 3 || n == 4), "{counts:?}");
    }

    #[test]
    fn move_changes_one_shard_and_the_next_join_evens_out() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        run(&mut c, client.join(&[1, 2]));
        let before = c.latest().clone();
        let shard = before.shards.iter().position(|&g| g == 1).unwrap() as ShardId;
        assert_eq!(run(&mut c, client.move_shard(shard, 2)), Reply::Ok);
        assert_eq!(changed(&before, c.latest()), 1);
        assert_eq!(c.latest().shards[shard as usize], 2);
        run(&mut c, client.join(&[3]));
        let counts: Vec<usize> = owners(c.latest()).into_values().collect();
        assert!(counts.iter().all(|&n| n == 3 || n == 4), "{counts:?}");
    }

    #[test]
    fn impossible_writes_are_refused_and_make_no_configuration() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        run(&mut c, client.join(&[1]));
        let refusals = [
            (client.join(&[1]), "already joined"),
            (client.leave(&[7]), "not in configuration"),
            (client.move_shard(3, 9), "not in configuration"),
            (client.move_shard(10, 1), "does not exist"),
            (client.join(&[0]), "gid 0"),
            (client.join(&[]), "no groups"),
            (client.leave(&[]), "no groups"),
        ];
        for (op, why) in refusals {
            match run(&mut c, op.clone()) {
                Reply::BadRequest { reason } => assert!(reason.contains(why), "{op:?}: {reason}"),
                other => panic!("{op:?} answered {other:?}"),
            }
        }
        assert_eq!(c.latest().num, 1);
        // Servers must be named.
        let empty = Op::Join {
            groups: BTreeMap::from([(4, vec![])]),
            client_id: 1,
            seq: 100,
        };
        assert!(matches!(run(&mut c, empty), Reply::BadRequest { .. }));
        // A kv operation is not served here.
        let get = Controller::admit(Op::Get { key: "k".into() });
        assert!(
            matches!(get, Admission::Refuse(Reply::BadRequest { ref reason }) if reason.contains("`get`")),
            "{get:?}"
        );
    }

    #[test]
    fn a_retried_write_is_applied_once_and_gets_its_first_answer() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        let join = client.join(&[1]);
        assert_eq!(run(&mut c, join.clone()), Reply::Ok);
        assert_eq!(run(&mut c, join.clone()), Reply::Ok);
        assert_eq!(c.latest().num, 1, "the retry made a configuration");
        // A refused write stays refused on retry, even once the state would
        // allow it: the retry is the same write, not a new one.
        let leave = client.leave(&[2]);
        let first = run(&mut c, leave.clone());
        assert!(matches!(first, Reply::BadRequest { .. }));
        let mut other = Client::new(2);
        assert_eq!(run(&mut c, other.join(&[2])), Reply::Ok);
        assert_eq!(run(&mut c, leave), first);
        assert!(c.latest().groups.contains_key(&2));
        assert_eq!(StateMachine::duplicate(&c, 1, 2), Some(first));
        assert_eq!(StateMachine::duplicate(&c, 1, 3), None);
        // Older writes of a client that has moved on are not repeated.
        assert_eq!(run(&mut c, join), Reply::Ok);
        assert_eq!(c.latest().num, 2);
    }

    #[test]
    fn snapshot_round_trip_keeps_configurations_and_sessions() {
        let mut c = Controller::default();
        let mut client = Client::new(1);
        run(&mut c, client.join(&[1, 2]));
        let leave = client.leave(&[9]);
        run(&mut c, leave.clone());
        let mut restored = Controller::restore(&StateMachine::snapshot(&c), &()).unwrap();
        assert_eq!(restored, c);
        assert!(matches!(
            run(&mut restored, leave),
            Reply::BadRequest { .. }
        ));
        assert_eq!(restored.latest().num, 1);
        assert!(Controller::restore(b"\xc1", &()).is_err());
        // A kv image is not a controller image.
        let kv = crate::kv::KvStore::default();
        assert!(Controller::restore(&kv.snapshot(), &()).is_err());
    }

    #[test]
    fn garbage_entry_is_a_bad_request_and_changes_nothing() {
        let mut c = Controller::default();
        let before = c.clone();
        assert!(matches!(
            StateMachine::apply(&mut c, b"\xc1junk"),
            Reply::BadRequest { .. }
        ));
        assert_eq!(c, before);
    }

    #[derive(Debug, Clone)]
    enum Call {
        Join(Vec<GroupId>),
        Leave(Vec<GroupId>),
        Move(ShardId, GroupId),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            prop::collection::vec(1u64..8, 1..4).prop_map(Call::Join),
            prop::collection::vec(1u64..8, 1..4).prop_map(Call::Leave),
            (0u32..10, 1u64..8).prop_map(|(s, g)| Call::Move(s, g)),
        ]
    }

    proptest! {
        /// Any history of calls gives the same configurations on two
        /// replicas (one of them restarted from a snapshot halfway), every
        /// configuration after a join or leave is even, and shards only
        /// ever belong to groups of their configuration.
        #[test]
        fn random_histories_are_deterministic_even_and_consistent(
            calls in prop::collection::vec(call(), 1..40),
        ) {
            let mut a = Controller::default();
            let mut b = Controller::default();
            let mut client = Client::new(5);
            for (i, call) in calls.iter().enumerate() {
                let op = match call {
                    Call::Join(g) => client.join(g),
                    Call::Leave(g) => client.leave(g),
                    Call::Move(s, g) => client.move_shard(*s, *g),
                };
                let before = a.latest().num;
                let ra = run(&mut a, op.clone());
                let rb = run(&mut b, op);
                prop_assert_eq!(&ra, &rb);
                if i == calls.len() / 2 {
                    b = Controller::restore(&StateMachine::snapshot(&b), &()).unwrap();
                }
                let latest = a.latest();
                prop_assert_eq!(latest.num, before + u64::from(ra == Reply::Ok));
                for gid in &latest.shards {
                    prop_assert!(latest.groups.is_empty() && *gid == 0 || latest.groups.contains_key(gid));
                }
                if ra == Reply::Ok && !matches!(call, Call::Move(..)) && !latest.groups.is_empty() {
                    let counts: Vec<usize> = latest
                        .groups
                        .keys()
                        .map(|g| latest.shards.iter().filter(|s| *s == g).count())
                        .collect();
                    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                    prop_assert!(max - min <= 1, "uneven {:?}", latest);
                }
            }
            prop_assert_eq!(a, b);
        }
    }
}

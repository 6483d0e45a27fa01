//! A replica group of a sharded deployment (`kvd --group GID --ctrlers ...`).
//!
//! Keys are split into shards ([`wire::key_to_shard`]); the shard controller
//! decides, in numbered configurations, which group serves which shard. A
//! replica group is a Raft group whose state machine ([`ShardGroup`]) holds
//! the shards it owns, each with its own data *and* its own exactly-once
//! session table, so that the two always travel together.
//!
//! # Moving from one configuration to the next
//!
//! Everything that changes what a group serves goes through its own log, so
//! every replica makes the same decision at the same point of the history:
//!
//! 1. **Reconfigure.** The leader's migration worker ([`mover`]) polls the
//!    controller for configuration `n + 1` while the group is at `n` and no
//!    shard is moving, and proposes it. Applying it sorts every shard:
//!    a shard given to us is `Pulling` (or `Serving` at once if nobody owned
//!    it before), a shard taken from us is `Leaving` (frozen: kept, not
//!    served), the others are untouched and keep being served throughout.
//! 2. **Pull.** For each `Pulling` shard the worker asks the previous owner
//!    (`pull_shard {shard, config_num: n}`). The old owner answers from its
//!    applied state, through a ReadIndex read, once it has itself reached
//!    configuration `n` (before that it says `not_ready`): the shard is
//!    `Leaving` there, so its data can no longer change.
//! 3. **Install.** The worker proposes the data; applying it makes the shard
//!    `Arrived`: served at once, before any other shard of the configuration
//!    has arrived.
//! 4. **Delete.** The worker asks the old owner to `delete_shard`; the old
//!    owner deletes its copy through *its* log and answers `ok`.
//! 5. **Confirm.** The worker proposes that the old copy is gone; the shard
//!    becomes `Serving`.
//!
//! A group takes the next configuration only when every shard is `Serving`
//! again, which keeps at most one configuration in flight per group and makes
//! every message above name the one configuration both sides agree on. Every
//! step is idempotent (entries naming another configuration or a shard in
//! another state change nothing), so a worker that crashes, loses leadership
//! or repeats itself after a restart cannot do harm; it simply resumes from
//! what the log says. A deleted shard can only come back through a later
//! configuration and a fresh pull, never from a lagging replica or an old
//! snapshot, because deletion is itself a log entry.
//!
//! # Serving
//!
//! A client operation on a key is served when its shard is `Serving` or
//! `Arrived`; otherwise it is answered `wrong_group` and the client refreshes
//! its configuration. Writes are checked when they are *applied* (a
//! reconfiguration may commit between proposal and apply), reads after their
//! ReadIndex round, against the state they read. Either way the answer comes
//! from the state at one log position, which is what makes the hand-over
//! linearizable: the old owner stops serving at the log position of the
//! reconfiguration, and the new owner only starts once it has the data as of
//! that position.
//!
//! A configuration that gives a shard to no group (every group left) drops
//! that shard's data, with a warning: nobody could ever pull it.

pub(crate) mod link;
pub(crate) mod mover;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use wire::{
    ClientId, GroupId, NSHARDS, Op, Reply, ShardConfig, ShardData, ShardGroupStatus, ShardId,
    ShardState, key_to_shard,
};

use crate::kv;
use crate::state_machine::{Admission, SnapshotDecodeError, StateMachine, not_served};

/// A replica group's writes as they travel through its Raft log: client
/// writes, and the steps of a migration (proposed by the migration worker, or
/// by another group's `delete_shard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// A client's put or append.
    Write(kv::Command),
    /// Move into `config`, which must be the next configuration.
    Reconfigure { config: ShardConfig },
    /// Install a shard pulled from its previous owner.
    Install { data: ShardData },
    /// Old owner: the new owner has installed `shard`; drop our copy.
    Delete { shard: ShardId, config_num: u64 },
    /// New owner: the old owner has dropped its copy of `shard`.
    Confirm { shard: ShardId, config_num: u64 },
}

impl Command {
    /// The log entry payload (never empty).
    pub(crate) fn encode(&self) -> Bytes {
        // Strings, maps and integers always encode into a Vec.
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    fn decode(data: &[u8]) -> Result<Command, rmp_serde::decode::Error> {
        rmp_serde::from_slice(data)
    }
}

/// What the node tells a replica group's state machine: which group it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupEnv {
    /// This group's id.
    pub(crate) gid: GroupId,
}

/// One shard held by this group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Shard {
    state: ShardState,
    kv: BTreeMap<String, String>,
    /// Highest write `seq` applied per client, for this shard's keys.
    sessions: BTreeMap<ClientId, u64>,
}

impl Shard {
    fn empty(state: ShardState) -> Shard {
        Shard {
            state,
            kv: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }

    fn is_served(&self) -> bool {
        matches!(self.state, ShardState::Serving | ShardState::Arrived)
    }
}

/// A read, as remembered while its ReadIndex round is confirmed.
#[derive(Debug)]
pub(crate) enum Query {
    /// A client's `get`.
    Get(String),
    /// Another group's `pull_shard`.
    Pull { shard: ShardId, config_num: u64 },
}

/// The replicated state of one replica group; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardGroup {
    gid: GroupId,
    /// The configuration the group is in.
    config: ShardConfig,
    /// Every shard we hold data for, whatever its state.
    shards: BTreeMap<ShardId, Shard>,
}

impl ShardGroup {
    fn nshards() -> usize {
        NSHARDS.get() as usize
    }

    /// The configuration the group is in.
    #[cfg(test)]
    fn config(&self) -> &ShardConfig {
        &self.config
    }

    fn shard_of(key: &str) -> ShardId {
        key_to_shard(key, NSHARDS)
    }

    fn wrong_group(&self, shard: ShardId) -> Reply {
        Reply::WrongGroup {
            shard,
            config_num: self.config.num,
        }
    }

    fn apply_command(&mut self, command: Command) -> Reply {
        match command {
            Command::Write(write) => self.write(write),
            Command::Reconfigure { config } => self.reconfigure(config),
            Command::Install { data } => self.install(data),
            Command::Delete { shard, config_num } => self.delete(shard, config_num),
            Command::Confirm { shard, config_num } => self.confirm(shard, config_num),
        }
    }

    /// A client write: applied once per session if the shard is served here.
    fn write(&mut self, write: kv::Command) -> Reply {
        let shard_id = Self::shard_of(write.key());
        let Some(shard) = self.shards.get_mut(&shard_id).filter(|s| s.is_served()) else {
            return self.wrong_group(shard_id);
        };
        let (client_id, seq) = write.session();
        if shard
            .sessions
            .get(&client_id)
            .is_some_and(|&last| seq <= last)
        {
            return Reply::Ok;
        }
        shard.sessions.insert(client_id, seq);
        write.write_to(&mut shard.kv);
        Reply::Ok
    }

    fn reconfigure(&mut self, next: ShardConfig) -> Reply {
        if next.num != self.config.num + 1 {
            // A repeated or out-of-order proposal: already handled, or not yet.
            return Reply::Ok;
        }
        if self.shards.values().any(|s| s.state != ShardState::Serving) {
            return Reply::NotReady {
                config_num: self.config.num,
            };
        }
        if next.shards.len() != Self::nshards() {
            return Reply::BadRequest {
                reason: format!(
                    "configuration {} has {} shards; this deployment has {}",
                    next.num,
                    next.shards.len(),
                    Self::nshards()
                ),
            };
        }
        let gid = self.gid;
        for (shard, (&before, &after)) in (0..).zip(self.config.shards.iter().zip(&next.shards)) {
            match (before == gid, after == gid) {
                (false, true) if before == 0 => {
                    self.shards.insert(shard, Shard::empty(ShardState::Serving));
                }
                (false, true) => {
                    self.shards.insert(shard, Shard::empty(ShardState::Pulling));
                }
                (true, false) if after == 0 => {
                    let dropped = self.shards.remove(&shard).map_or(0, |s| s.kv.len());
                    warn!(
                        shard,
                        config = next.num,
                        keys = dropped,
                        "configuration gives the shard to no group; its data is dropped"
                    );
                }
                (true, false) => {
                    if let Some(s) = self.shards.get_mut(&shard) {
                        s.state = ShardState::Leaving;
                    }
                }
                _ => {}
            }
        }
        info!(
            config = next.num,
            gid,
            shards = ?self.states(),
            "applied configuration"
        );
        self.config = next;
        Reply::Ok
    }

    fn install(&mut self, data: ShardData) -> Reply {
        if data.config_num != self.config.num {
            return Reply::Ok;
        }
        if let Some(shard) = self
            .shards
            .get_mut(&data.shard)
            .filter(|s| s.state == ShardState::Pulling)
        {
            info!(
                shard = data.shard,
                config = data.config_num,
                keys = data.kv.len(),
                "installed shard from its previous owner"
            );
            shard.kv = data.kv;
            shard.sessions = data.sessions;
            shard.state = ShardState::Arrived;
        }
        Reply::Ok
    }

    fn delete(&mut self, shard: ShardId, config_num: u64) -> Reply {
        if self.config.num < config_num {
            return Reply::NotReady {
                config_num: self.config.num,
            };
        }
        if self.config.num == config_num
            && self
                .shards
                .get(&shard)
                .is_some_and(|s| s.state == ShardState::Leaving)
        {
            let keys = self.shards.remove(&shard).map_or(0, |s| s.kv.len());
            info!(
                shard,
                config = config_num,
                keys,
                "deleted a shard its new owner has installed"
            );
        }
        // Otherwise it is already gone: a repeated request.
        Reply::Ok
    }

    fn confirm(&mut self, shard: ShardId, config_num: u64) -> Reply {
        if config_num == self.config.num
            && let Some(s) = self
                .shards
                .get_mut(&shard)
                .filter(|s| s.state == ShardState::Arrived)
        {
            s.state = ShardState::Serving;
        }
        Reply::Ok
    }

    fn pull(&self, shard: ShardId, config_num: u64) -> Reply {
        if self.config.num < config_num {
            return Reply::NotReady {
                config_num: self.config.num,
            };
        }
        match self.shards.get(&shard) {
            Some(s) if self.config.num == config_num && s.state == ShardState::Leaving => {
                Reply::Shard(ShardData {
                    shard,
                    config_num,
                    kv: s.kv.clone(),
                    sessions: s.sessions.clone(),
                })
            }
            _ => Reply::BadRequest {
                reason: format!(
                    "group {} is in configuration {} and is not handing over shard {shard} for configuration {config_num} (already handed over, or never held)",
                    self.gid, self.config.num
                ),
            },
        }
    }

    fn states(&self) -> BTreeMap<ShardId, ShardState> {
        self.shards.iter().map(|(&id, s)| (id, s.state)).collect()
    }
}

impl StateMachine for ShardGroup {
    type Query = Query;
    type Env = GroupEnv;

    const SERVICE: &'static str = "kv (shard group)";

    fn new(env: &GroupEnv) -> Self {
        ShardGroup {
            gid: env.gid,
            config: ShardConfig {
                num: 0,
                shards: vec![0; Self::nshards()],
                groups: BTreeMap::new(),
            },
            shards: BTreeMap::new(),
        }
    }

    fn admit(op: Op) -> Admission<Query> {
        let (write, payload_bytes) = match kv::Command::from_op(op) {
            Ok(write) => write,
            Err(Op::Get { key }) => return Admission::Read(Query::Get(key)),
            Err(Op::PullShard { shard, config_num }) => {
                return Admission::Read(Query::Pull { shard, config_num });
            }
            Err(Op::DeleteShard { shard, config_num }) => {
                let command = Command::Delete { shard, config_num };
                return Admission::Write {
                    entry: command.encode(),
                    session: None,
                    payload_bytes: 0,
                };
            }
            Err(other) => {
                return Admission::Refuse(not_served(
                    Self::SERVICE,
                    "get, put, append, pull_shard, delete_shard",
                    &other,
                ));
            }
        };
        // Duplicates are found per shard when applied: the shard may move
        // between now and then, and its sessions with it.
        Admission::Write {
            entry: Command::Write(write).encode(),
            session: None,
            payload_bytes,
        }
    }

    fn apply(&mut self, entry: &[u8]) -> Reply {
        match Command::decode(entry) {
            Ok(command) => self.apply_command(command),
            Err(e) => {
                warn!(len = entry.len(), error = %e, "skipping undecodable log entry");
                Reply::BadRequest {
                    reason: format!("the committed command could not be decoded: {e}"),
                }
            }
        }
    }

    fn duplicate(&self, _client_id: ClientId, _seq: u64) -> Option<Reply> {
        // Never asked: writes are admitted without a session (see `admit`).
        None
    }

    fn read(&self, query: &Query) -> Reply {
        match query {
            Query::Get(key) => {
                let shard_id = Self::shard_of(key);
                match self.shards.get(&shard_id).filter(|s| s.is_served()) {
                    Some(shard) => Reply::Value {
                        value: shard.kv.get(key).cloned(),
                    },
                    None => self.wrong_group(shard_id),
                }
            }
            Query::Pull { shard, config_num } => self.pull(*shard, *config_num),
        }
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    fn restore(image: &[u8], env: &GroupEnv) -> Result<Self, SnapshotDecodeError> {
        let group: ShardGroup =
            rmp_serde::from_slice(image).map_err(|source| SnapshotDecodeError::Decode {
                service: Self::SERVICE,
                source,
            })?;
        if group.gid != env.gid {
            return Err(SnapshotDecodeError::Foreign(format!(
                "the image holds group {}'s shards, but this node is group {}",
                group.gid, env.gid
            )));
        }
        Ok(group)
    }

    fn size(&self) -> usize {
        self.shards.values().map(|s| s.kv.len()).sum()
    }

    fn shard_group_status(&self) -> Option<ShardGroupStatus> {
        Some(ShardGroupStatus {
            gid: self.gid,
            config_num: self.config.num,
            shards: self.states(),
            keys: self.size() as u64,
        })
    }
}

#[cfg(test)]
mod tests;

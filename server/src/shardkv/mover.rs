//! The migration worker: the part of a replica group that talks to the
//! controller and to other groups, and turns what it learns into log
//! entries (see the steps in the [module docs](super)).
//!
//! It runs on every node but acts only on the leader, every
//! [`POLL_INTERVAL`]: it reads the group's applied state (a local `status`),
//! and either proposes the next configuration (when no shard is moving) or
//! pushes every moving shard one step: pull the `Pulling` ones from their
//! previous owners, ask the previous owners of the `Arrived` ones to delete
//! their copies. Shards move independently and concurrently, so a shard whose
//! old owner answers arrives (and is served) while another waits for a dead
//! group. The worker holds no state that matters: everything it decides is
//! re-derived from the log on the next round, so losing leadership, a crash
//! or a repeated step costs nothing but time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};
use wire::{GroupId, NodeRole, NodeStatus, Op, Reply, ShardConfig, ShardId, ShardState};

use super::Command;
use super::link::GroupLinks;
use crate::responder::{ClientRequest, DriverRequest, Responder};
use crate::shutdown::{ShutdownRx, stopped};

/// How often the leader looks for a new configuration or pushes migrations.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long one call to another group (or the controller) may take.
const CALL_WINDOW: Duration = Duration::from_secs(1);

/// The worker of one node.
pub(crate) struct Mover {
    gid: GroupId,
    ctrlers: Vec<String>,
    requests: mpsc::Sender<DriverRequest>,
    links: GroupLinks,
    /// Past configurations fetched from the controller (they never change).
    configs: BTreeMap<u64, ShardConfig>,
}

impl Mover {
    /// A worker for group `gid` that asks the controller at `ctrlers` and
    /// proposes through `requests`.
    pub(crate) fn new(
        gid: GroupId,
        ctrlers: Vec<String>,
        requests: mpsc::Sender<DriverRequest>,
        max_frame: usize,
    ) -> Mover {
        Mover {
            gid,
            ctrlers,
            requests,
            links: GroupLinks::new(max_frame),
            configs: BTreeMap::new(),
        }
    }

    /// Runs until shutdown.
    pub(crate) async fn run(mut self, mut shutdown: ShutdownRx) {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut progressed = false;
        loop {
            // A round that moved something is followed at once by the next,
            // so a migration's steps do not each wait for a tick.
            if !progressed {
                tokio::select! {
                    () = stopped(&mut shutdown) => break,
                    _ = ticker.tick() => {}
                }
            }
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                p = self.round() => progressed = p,
            }
        }
    }

    /// One look at the group and one step for everything that can move;
    /// whether any step took effect.
    async fn round(&mut self) -> bool {
        let Some(status) = self.local_status().await else {
            return false;
        };
        if status.role != NodeRole::Leader {
            return false;
        }
        let Some(group) = status.shard_group else {
            return false;
        };
        let num = group.config_num;
        if group.shards.values().all(|&s| s == ShardState::Serving) {
            return self.next_configuration(num).await;
        }
        let Some(previous) = self.configuration(num.saturating_sub(1)).await else {
            return false;
        };
        let steps = group.shards.iter().filter_map(|(&shard, &state)| {
            let owner = previous.shards.get(shard as usize).copied().unwrap_or(0);
            let servers = previous.groups.get(&owner).cloned().unwrap_or_default();
            match state {
                ShardState::Pulling => Some(Step::Pull { shard, servers }),
                ShardState::Arrived => Some(Step::Delete { shard, servers }),
                ShardState::Serving | ShardState::Leaving => None,
            }
        });
        let steps: Vec<Step> = steps.collect();
        let this = &*self;
        let done = join_all(steps.into_iter().map(|step| this.push(step, num))).await;
        done.contains(&true)
    }

    /// Proposes configuration `num + 1` if the controller has it; whether it
    /// was applied.
    async fn next_configuration(&mut self, num: u64) -> bool {
        let Some(next) = self.fetch(num + 1).await else {
            return false;
        };
        if next.num != num + 1 {
            return false;
        }
        info!(config = next.num, "proposing the next configuration");
        let reply = self
            .propose(Command::Reconfigure {
                config: next.clone(),
            })
            .await;
        self.configs.insert(next.num, next);
        let applied = matches!(reply, Some(Reply::Ok));
        if !applied {
            debug!(?reply, "reconfiguration not applied yet");
        }
        applied
    }

    /// Configuration `num`, from the cache or the controller.
    async fn configuration(&mut self, num: u64) -> Option<ShardConfig> {
        if let Some(c) = self.configs.get(&num) {
            return Some(c.clone());
        }
        let config = self.fetch(num).await.filter(|c| c.num == num)?;
        self.configs.insert(num, config.clone());
        // Only the configuration before the current one is ever needed.
        while self.configs.len() > 4 {
            self.configs.pop_first();
        }
        Some(config)
    }

    async fn fetch(&self, num: u64) -> Option<ShardConfig> {
        let op = Op::Query { num: Some(num) };
        match self.links.call(&self.ctrlers, op, CALL_WINDOW).await {
            Ok(Reply::Config(config)) => Some(config),
            Ok(other) => {
                warn!(reply = ?other, "the shard controller answered a query strangely");
                None
            }
            Err(e) => {
                debug!(error = %e, "cannot reach the shard controller");
                None
            }
        }
    }

    /// Pushes one shard one step of its migration into configuration `num`;
    /// whether the step took effect.
    async fn push(&self, step: Step, num: u64) -> bool {
        match step {
            Step::Pull { shard, servers } => {
                let op = Op::PullShard {
                    shard,
                    config_num: num,
                };
                match self.links.call(&servers, op, CALL_WINDOW).await {
                    Ok(Reply::Shard(data)) if data.shard == shard && data.config_num == num => {
                        let keys = data.kv.len();
                        let reply = self.propose(Command::Install { data }).await;
                        debug!(shard, keys, ?reply, "proposed a pulled shard");
                        return reply == Some(Reply::Ok);
                    }
                    Ok(Reply::NotReady { config_num }) => {
                        debug!(
                            shard,
                            owner_config = config_num,
                            "previous owner not in this configuration yet"
                        );
                    }
                    Ok(other) => warn!(shard, reply = ?other, "pull refused"),
                    Err(e) => debug!(shard, error = %e, "previous owner unreachable"),
                }
            }
            Step::Delete { shard, servers } => {
                let op = Op::DeleteShard {
                    shard,
                    config_num: num,
                };
                match self.links.call(&servers, op, CALL_WINDOW).await {
                    Ok(Reply::Ok) => {
                        let reply = self
                            .propose(Command::Confirm {
                                shard,
                                config_num: num,
                            })
                            .await;
                        debug!(shard, ?reply, "previous owner deleted its copy");
                        return reply == Some(Reply::Ok);
                    }
                    Ok(other) => debug!(shard, reply = ?other, "delete not done yet"),
                    Err(e) => debug!(shard, error = %e, "previous owner unreachable"),
                }
            }
        }
        false
    }

    async fn local_status(&self) -> Option<NodeStatus> {
        let (responder, answer) = Responder::local();
        let request = DriverRequest::Client(ClientRequest {
            op: Op::Status,
            responder,
        });
        self.requests.send(request).await.ok()?;
        match answer.await.ok()? {
            Reply::Status(status) => Some(status),
            _ => None,
        }
    }

    async fn propose(&self, command: Command) -> Option<Reply> {
        let (responder, answer) = Responder::local();
        let request = DriverRequest::Propose {
            entry: command.encode(),
            responder,
        };
        self.requests.send(request).await.ok()?;
        let reply = answer.await.ok()?;
        if let Reply::BadRequest { reason } = &reply {
            warn!(gid = self.gid, %reason, "a migration step was refused");
        }
        Some(reply)
    }
}

/// One step of one shard's migration, with the previous owner's servers.
enum Step {
    Pull {
        shard: ShardId,
        servers: Vec<String>,
    },
    Delete {
        shard: ShardId,
        servers: Vec<String>,
    },
}

//! Calls from a replica group to another Raft group: the controller
//! (`query`) or another replica group (`pull_shard`, `delete_shard`).
//!
//! None of these calls is a session write (a pull is a read, a delete is
//! idempotent), so there is no exactly-once state to keep: a call finds the
//! group's leader (following `wrong_leader` hints, remembering who led last
//! time) and returns the first answer that is not about leadership. Calls
//! are rare (a few per configuration change), so each opens its own
//! connection; that keeps the worker free of connection state that a
//! partition or a restart could leave stale.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpStream;
use wire::{Op, Reply, Request};

/// Why a call to a group got no usable answer.
#[derive(Debug, Error)]
pub(crate) enum CallError {
    /// The group was given without servers.
    #[error("the group has no servers")]
    NoServers,
    /// No server answered with anything but `wrong_leader` or an error before
    /// the deadline; `last` is the last thing that went wrong.
    #[error("no leader answered within {waited:?} (last: {last})")]
    NoAnswer {
        /// How long we tried.
        waited: Duration,
        /// The last failure.
        last: String,
    },
}

/// Remembers, per group (keyed by its server list), which server led last.
#[derive(Debug)]
pub(crate) struct GroupLinks {
    leaders: Mutex<HashMap<Vec<String>, usize>>,
    max_frame: usize,
}

impl GroupLinks {
    /// Links that accept replies up to `max_frame` bytes (shards can be big).
    pub(crate) fn new(max_frame: usize) -> GroupLinks {
        GroupLinks {
            leaders: Mutex::new(HashMap::new()),
            max_frame,
        }
    }

    /// Sends `op` to the group at `servers` until its leader answers, or
    /// `within` has passed.
    pub(crate) async fn call(
        &self,
        servers: &[String],
        op: Op,
        within: Duration,
    ) -> Result<Reply, CallError> {
        if servers.is_empty() {
            return Err(CallError::NoServers);
        }
        let started = Instant::now();
        let deadline = started + within;
        let mut target = self.last_leader(servers) % servers.len();
        let mut last = String::from("no attempt");
        let mut tried_in_round = 0;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let addr = &servers[target];
            match tokio::time::timeout(left, self.call_one(addr, op.clone())).await {
                Ok(Ok(Reply::WrongLeader { leader })) => {
                    last = format!("{addr} is not the leader");
                    let hinted = leader
                        .and_then(|h| servers.iter().position(|s| *s == h.client_addr))
                        .filter(|&i| i != target);
                    target = hinted.unwrap_or((target + 1) % servers.len());
                }
                Ok(Ok(Reply::Timeout | Reply::ShuttingDown)) => {
                    last = format!("{addr} timed out or is stopping");
                    target = (target + 1) % servers.len();
                }
                Ok(Ok(reply)) => {
                    self.leaders
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(servers.to_vec(), target);
                    return Ok(reply);
                }
                Ok(Err(e)) => {
                    last = format!("{addr}: {e}");
                    target = (target + 1) % servers.len();
                }
                Err(_) => last = format!("{addr} did not answer in time"),
            }
            tried_in_round += 1;
            if tried_in_round >= servers.len() {
                // Everyone failed once: an election is likely under way.
                tried_in_round = 0;
                let pause = Duration::from_millis(20)
                    .min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
            }
        }
        Err(CallError::NoAnswer {
            waited: started.elapsed(),
            last,
        })
    }

    fn last_leader(&self, servers: &[String]) -> usize {
        let leaders = self.leaders.lock().unwrap_or_else(PoisonError::into_inner);
        leaders.get(servers).copied().unwrap_or(0)
    }

    async fn call_one(&self, addr: &str, op: Op) -> anyhow::Result<Reply> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (_, mut conn) = wire::connect_client(stream).await?;
        conn.set_max_frame_len(self.max_frame);
        conn.write_frame(&Request { request_id: 1, op }).await?;
        let response = conn
            .read_frame()
            .await?
            .ok_or_else(|| anyhow::anyhow!("connection closed before the reply"))?;
        anyhow::ensure!(
            response.request_id == 1,
            "reply to request {} instead of 1",
            response.request_id
        );
        Ok(response.reply)
    }
}

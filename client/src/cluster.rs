//! The shared side of a client: one connection per server, the leader cache,
//! the retry loop, and the admin calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use wire::{ClientId, NodeId, NodeStatus, Op, Reply};

use crate::clerk::Clerk;
use crate::conn::Conn;
use crate::ctrler_clerk::CtrlerClerk;
use crate::error::{AttemptError, ClerkError};
use crate::options::{Backoff, ClerkOptions};

/// A handle on one kvd group, shared by any number of [`Clerk`]s.
///
/// It owns one pipelined connection per server (opened on first use and
/// replaced when it dies) and remembers which server last acted as leader,
/// so that a new Clerk does not have to rediscover it. Cloning is cheap and
/// clones share everything. Create it once per cluster and make one Clerk per
/// concurrent client.
#[derive(Clone)]
pub struct ClusterClient {
    inner: Arc<Inner>,
}

struct Inner {
    servers: Vec<Slot>,
    /// Index into `servers` of the server believed to lead.
    leader: AtomicUsize,
    options: ClerkOptions,
    /// Draws client ids and per-Clerk seeds.
    seeds: Mutex<ChaCha8Rng>,
}

/// One server and its connection.
struct Slot {
    addr: String,
    current: Mutex<Option<Arc<Conn>>>,
    /// Held while dialing, so one caller dials and the others wait for it;
    /// remembers the last failed dial so callers can fail fast for a while.
    dialing: tokio::sync::Mutex<Option<(Instant, AttemptError)>>,
}

impl Slot {
    fn live_conn(&self) -> Option<Arc<Conn>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|c| !c.is_dead()).cloned()
    }

    async fn conn(
        &self,
        options: &ClerkOptions,
        timeout: Duration,
    ) -> Result<Arc<Conn>, AttemptError> {
        if let Some(conn) = self.live_conn() {
            return Ok(conn);
        }
        let mut last_failure = self.dialing.lock().await;
        if let Some(conn) = self.live_conn() {
            return Ok(conn);
        }
        if let Some((at, err)) = last_failure.as_ref()
            && at.elapsed() < options.reconnect_interval
        {
            return Err(err.clone());
        }
        match Conn::open(&self.addr, timeout.min(options.connect_timeout)).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
                *last_failure = None;
                Ok(conn)
            }
            Err(err) => {
                *last_failure = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }
}

impl ClusterClient {
    /// A client for the servers at `servers` (their client addresses,
    /// `host:port`). Connects lazily: this never fails for unreachable
    /// servers, only for an empty list.
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        options: ClerkOptions,
    ) -> Result<ClusterClient, ClerkError> {
        let servers: Vec<Slot> = servers
            .into_iter()
            .map(|addr| Slot {
                addr: addr.into(),
                current: Mutex::new(None),
                dialing: tokio::sync::Mutex::new(None),
            })
            .collect();
        if servers.is_empty() {
            return Err(ClerkError::NoServers);
        }
        let seeds = Mutex::new(ChaCha8Rng::seed_from_u64(options.effective_seed()));
        Ok(ClusterClient {
            inner: Arc::new(Inner {
                servers,
                leader: AtomicUsize::new(0),
                options,
                seeds,
            }),
        })
    }

    /// A new Clerk with a fresh client id drawn from this client's seeded RNG.
    pub fn clerk(&self) -> Clerk {
        let (client_id, seed) = self.fresh_session();
        Clerk::new_with(self.clone(), client_id, seed)
    }

    /// A new controller client (for a `--role ctrler` group) with a fresh
    /// client id drawn from this client's seeded RNG.
    pub fn ctrler_clerk(&self) -> CtrlerClerk {
        let (client_id, seed) = self.fresh_session();
        CtrlerClerk::new_with(self.clone(), client_id, seed)
    }

    /// A client id and a jitter seed for a new session.
    fn fresh_session(&self) -> (ClientId, u64) {
        let mut rng = self
            .inner
            .seeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (rng.random::<u64>(), rng.random::<u64>())
    }

    /// A new Clerk with a given client id, e.g. to resume a session. The id
    /// must not be used by any other live Clerk against the same cluster.
    pub fn clerk_with_id(&self, client_id: ClientId) -> Clerk {
        let seed = self
            .inner
            .seeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random::<u64>();
        Clerk::new_with(self.clone(), client_id, seed)
    }

    /// The server addresses, in the order given.
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers.iter().map(|s| s.addr.clone()).collect()
    }

    /// The options Clerks made from this client start with.
    pub fn options(&self) -> &ClerkOptions {
        &self.inner.options
    }

    /// The address of the server currently believed to lead (a guess until
    /// some call has succeeded).
    pub fn presumed_leader(&self) -> &str {
        &self.inner.servers[self.inner.leader.load(Ordering::Relaxed)].addr
    }

    /// Asks the server at `addr` for its Raft status, once, within the
    /// request timeout. Any node answers, leader or not. `addr` need not be
    /// one of this client's servers.
    pub async fn status(&self, addr: &str) -> Result<NodeStatus, AttemptError> {
        let timeout = self.inner.options.request_timeout;
        let reply = match self.index_of(addr) {
            Some(index) => self.attempt(index, Op::Status, timeout).await?,
            None => {
                let conn = Conn::open(addr, self.inner.options.connect_timeout).await?;
                check_reply(addr, conn.call(Op::Status, timeout).await?)?
            }
        };
        match reply {
            Reply::Status(status) => Ok(status),
            other => Err(unexpected(addr, "status", &other)),
        }
    }

    /// The status of every server, in order; unreachable ones carry their
    /// error. Queries run concurrently.
    pub async fn status_all(&self) -> Vec<(String, Result<NodeStatus, AttemptError>)> {
        let queries = self
            .inner
            .servers
            .iter()
            .map(|slot| async move { (slot.addr.clone(), self.status(&slot.addr).await) });
        futures::future::join_all(queries).await
    }

    /// Asks the leader to hand leadership to node `to`; follows redirects and
    /// retries like a write, within the client's options. Returns once the
    /// leader has started the transfer (it may still fail to complete).
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), ClerkError> {
        let seed = self
            .inner
            .seeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random::<u64>();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let options = self.inner.options.clone();
        self.execute(
            Op::TransferLeader { to },
            "transfer_leader",
            &options,
            &mut rng,
            expect_ok,
            None,
        )
        .await
    }

    fn index_of(&self, addr: &str) -> Option<usize> {
        self.inner.servers.iter().position(|s| s.addr == addr)
    }

    /// One request to one server, its error replies turned into
    /// [`AttemptError`]s.
    async fn attempt(
        &self,
        index: usize,
        op: Op,
        timeout: Duration,
    ) -> Result<Reply, AttemptError> {
        let started = Instant::now();
        let slot = &self.inner.servers[index];
        let conn = slot.conn(&self.inner.options, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        check_reply(&slot.addr, conn.call(op, left).await?)
    }

    /// Runs `op` until a server answers it with a reply `extract` likes, or
    /// gives up: on a non-retryable error, at the deadline, or (when
    /// `max_rounds` is set) once it has failed that many times per server.
    /// The round limit is for a sharded client, which would rather refresh
    /// its configuration than keep knocking at a group that may have left.
    ///
    /// Routing: start at the presumed leader; follow a `wrong_leader` hint
    /// when it names a known server, otherwise move to the next server. Pace:
    /// retry at once while there are untried servers, and pause (capped
    /// exponential backoff with jitter) after a full round of failures or an
    /// error that says the cluster is busy (a commit timeout, a silent or
    /// lost connection).
    pub(crate) async fn execute<T>(
        &self,
        op: Op,
        kind: &'static str,
        options: &ClerkOptions,
        rng: &mut ChaCha8Rng,
        extract: Extract<T>,
        max_rounds: Option<u32>,
    ) -> Result<T, ClerkError> {
        let started = Instant::now();
        let deadline = options.overall_deadline.map(|d| started + d);
        let count = self.inner.servers.len();
        let max_attempts = max_rounds.map(|r| (r as usize).saturating_mul(count).max(1));
        let mut target = self.inner.leader.load(Ordering::Relaxed);
        let mut backoff = Backoff::new(options);
        let mut attempts: u32 = 0;
        let mut failures_since_pause = 0;
        let mut maybe_applied = false;
        let mut last_error: Option<AttemptError> = None;
        loop {
            let timeout = match deadline {
                Some(d) => options
                    .request_timeout
                    .min(d.saturating_duration_since(Instant::now())),
                None => options.request_timeout,
            };
            // A retry with no time left would send the request and abandon
            // it at once, turning a clean refusal into an unknown outcome.
            if let (true, Some(last)) = (timeout.is_zero(), last_error.take()) {
                return Err(ClerkError::gave_up(
                    kind,
                    attempts,
                    started.elapsed(),
                    maybe_applied,
                    last,
                ));
            }
            attempts += 1;
            let error = match self.attempt(target, op.clone(), timeout).await.map(extract) {
                Ok(Ok(value)) => {
                    self.inner.leader.store(target, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(reply)) => unexpected(&self.inner.servers[target].addr, kind, &reply),
                Err(error) => error,
            };
            tracing::debug!(op = kind, attempt = attempts, %error, "attempt failed");
            maybe_applied |= !error.is_definite();
            if !error.is_retryable()
                || deadline.is_some_and(|d| Instant::now() >= d)
                || max_attempts.is_some_and(|m| attempts as usize >= m)
            {
                return Err(ClerkError::gave_up(
                    kind,
                    attempts,
                    started.elapsed(),
                    maybe_applied,
                    error,
                ));
            }
            let hinted = match &error {
                AttemptError::WrongLeader {
                    hint: Some(hint), ..
                } => self.index_of(&hint.client_addr).filter(|&i| i != target),
                _ => None,
            };
            target = hinted.unwrap_or((target + 1) % count);
            failures_since_pause += 1;
            if failures_since_pause >= count || error.suggests_pause() {
                failures_since_pause = 0;
                let mut pause = backoff.next_pause(rng);
                if let Some(d) = deadline {
                    pause = pause.min(d.saturating_duration_since(Instant::now()));
                }
                tokio::time::sleep(pause).await;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(ClerkError::gave_up(
                        kind,
                        attempts,
                        started.elapsed(),
                        maybe_applied,
                        error,
                    ));
                }
            }
            last_error = Some(error);
        }
    }
}

/// Picks the success value out of a reply, or hands the reply back (boxed:
/// replies are large, and this is the rare path) to be reported as
/// unexpected.
pub(crate) type Extract<T> = fn(Reply) -> Result<T, Box<Reply>>;

/// Accepts `ok`, the success reply of writes and admin requests.
pub(crate) fn expect_ok(reply: Reply) -> Result<(), Box<Reply>> {
    match reply {
        Reply::Ok => Ok(()),
        other => Err(Box::new(other)),
    }
}

/// Turns error replies into attempt errors; success replies pass through.
fn check_reply(addr: &str, reply: Reply) -> Result<Reply, AttemptError> {
    let addr = addr.to_string();
    match reply {
        Reply::WrongLeader { leader } => Err(AttemptError::WrongLeader { addr, hint: leader }),
        Reply::WrongGroup { shard, config_num } => Err(AttemptError::WrongGroup {
            addr,
            shard,
            config_num,
        }),
        Reply::NotReady { .. } => Err(AttemptError::NotServed {
            addr,
            reply: format!("{reply:?}"),
        }),
        Reply::Timeout => Err(AttemptError::ServerTimeout { addr }),
        Reply::ShuttingDown => Err(AttemptError::ShuttingDown { addr }),
        Reply::BadRequest { reason } => Err(AttemptError::BadRequest { addr, reason }),
        ok @ (Reply::Ok
        | Reply::Value { .. }
        | Reply::Status(_)
        | Reply::Config(_)
        | Reply::Shard(_)) => Ok(ok),
    }
}

fn unexpected(addr: &str, op: &'static str, reply: &Reply) -> AttemptError {
    AttemptError::UnexpectedReply {
        addr: addr.to_string(),
        op,
        reply: format!("{reply:?}"),
    }
}

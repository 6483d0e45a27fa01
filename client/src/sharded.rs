//! The sharded client: one session across every replica group of a sharded
//! deployment.
//!
//! A sharded kvd is a controller group (`kvd --role ctrler`) plus replica
//! groups (`kvd --role kv --group GID`). The controller keeps numbered
//! configurations that assign each of the [`wire::NSHARDS`] shards to a
//! group; a group serves the shards its current configuration gives it and
//! answers `wrong_group` for the others (also while a shard is still
//! migrating in). An operation on `key` is routed like this:
//!
//! 1. `shard = key_to_shard(key)`, `gid = config.shards[shard]`, using the
//!    configuration cached by the [`ShardedClient`] (queried on first use).
//! 2. One *visit* to that group: the group's [`ClusterClient`] runs its usual
//!    leader-following retry loop, but gives up after one round over the
//!    group's servers or at the first `wrong_group`, so that a group that has
//!    left or lags cannot hold the operation forever.
//! 3. After a failed visit (or when the shard has no group), ask the
//!    controller for the latest configuration unless a query that started
//!    after the failure has already answered (one query serves every clerk
//!    that failed before it began), pause with backoff and jitter unless the
//!    configuration moved on, and visit again, with the *same* operation.
//!
//! The same operation means the same `(client_id, seq)`: the groups hand a
//! shard's exactly-once table over together with its data, so a write that
//! was applied by the old owner and is retried at the new one is recognised
//! as a duplicate there. The outcome of the whole call merges every visit:
//! it is unknown if any attempt in any group might have applied the write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use wire::{ClientId, GroupId, NSHARDS, Op, Reply, ShardConfig, ShardId, key_to_shard};

use crate::cluster::{ClusterClient, Extract, expect_ok};
use crate::ctrler_clerk::CtrlerClerk;
use crate::error::{AttemptError, ClerkError};
use crate::options::{Backoff, ClerkOptions};

/// Rounds over a group's servers that one visit may make before the clerk
/// looks at the configuration again (the classic lab clerk's "try each
/// server once").
const ROUNDS_PER_VISIT: u32 = 1;

/// A handle on a sharded deployment: the controller group and the replica
/// groups its configurations name.
///
/// It caches the latest configuration it has seen and one [`ClusterClient`]
/// per group (made on first use from the configuration's addresses, and
/// replaced when a group's addresses change), so that every [`ShardedClerk`]
/// made from it shares connections, leader guesses and configuration
/// refreshes. Cloning is cheap and clones share everything.
#[derive(Clone)]
pub struct ShardedClient {
    inner: Arc<Inner>,
}

struct Inner {
    ctrler: ClusterClient,
    /// The session that queries the controller. Holding its lock is what
    /// makes a refresh single-flight.
    refresher: tokio::sync::Mutex<CtrlerClerk>,
    cache: Mutex<ConfigCache>,
    groups: Mutex<BTreeMap<GroupId, GroupClient>>,
    options: ClerkOptions,
    /// Draws client ids and per-clerk jitter seeds.
    seeds: Mutex<ChaCha8Rng>,
    /// Seeds the group clients' own RNGs (mixed with the gid), so that they
    /// do not depend on which group happens to be visited first.
    group_seed: u64,
    /// Which server of each group is tried first.
    first_server: usize,
}

/// One replica group's client and the addresses it was made for.
struct GroupClient {
    servers: Vec<String>,
    client: ClusterClient,
}

impl ShardedClient {
    /// A client for the deployment whose controller group serves at
    /// `ctrlers` (client addresses, `host:port`). Connects lazily: this fails
    /// only for an empty list.
    pub fn new<S: Into<String>>(
        ctrlers: impl IntoIterator<Item = S>,
        options: ClerkOptions,
    ) -> Result<ShardedClient, ClerkError> {
        Self::starting_at(ctrlers, options, 0)
    }

    /// Like [`ShardedClient::new`], but each group is first tried at its
    /// server number `first` (modulo the group's size) rather than its
    /// first server. A test harness gives each client process its own
    /// `first`, as Jepsen binds clients to nodes, so that followers and
    /// deposed leaders are asked too, not only whoever led last.
    pub fn starting_at<S: Into<String>>(
        ctrlers: impl IntoIterator<Item = S>,
        options: ClerkOptions,
        first: usize,
    ) -> Result<ShardedClient, ClerkError> {
        let mut seeds = ChaCha8Rng::seed_from_u64(options.effective_seed());
        let ctrler_options = ClerkOptions {
            seed: Some(seeds.random()),
            ..options.clone()
        };
        let ctrler = ClusterClient::new(ctrlers, ctrler_options)?;
        let group_seed = seeds.random();
        Ok(ShardedClient {
            inner: Arc::new(Inner {
                refresher: tokio::sync::Mutex::new(ctrler.ctrler_clerk()),
                ctrler,
                cache: Mutex::new(ConfigCache::default()),
                groups: Mutex::new(BTreeMap::new()),
                options,
                seeds: Mutex::new(seeds),
                group_seed,
                first_server: first,
            }),
        })
    }

    /// A new clerk with a fresh client id drawn from this client's seeded
    /// RNG.
    pub fn clerk(&self) -> ShardedClerk {
        let client_id = self.lock_seeds().random();
        self.clerk_with_id(client_id)
    }

    /// A new clerk with a given client id, e.g. to resume a session. The id
    /// must not be used by any other live clerk of the same deployment.
    pub fn clerk_with_id(&self, client_id: ClientId) -> ShardedClerk {
        let seed = self.lock_seeds().random();
        ShardedClerk {
            client: self.clone(),
            client_id,
            last_seq: 0,
            options: self.inner.options.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The controller group, for admin calls (join, leave, move, status).
    pub fn ctrler(&self) -> &ClusterClient {
        &self.inner.ctrler
    }

    /// Queries the controller for its latest configuration and caches it.
    /// A query that other callers started after this call began counts as
    /// this one's: the answer is at least as new as the moment of the call.
    pub async fn latest_config(&self) -> Result<ShardConfig, ClerkError> {
        let deadline = self
            .inner
            .options
            .overall_deadline
            .map(|d| Instant::now() + d);
        self.config_since(Instant::now(), deadline).await
    }

    /// The newest configuration seen so far, without asking anyone; `None`
    /// before the first query.
    pub fn cached_config(&self) -> Option<ShardConfig> {
        self.lock_cache().current().cloned()
    }

    /// A configuration from a controller query that started at or after
    /// `since`: the cached one if such a query already answered, otherwise
    /// one this call makes. Concurrent callers queue behind one query and
    /// then mostly find its answer in the cache.
    async fn config_since(
        &self,
        since: Instant,
        deadline: Option<Instant>,
    ) -> Result<ShardConfig, ClerkError> {
        if let Some(config) = self.lock_cache().fresh_since(since) {
            return Ok(config.clone());
        }
        let waiting = Instant::now();
        let mut refresher = match deadline {
            None => self.inner.refresher.lock().await,
            Some(d) => {
                let left = d.saturating_duration_since(waiting);
                match tokio::time::timeout(left, self.inner.refresher.lock()).await {
                    Ok(guard) => guard,
                    Err(_) => {
                        return Err(ClerkError::NotApplied {
                            op: "query",
                            attempts: 0,
                            elapsed: waiting.elapsed(),
                            last: AttemptError::NoReply {
                                addr: self.inner.ctrler.presumed_leader().to_string(),
                                waited: waiting.elapsed(),
                            },
                        });
                    }
                }
            }
        };
        if let Some(config) = self.lock_cache().fresh_since(since) {
            return Ok(config.clone());
        }
        let asked_at = Instant::now();
        refresher.options_mut().overall_deadline =
            deadline.map(|d| d.saturating_duration_since(asked_at));
        let config = refresher.query(None).await?;
        Ok(self.lock_cache().offer(config, asked_at).clone())
    }

    /// The client of group `gid`, made (or remade) for `servers`.
    fn group(&self, gid: GroupId, servers: &[String]) -> Result<ClusterClient, ClerkError> {
        let mut groups = self
            .inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.get(&gid)
            && group.servers == servers
        {
            return Ok(group.client.clone());
        }
        let options = ClerkOptions {
            seed: Some(group_seed(self.inner.group_seed, gid)),
            ..self.inner.options.clone()
        };
        let first = self.inner.first_server % servers.len().max(1);
        let rotated = servers[first..].iter().chain(&servers[..first]).cloned();
        let client = ClusterClient::new(rotated, options)?;
        groups.insert(
            gid,
            GroupClient {
                servers: servers.to_vec(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    fn lock_seeds(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.inner
            .seeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ConfigCache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The seed of group `gid`'s client: independent of the order groups are
/// first visited in.
fn group_seed(base: u64, gid: GroupId) -> u64 {
    base ^ gid.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One logical client of a sharded deployment: `get`, `put` and `append` on
/// any key, routed to the group that owns the key's shard.
///
/// Like [`crate::Clerk`] it is one exactly-once session: writes carry
/// `(client_id, seq)` and every retry, in whichever group, resends the same
/// `seq`. Methods take `&mut self` (one outstanding write per session); run
/// concurrent clients as separate clerks of one [`ShardedClient`].
/// `overall_deadline` bounds a whole call, across groups and configuration
/// refreshes.
pub struct ShardedClerk {
    client: ShardedClient,
    client_id: ClientId,
    last_seq: u64,
    options: ClerkOptions,
    rng: ChaCha8Rng,
}

impl ShardedClerk {
    /// This session's client id.
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// The `seq` of the last write issued (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// This clerk's options, e.g. to tighten the deadline of the next call.
    pub fn options_mut(&mut self) -> &mut ClerkOptions {
        &mut self.options
    }

    /// The shared deployment handle (configuration cache, controller).
    pub fn client(&self) -> &ShardedClient {
        &self.client
    }

    /// Reads `key` linearizably from its shard's group; `None` when absent.
    pub async fn get(&mut self, key: &str) -> Result<Option<String>, ClerkError> {
        let op = Op::Get {
            key: key.to_string(),
        };
        self.execute(key, op, "get", |reply| match reply {
            Reply::Value { value } => Ok(value),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Sets `key` to `value`, exactly once.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        self.last_seq += 1;
        let op = Op::Put {
            key: key.to_string(),
            value: value.to_string(),
            client_id: self.client_id,
            seq: self.last_seq,
        };
        self.execute(key, op, "put", expect_ok).await
    }

    /// Appends `value` to `key` (absent counts as empty), exactly once.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        self.last_seq += 1;
        let op = Op::Append {
            key: key.to_string(),
            value: value.to_string(),
            client_id: self.client_id,
            seq: self.last_seq,
        };
        self.execute(key, op, "append", expect_ok).await
    }

    /// Visits the group owning `key`'s shard until it answers, refreshing
    /// the configuration between visits (see the module doc).
    async fn execute<T>(
        &mut self,
        key: &str,
        op: Op,
        kind: &'static str,
        extract: Extract<T>,
    ) -> Result<T, ClerkError> {
        let started = Instant::now();
        let deadline = self.options.overall_deadline.map(|d| started + d);
        let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
        let shard = key_to_shard(key, NSHARDS);
        let mut backoff = Backoff::new(&self.options);
        let mut tally = Tally::default();
        let mut config = self.client.cached_config();
        // Some(t): the next visit needs a configuration queried after t.
        let mut stale_since = config.is_none().then_some(started);
        loop {
            let previous_num = config.as_ref().map(|c| c.num);
            if let Some(since) = stale_since.take() {
                match self.client.config_since(since, deadline).await {
                    Ok(fresh) => config = Some(fresh),
                    Err(error) => tally.note_refresh_failure(error),
                }
            }
            // A new configuration goes straight to its owner; anything else
            // after a failure waits a little first.
            let moved_on = config.as_ref().map(|c| c.num) > previous_num;
            let failed_before = tally.visits > 0 || tally.last.is_some();
            if !moved_on && failed_before {
                if past_deadline() {
                    return Err(tally.finish(kind, shard, started.elapsed()));
                }
                let mut pause = backoff.next_pause(&mut self.rng);
                if let Some(d) = deadline {
                    pause = pause.min(d.saturating_duration_since(Instant::now()));
                }
                tokio::time::sleep(pause).await;
            }
            if past_deadline() {
                return Err(tally.finish(kind, shard, started.elapsed()));
            }
            let Some(current) = config.as_ref() else {
                stale_since = Some(Instant::now());
                continue;
            };
            let (gid, servers) = match route(current, shard) {
                Ok(found) => found,
                Err(no_group) => {
                    tally.note(no_group);
                    stale_since = Some(Instant::now());
                    continue;
                }
            };
            let Ok(group) = self.client.group(gid, servers) else {
                // `route` only picks groups with servers, so this is not
                // expected; treat it like a shard without a group.
                tally.note(AttemptError::NoGroup {
                    shard,
                    config_num: current.num,
                });
                stale_since = Some(Instant::now());
                continue;
            };
            // A visit with no time left would send the request and abandon it
            // at once, turning a clean refusal into an unknown outcome.
            let budget = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if budget == Some(Duration::ZERO) {
                return Err(tally.finish(kind, shard, started.elapsed()));
            }
            let options = ClerkOptions {
                overall_deadline: budget,
                ..self.options.clone()
            };
            let failure = match group
                .execute(
                    op.clone(),
                    kind,
                    &options,
                    &mut self.rng,
                    extract,
                    Some(ROUNDS_PER_VISIT),
                )
                .await
            {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            tracing::debug!(op = kind, gid, shard, error = %failure, "visit to a group failed");
            let config_num = current.num;
            let last = failure.last_attempt().cloned();
            tally.absorb(failure);
            match last {
                Some(error) if !error.is_retryable() && !error.needs_new_config() => {
                    return Err(tally.finish(kind, shard, started.elapsed()));
                }
                Some(error) if !worth_refreshing(&error, config_num) => {}
                _ => stale_since = Some(Instant::now()),
            }
        }
    }
}

/// The group that serves `shard` in `config`, and its servers; `NoGroup`
/// when the shard is unassigned (gid 0, no groups yet) or its group has no
/// servers listed.
fn route(config: &ShardConfig, shard: ShardId) -> Result<(GroupId, &[String]), AttemptError> {
    let no_group = || AttemptError::NoGroup {
        shard,
        config_num: config.num,
    };
    let gid = usize::try_from(shard)
        .ok()
        .and_then(|s| config.shards.get(s).copied())
        .filter(|&gid| gid != 0)
        .ok_or_else(no_group)?;
    match config.groups.get(&gid) {
        Some(servers) if !servers.is_empty() => Ok((gid, servers.as_slice())),
        _ => Err(no_group()),
    }
}

/// Whether a visit that ended in `error` under configuration `config_num`
/// calls for a fresh configuration. Not when the group said `wrong_group`
/// from an *older* configuration than ours: it has not caught up yet, and
/// asking the controller again would only tell us what we know. Every other
/// failure may mean the shard moved (or the group left), so it does.
fn worth_refreshing(error: &AttemptError, config_num: u64) -> bool {
    match error {
        AttemptError::WrongGroup {
            config_num: theirs, ..
        } => *theirs >= config_num,
        _ => true,
    }
}

/// The newest configuration seen and when the query that fetched it began.
#[derive(Default)]
struct ConfigCache {
    current: Option<(ShardConfig, Instant)>,
}

impl ConfigCache {
    fn current(&self) -> Option<&ShardConfig> {
        self.current.as_ref().map(|(config, _)| config)
    }

    /// Takes `config` (from a query begun at `asked_at`) unless the cache
    /// already holds a newer one, and returns what the cache now holds:
    /// configurations only move forward.
    fn offer(&mut self, config: ShardConfig, asked_at: Instant) -> &ShardConfig {
        let (held, held_at) = match self.current.take() {
            // Ours is at least as new, and a query that began later proves
            // it fresh as of that start.
            Some((held, held_at)) if held.num >= config.num => (held, held_at.max(asked_at)),
            _ => (config, asked_at),
        };
        &self.current.insert((held, held_at)).0
    }

    /// The cached configuration if a query begun at or after `since` is
    /// behind it.
    fn fresh_since(&self, since: Instant) -> Option<&ShardConfig> {
        self.current
            .as_ref()
            .filter(|(_, asked_at)| *asked_at >= since)
            .map(|(config, _)| config)
    }
}

/// What a sharded call learned over all its visits, for the final error.
#[derive(Debug, Default)]
struct Tally {
    attempts: u32,
    visits: u32,
    /// Whether any attempt in any group might have applied the operation.
    maybe_applied: bool,
    last: Option<AttemptError>,
}

impl Tally {
    /// Adds one failed visit to a group.
    fn absorb(&mut self, failure: ClerkError) {
        self.visits += 1;
        self.maybe_applied |= !failure.is_definite();
        match failure {
            ClerkError::NotApplied { attempts, last, .. }
            | ClerkError::Unknown { attempts, last, .. } => {
                self.attempts = self.attempts.saturating_add(attempts);
                self.last = Some(last);
            }
            ClerkError::NoServers => {}
        }
    }

    /// Records a failure that sent nothing (no group to route to).
    fn note(&mut self, error: AttemptError) {
        self.last = Some(error);
    }

    /// Records a failed controller query: the operation itself was not
    /// sent. What a group answered, if one did, stays the error to report:
    /// it says why the operation failed, while a query the deadline cut
    /// short says only that time ran out.
    fn note_refresh_failure(&mut self, failure: ClerkError) {
        if self.last.is_none() {
            self.last = failure.last_attempt().cloned();
        }
    }

    /// The error for a call that gives up now.
    fn finish(self, op: &'static str, shard: ShardId, elapsed: Duration) -> ClerkError {
        let last = self.last.unwrap_or(AttemptError::NoGroup {
            shard,
            config_num: 0,
        });
        ClerkError::gave_up(op, self.attempts, elapsed, self.maybe_applied, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(num: u64, shards: [GroupId; 10], groups: &[(GroupId, &[&str])]) -> ShardConfig {
        ShardConfig {
            num,
            shards: shards.to_vec(),
            groups: groups
                .iter()
                .map(|(gid, addrs)| (*gid, addrs.iter().map(|a| a.to_string()).collect()))
                .collect(),
        }
    }

    fn lost(addr: &str) -> AttemptError {
        AttemptError::ConnectionLost {
            addr: addr.into(),
            reason: "reset".into(),
        }
    }

    fn wrong_group(config_num: u64) -> AttemptError {
        AttemptError::WrongGroup {
            addr: "127.0.0.1:7201".into(),
            shard: 3,
            config_num,
        }
    }

    fn visit(definite: bool, attempts: u32, last: AttemptError) -> ClerkError {
        let elapsed = Duration::from_millis(5);
        if definite {
            ClerkError::NotApplied {
                op: "put",
                attempts,
                elapsed,
                last,
            }
        } else {
            ClerkError::Unknown {
                op: "put",
                attempts,
                elapsed,
                last,
            }
        }
    }

    #[test]
    fn a_key_routes_to_the_group_owning_its_shard() {
        let c = config(
            4,
            [1, 1, 1, 1, 1, 2, 2, 2, 2, 2],
            &[(1, &["a:1", "a:2"]), (2, &["b:1"])],
        );
        // "a" hashes to shard 0, "x" to shard 5 (protocol doc vectors).
        let shard_a = key_to_shard("a", NSHARDS);
        let shard_x = key_to_shard("x", NSHARDS);
        assert_eq!((shard_a, shard_x), (0, 5));
        let (gid, servers) = route(&c, shard_a).unwrap();
        assert_eq!(
            (gid, servers),
            (1, &["a:1".to_string(), "a:2".to_string()][..])
        );
        let (gid, servers) = route(&c, shard_x).unwrap();
        assert_eq!((gid, servers), (2, &["b:1".to_string()][..]));
    }

    #[test]
    fn an_unassigned_shard_or_a_group_without_servers_routes_nowhere() {
        let initial = config(0, [0; 10], &[]);
        assert_eq!(
            route(&initial, 3),
            Err(AttemptError::NoGroup {
                shard: 3,
                config_num: 0
            })
        );
        let empty_group = config(2, [7; 10], &[(7, &[])]);
        assert!(matches!(
            route(&empty_group, 1),
            Err(AttemptError::NoGroup { config_num: 2, .. })
        ));
        let unknown_group = config(3, [9; 10], &[(7, &["a:1"])]);
        assert!(route(&unknown_group, 1).is_err());
        let short = ShardConfig {
            num: 4,
            shards: vec![1],
            groups: BTreeMap::from([(1, vec!["a:1".to_string()])]),
        };
        assert!(route(&short, 5).is_err(), "a shard beyond the table");
    }

    #[test]
    fn wrong_group_from_a_lagging_group_does_not_refresh_but_a_newer_one_does() {
        assert!(
            !worth_refreshing(&wrong_group(3), 4),
            "group lags behind us"
        );
        assert!(
            worth_refreshing(&wrong_group(4), 4),
            "same config: may be newer"
        );
        assert!(worth_refreshing(&wrong_group(5), 4), "group is ahead of us");
        assert!(worth_refreshing(&lost("a:1"), 4), "group may have left");
    }

    #[test]
    fn wrong_group_is_definite_and_ends_one_groups_retry_loop() {
        let error = wrong_group(2);
        assert!(error.is_definite());
        assert!(!error.is_retryable());
        assert!(error.needs_new_config());
        assert!(!lost("a:1").needs_new_config());
    }

    #[test]
    fn an_unknown_visit_in_one_group_makes_the_whole_call_unknown() {
        let mut tally = Tally::default();
        tally.absorb(visit(false, 2, lost("a:1")));
        tally.absorb(visit(true, 1, wrong_group(5)));
        tally.note(AttemptError::NoGroup {
            shard: 3,
            config_num: 5,
        });
        match tally.finish("put", 3, Duration::from_secs(1)) {
            ClerkError::Unknown { attempts, last, .. } => {
                assert_eq!(attempts, 3);
                assert!(matches!(last, AttemptError::NoGroup { .. }));
            }
            other => panic!("expected unknown, got {other:?}"),
        }
    }

    #[test]
    fn only_definite_visits_make_the_call_not_applied() {
        let mut tally = Tally::default();
        tally.absorb(visit(true, 3, wrong_group(1)));
        tally.absorb(visit(true, 1, wrong_group(2)));
        let error = tally.finish("append", 3, Duration::from_secs(1));
        assert!(error.is_definite(), "{error:?}");
        assert!(matches!(
            error,
            ClerkError::NotApplied {
                attempts: 4,
                last: AttemptError::WrongGroup { config_num: 2, .. },
                ..
            }
        ));
    }

    #[test]
    fn a_failed_controller_query_is_reported_but_not_counted_as_an_attempt() {
        let mut tally = Tally::default();
        tally.note_refresh_failure(ClerkError::NotApplied {
            op: "query",
            attempts: 4,
            elapsed: Duration::from_secs(1),
            last: AttemptError::Connect {
                addr: "ctrler:1".into(),
                reason: "refused".into(),
            },
        });
        let error = tally.finish("get", 0, Duration::from_secs(1));
        assert!(matches!(
            error,
            ClerkError::NotApplied {
                attempts: 0,
                last: AttemptError::Connect { .. },
                ..
            }
        ));
    }

    #[test]
    fn the_cache_only_moves_forward_and_remembers_the_latest_query_start() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(10);
        let mut cache = ConfigCache::default();
        assert!(cache.current().is_none());
        cache.offer(config(3, [1; 10], &[(1, &["a:1"])]), t0);
        assert_eq!(cache.current().map(|c| c.num), Some(3));
        // An older answer (from a query that began earlier but came back
        // later) never replaces a newer configuration...
        cache.offer(config(2, [0; 10], &[]), later);
        assert_eq!(cache.current().map(|c| c.num), Some(3));
        // ...but does prove the cached one fresh as of its start.
        assert!(cache.fresh_since(later).is_some());
        cache.offer(config(4, [2; 10], &[(2, &["b:1"])]), later);
        assert_eq!(cache.current().map(|c| c.num), Some(4));
    }

    #[test]
    fn a_refresh_that_began_after_a_failure_serves_it_and_an_earlier_one_does_not() {
        let t0 = Instant::now();
        let mut cache = ConfigCache::default();
        assert!(cache.fresh_since(t0).is_none(), "nothing cached yet");
        cache.offer(
            config(1, [1; 10], &[(1, &["a:1"])]),
            t0 + Duration::from_millis(5),
        );
        assert!(cache.fresh_since(t0).is_some());
        assert!(cache.fresh_since(t0 + Duration::from_millis(5)).is_some());
        assert!(cache.fresh_since(t0 + Duration::from_millis(6)).is_none());
    }

    #[test]
    fn group_seeds_differ_per_group_and_do_not_depend_on_visit_order() {
        assert_ne!(group_seed(42, 1), group_seed(42, 2));
        assert_eq!(group_seed(42, 7), group_seed(42, 7));
    }
}

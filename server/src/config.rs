//! kvd's configuration: command-line flags, an optional TOML file, and the
//! validated [`KvdConfig`] the runtime starts from.
//!
//! Every flag may also be set in the file given by `--config`, under the
//! flag's own name (`client-addr = "127.0.0.1:7001"`, `peer = ["2=..."]`,
//! `tick = "10ms"`); a flag given on the command line wins over the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Deserializer};

/// Default Raft tick.
const DEFAULT_TICK: Duration = Duration::from_millis(10);
/// Default election timeout in ticks (randomized to `[n, 2n)`).
const DEFAULT_ELECTION_TICKS: u32 = 10;
/// Default heartbeat interval in ticks.
const DEFAULT_HEARTBEAT_TICKS: u32 = 2;
/// Default Raft log size that triggers a snapshot.
const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Default per-request deadline.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Smallest accepted `--max-frame`: room for any request with a short key.
const MIN_MAX_FRAME: u64 = 4 * 1024;

/// The command line (and, field for field, the TOML file). Everything is
/// optional here because any setting may come from either source;
/// [`KvdConfig::load`] merges and validates.
#[derive(Parser, Debug, Default, Deserialize)]
#[command(
    name = "kvd",
    version,
    about = "A Raft-replicated, sharded key/value server (one node of one Raft group)",
    long_about = "kvd runs one node of a Raft group serving linearizable get, put and append \
                  over the kvd wire protocol (docs/protocol.md); with --role ctrler, the \
                  shard controller (join, leave, move, query); with --group and --ctrlers, a \
                  replica group of a sharded deployment, which serves the shards the \
                  controller gives it and migrates shards to and from other groups. Start one \
                  process per member, \
                  each with its own --id, addresses and --data-dir, and list the other members \
                  with --peer. Every flag may also be given in a TOML file (--config) under its \
                  own name; command-line flags override the file."
)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KvdArgs {
    /// TOML file with settings, keyed by flag name (e.g. `id = 1`,
    /// `client-addr = "127.0.0.1:7001"`, `peer = ["2=127.0.0.1:7102/127.0.0.1:7002"]`,
    /// `tick = "10ms"`). Flags on the command line override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// This node's Raft id, unique within the group (required).
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,

    /// Which service the group replicates: `kv` (get, put, append) or
    /// `ctrler` (the shard controller: join, leave, move, query). Every
    /// member of a group must have the same role, and a data directory keeps
    /// the role it was created with [default: kv].
    #[arg(long, value_name = "ROLE")]
    pub role: Option<KvdRole>,

    /// Makes this kv group replica group GID of a sharded deployment: it
    /// serves only the shards the shard controller (--ctrlers) gives it, and
    /// moves shards to and from other groups as configurations change.
    /// Requires --ctrlers; `--role kv` only. A data directory keeps the
    /// group it was created for.
    #[arg(long, value_name = "GID")]
    pub group: Option<u64>,

    /// Client addresses of the shard controller's nodes, comma separated
    /// (with --group).
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    #[serde(default)]
    pub ctrlers: Vec<String>,

    /// Identity of the group, checked in the peer handshake so that nodes of
    /// different clusters never talk [default: 1].
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<u64>,

    /// Address (host:port) to listen on for clients (required).
    #[arg(long, value_name = "HOST:PORT")]
    pub client_addr: Option<String>,

    /// Address (host:port) to listen on for the other Raft members (required).
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: Option<String>,

    /// Another member of the group: its id, the address this node dials to
    /// reach it (possibly a proxy), and optionally its client address, used
    /// to point clients at the leader. Give one per other member.
    #[arg(long = "peer", value_name = "ID=PEER_ADDR[/CLIENT_ADDR]")]
    #[serde(default)]
    pub peer: Vec<PeerSpec>,

    /// Directory for the write-ahead log, snapshots and lock file; created if
    /// missing, and recovered from on start (required).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Raft tick interval: the unit of election and heartbeat timeouts
    /// (humantime, e.g. "10ms") [default: 10ms].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub tick: Option<Duration>,

    /// Election timeout in ticks; each node waits a random `[n, 2n)` ticks
    /// without a leader before campaigning [default: 10].
    #[arg(long, value_name = "N")]
    pub election_ticks: Option<u32>,

    /// Heartbeat interval in ticks; must be below --election-ticks
    /// [default: 2].
    #[arg(long, value_name = "N")]
    pub heartbeat_ticks: Option<u32>,

    /// Take a snapshot and truncate the log once the Raft log holds this many
    /// bytes [default: 8388608 (8 MiB)].
    #[arg(long, value_name = "BYTES")]
    pub snapshot_threshold: Option<u64>,

    /// Largest frame body accepted or sent, on client and peer connections;
    /// bigger frames are refused and the connection closed. A snapshot must fit
    /// in one frame to reach a lagging follower [default: 16777216 (16 MiB)].
    #[arg(long, value_name = "BYTES")]
    pub max_frame: Option<u64>,

    /// Seed for the Raft node's randomness (election timeouts) and reconnect
    /// jitter; mixed with the node id and the recovered term, so nodes and
    /// restarts differ [default: the node id].
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,

    /// How long a client request may wait for the group before it is answered
    /// `timeout` (e.g. a leader cut off in a minority) [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub request_timeout: Option<Duration>,

    /// Format of the log lines written to stderr; every line names the node
    /// [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Switches on a deliberate bug (test builds with the `failpoints`
    /// feature only; see `server::failpoints`). Repeatable.
    #[cfg(feature = "failpoints")]
    #[arg(long, value_name = "NAME")]
    #[serde(default)]
    pub failpoint: Vec<crate::failpoints::Failpoint>,
}

/// The service a kvd group replicates (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvdRole {
    /// The key/value store: `get`, `put`, `append`.
    #[default]
    Kv,
    /// The shard controller: `join`, `leave`, `move`, `query`.
    Ctrler,
}

impl KvdRole {
    /// The name used by `--role` and in the data directory's role file.
    pub fn name(self) -> &'static str {
        match self {
            KvdRole::Kv => "kv",
            KvdRole::Ctrler => "ctrler",
        }
    }
}

impl fmt::Display for KvdRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// One other member of the group, as given by `--peer ID=PEER_ADDR[/CLIENT_ADDR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Its Raft id.
    pub id: u64,
    /// Where this node dials it (its peer port, or a proxy in front of it).
    pub peer_addr: String,
    /// Its client address, for `wrong_leader` hints, if known.
    pub client_addr: Option<String>,
}

impl FromStr for PeerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, addrs) = s
            .split_once('=')
            .ok_or_else(|| format!("expected ID=PEER_ADDR[/CLIENT_ADDR], got {s:?}"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|e| format!("peer id {id:?} is not a number: {e}"))?;
        let (peer_addr, client_addr) = match addrs.split_once('/') {
            Some((p, c)) => (p, Some(c)),
            None => (addrs, None),
        };
        if peer_addr.is_empty() {
            return Err(format!("peer {id} has an empty peer address in {s:?}"));
        }
        if client_addr.is_some_and(str::is_empty) {
            return Err(format!("peer {id} has an empty client address in {s:?}"));
        }
        Ok(PeerSpec {
            id,
            peer_addr: peer_addr.to_owned(),
            client_addr: client_addr.map(str::to_owned),
        })
    }
}

impl fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.peer_addr)?;
        if let Some(c) = &self.client_addr {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PeerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
}

/// A complete, validated configuration: what [`crate::run`] needs to start a
/// node. Build it from flags with [`KvdConfig::load`], or fill it in directly
/// when embedding kvd in another program (start from [`KvdConfig::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvdConfig {
    /// This node's Raft id.
    pub id: u64,
    /// The service this group replicates.
    pub role: KvdRole,
    /// For a replica group of a sharded deployment: its gid and where the
    /// shard controller is.
    pub shard_group: Option<ShardGroupConfig>,
    /// Group identity checked in the peer handshake.
    pub cluster_id: u64,
    /// Client listen address.
    pub client_addr: String,
    /// Peer listen address.
    pub peer_addr: String,
    /// The other members.
    pub peers: Vec<PeerSpec>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Raft tick interval.
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Raft log bytes that trigger a snapshot.
    pub snapshot_threshold: u64,
    /// Largest frame body, bytes.
    pub max_frame: usize,
    /// Base seed (see `--seed`).
    pub seed: u64,
    /// Per-request deadline.
    pub request_timeout: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// Deliberate bugs switched on (always none in release builds).
    pub failpoints: crate::failpoints::Failpoints,
}

/// Where a replica group stands in a sharded deployment (`--group`,
/// `--ctrlers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardGroupConfig {
    /// This group's id in the controller's configurations (never 0).
    pub gid: u64,
    /// The controller nodes' client addresses.
    pub ctrlers: Vec<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML file does not parse or has unknown keys.
    #[error("bad config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: toml::de::Error,
    },
    /// A required setting is in neither the flags nor the file.
    #[error("--{0} is required (on the command line or in the --config file)")]
    Missing(&'static str),
    /// Settings that cannot work together, or an out-of-range value.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl KvdConfig {
    /// A configuration with every optional setting at its default.
    pub fn new(
        id: u64,
        client_addr: impl Into<String>,
        peer_addr: impl Into<String>,
        peers: Vec<PeerSpec>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        KvdConfig {
            id,
            role: KvdRole::Kv,
            shard_group: None,
            cluster_id: 1,
            client_addr: client_addr.into(),
            peer_addr: peer_addr.into(),
            peers,
            data_dir: data_dir.into(),
            tick: DEFAULT_TICK,
            election_ticks: DEFAULT_ELECTION_TICKS,
            heartbeat_ticks: DEFAULT_HEARTBEAT_TICKS,
            snapshot_threshold: DEFAULT_SNAPSHOT_THRESHOLD,
            max_frame: wire::DEFAULT_MAX_FRAME_LEN,
            seed: id,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            log_format: LogFormat::Text,
            failpoints: crate::failpoints::Failpoints::default(),
        }
    }

    /// Reads the `--config` file named by `cli` (if any), lets the flags
    /// override it, fills in defaults and validates the result.
    pub fn load(cli: KvdArgs) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => KvdArgs::default(),
        };
        Self::from_args(merge(file, cli))
    }

    /// Fills in defaults and validates already merged settings.
    pub fn from_args(args: KvdArgs) -> Result<Self, ConfigError> {
        let id = args.id.ok_or(ConfigError::Missing("id"))?;
        let client_addr = args
            .client_addr
            .ok_or(ConfigError::Missing("client-addr"))?;
        let peer_addr = args.peer_addr.ok_or(ConfigError::Missing("peer-addr"))?;
        let data_dir = args.data_dir.ok_or(ConfigError::Missing("data-dir"))?;
        let mut config = KvdConfig::new(id, client_addr, peer_addr, args.peer, data_dir);
        if let Some(v) = args.role {
            config.role = v;
        }
        match (args.group, args.ctrlers.is_empty()) {
            (Some(gid), false) => {
                config.shard_group = Some(ShardGroupConfig {
                    gid,
                    ctrlers: args.ctrlers,
                });
            }
            (Some(_), true) => {
                return Err(ConfigError::Invalid(
                    "--group needs --ctrlers (the shard controller's client addresses)".into(),
                ));
            }
            (None, false) => {
                return Err(ConfigError::Invalid(
                    "--ctrlers only makes sense with --group (a replica group of a sharded deployment)"
                        .into(),
                ));
            }
            (None, true) => {}
        }
        if let Some(v) = args.cluster_id {
            config.cluster_id = v;
        }
        if let Some(v) = args.tick {
            config.tick = v;
        }
        if let Some(v) = args.election_ticks {
            config.election_ticks = v;
        }
        if let Some(v) = args.heartbeat_ticks {
            config.heartbeat_ticks = v;
        }
        if let Some(v) = args.snapshot_threshold {
            config.snapshot_threshold = v;
        }
        if let Some(v) = args.max_frame {
            if !(MIN_MAX_FRAME..=u64::from(u32::MAX)).contains(&v) {
                return Err(ConfigError::Invalid(format!(
                    "--max-frame {v} is outside {MIN_MAX_FRAME}..={}",
                    u32::MAX
                )));
            }
            config.max_frame = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(v) = args.seed {
            config.seed = v;
        }
        if let Some(v) = args.request_timeout {
            config.request_timeout = v;
        }
        if let Some(v) = args.log_format {
            config.log_format = v;
        }
        #[cfg(feature = "failpoints")]
        {
            config.failpoints = crate::failpoints::Failpoints::from_names(&args.failpoint);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks settings that must agree with each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |s: String| Err(ConfigError::Invalid(s));
        if self.tick.is_zero() {
            return invalid("--tick must be above zero".into());
        }
        if self.request_timeout.is_zero() {
            return invalid("--request-timeout must be above zero".into());
        }
        if self.heartbeat_ticks == 0 {
            return invalid("--heartbeat-ticks must be at least 1".into());
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return invalid(format!(
                "--election-ticks ({}) must be greater than --heartbeat-ticks ({})",
                self.election_ticks, self.heartbeat_ticks
            ));
        }
        if self.snapshot_threshold == 0 {
            return invalid("--snapshot-threshold must be above zero".into());
        }
        if let Some(group) = &self.shard_group {
            if self.role != KvdRole::Kv {
                return invalid(format!(
                    "--group makes a kv group a shard replica group; it cannot be used with --role {}",
                    self.role
                ));
            }
            if group.gid == 0 {
                return invalid("--group 0 is reserved for \"no group\"; use 1 or above".into());
            }
            if group.ctrlers.iter().any(|a| a.trim().is_empty()) {
                return invalid("--ctrlers has an empty address".into());
            }
        }
        let mut ids = vec![self.id];
        for p in &self.peers {
            if ids.contains(&p.id) {
                return invalid(format!(
                    "node id {} appears twice among --id and --peer (list each other member once)",
                    p.id
                ));
            }
            ids.push(p.id);
        }
        Ok(())
    }

    /// Every member's id, this node included.
    pub fn voters(&self) -> Vec<u64> {
        let mut v: Vec<u64> = std::iter::once(self.id)
            .chain(self.peers.iter().map(|p| p.id))
            .collect();
        v.sort_unstable();
        v
    }
}

fn read_file(path: &Path) -> Result<KvdArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// `cli` wins field by field; a non-empty `--peer` list replaces the file's.
fn merge(file: KvdArgs, cli: KvdArgs) -> KvdArgs {
    KvdArgs {
        config: cli.config,
        id: cli.id.or(file.id),
        role: cli.role.or(file.role),
        group: cli.group.or(file.group),
        ctrlers: if cli.ctrlers.is_empty() {
            file.ctrlers
        } else {
            cli.ctrlers
        },
        cluster_id: cli.cluster_id.or(file.cluster_id),
        client_addr: cli.client_addr.or(file.client_addr),
        peer_addr: cli.peer_addr.or(file.peer_addr),
        peer: if cli.peer.is_empty() {
            file.peer
        } else {
            cli.peer
        },
        data_dir: cli.data_dir.or(file.data_dir),
        tick: cli.tick.or(file.tick),
        election_ticks: cli.election_ticks.or(file.election_ticks),
        heartbeat_ticks: cli.heartbeat_ticks.or(file.heartbeat_ticks),
        snapshot_threshold: cli.snapshot_threshold.or(file.snapshot_threshold),
        max_frame: cli.max_frame.or(file.max_frame),
        seed: cli.seed.or(file.seed),
        request_timeout: cli.request_timeout.or(file.request_timeout),
        log_format: cli.log_format.or(file.log_format),
        #[cfg(feature = "failpoints")]
        failpoint: if cli.failpoint.is_empty() {
            file.failpoint
        } else {
            cli.failpoint
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> KvdArgs {
        KvdArgs::try_parse_from(std::iter::once("kvd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn peer_spec_parses_with_and_without_client_address() {
        let p: PeerSpec = "2=127.0.0.1:7102/127.0.0.1:7002".parse().unwrap();
        assert_eq!(p.id, 2);
        assert_eq!(p.peer_addr, "127.0.0.1:7102");
        assert_eq!(p.client_addr.as_deref(), Some("127.0.0.1:7002"));
        assert_eq!(p.to_string(), "2=127.0.0.1:7102/127.0.0.1:7002");
        let p: PeerSpec = "3=h:1".parse().unwrap();
        assert_eq!(p.client_addr, None);
        assert!("x=h:1".parse::<PeerSpec>().is_err());
        assert!("3".parse::<PeerSpec>().is_err());
        assert!("3=".parse::<PeerSpec>().is_err());
        assert!("3=h:1/".parse::<PeerSpec>().is_err());
    }

    #[test]
    fn flags_fill_defaults_and_require_the_essentials() {
        let c = KvdConfig::from_args(parse(&[
            "--id",
            "1",
            "--client-addr",
            "a:1",
            "--peer-addr",
            "a:2",
            "--data-dir",
            "/d",
            "--peer",
            "2=b:2/b:1",
            "--tick",
            "5ms",
        ]))
        .unwrap();
        assert_eq!(c.tick, Duration::from_millis(5));
        assert_eq!(c.heartbeat_ticks, DEFAULT_HEARTBEAT_TICKS);
        assert_eq!(c.role, KvdRole::Kv, "kv is the default role");
        assert_eq!(c.voters(), vec![1, 2]);
        let err = KvdConfig::from_args(parse(&["--id", "1"])).unwrap_err();
        assert!(matches!(err, ConfigError::Missing("client-addr")), "{err}");
    }

    #[test]
    fn a_replica_group_needs_a_gid_and_the_controller_and_only_as_kv() {
        let base = [
            "--id",
            "1",
            "--client-addr",
            "a:1",
            "--peer-addr",
            "a:2",
            "--data-dir",
            "/d",
        ];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            KvdConfig::from_args(parse(&args))
        };
        let c = with(&["--group", "7", "--ctrlers", "c:1,c:2"]).unwrap();
        let group = c.shard_group.expect("a replica group");
        assert_eq!(
            (group.gid, group.ctrlers),
            (7, vec!["c:1".to_owned(), "c:2".to_owned()])
        );
        assert!(with(&[]).unwrap().shard_group.is_none());
        for bad in [
            &["--group", "7"][..],
            &["--ctrlers", "c:1"],
            &["--group", "0", "--ctrlers", "c:1"],
            &["--group", "7", "--ctrlers", "c:1,"],
            &["--group", "7", "--ctrlers", "c:1", "--role", "ctrler"],
        ] {
            let err = with(bad).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid(_)), "{bad:?}: {err}");
        }
        let file: KvdArgs = toml::from_str("group = 3\nctrlers = [\"c:1\"]\n").unwrap();
        let c = KvdConfig::from_args(merge(file, parse(&base))).unwrap();
        assert_eq!(c.shard_group.map(|g| g.gid), Some(3));
    }

    #[test]
    fn command_line_overrides_the_file() {
        let file: KvdArgs = toml::from_str(
            "id = 1\nclient-addr = \"a:1\"\npeer-addr = \"a:2\"\ndata-dir = \"/d\"\n\
             peer = [\"2=b:2\"]\ntick = \"20ms\"\nelection-ticks = 20\nlog-format = \"json\"\n",
        )
        .unwrap();
        let cli = parse(&["--tick", "7ms", "--id", "5", "--peer", "3=c:2"]);
        let c = KvdConfig::from_args(merge(file, cli)).unwrap();
        assert_eq!(c.id, 5);
        assert_eq!(c.tick, Duration::from_millis(7));
        assert_eq!(c.election_ticks, 20);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.voters(), vec![3, 5]);
    }

    #[test]
    fn role_comes_from_the_flag_or_the_file() {
        let base = [
            "--id",
            "1",
            "--client-addr",
            "a:1",
            "--peer-addr",
            "a:2",
            "--data-dir",
            "/d",
        ];
        let mut args = base.to_vec();
        args.extend(["--role", "ctrler"]);
        assert_eq!(
            KvdConfig::from_args(parse(&args)).unwrap().role,
            KvdRole::Ctrler
        );
        let file: KvdArgs = toml::from_str("role = \"ctrler\"\n").unwrap();
        let c = KvdConfig::from_args(merge(file, parse(&base))).unwrap();
        assert_eq!(c.role, KvdRole::Ctrler);
        let file: KvdArgs = toml::from_str("role = \"ctrler\"\n").unwrap();
        let mut args = base.to_vec();
        args.extend(["--role", "kv"]);
        assert_eq!(
            KvdConfig::from_args(merge(file, parse(&args)))
                .unwrap()
                .role,
            KvdRole::Kv
        );
        assert!(toml::from_str::<KvdArgs>("role = \"shardkv\"\n").is_err());
        assert!(KvdArgs::try_parse_from(["kvd", "--role", "boss"]).is_err());
    }

    #[test]
    fn unknown_file_keys_and_inconsistent_settings_are_refused() {
        assert!(toml::from_str::<KvdArgs>("idd = 1\n").is_err());
        let mut c = KvdConfig::new(1, "a:1", "a:2", vec!["1=b:2".parse().unwrap()], "/d");
        assert!(c.validate().is_err(), "own id listed as a peer");
        c.peers.clear();
        c.heartbeat_ticks = c.election_ticks;
        assert!(c.validate().is_err());
    }
}

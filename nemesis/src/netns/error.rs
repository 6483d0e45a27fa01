//! The netns backend's errors, and how they read as [`NetFaultError`]s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

use super::MAX_NODES;
use crate::grudge::NetFaultError;
use crate::network::NodeId;

/// Why a namespace network could not be set up, used or checked.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Namespaces, veths and iptables need root.
    #[error(
        "the netns network backend needs root (effective uid is {euid}); run as root or use the proxy backend"
    )]
    NotRoot {
        /// The effective uid we run with.
        euid: u32,
    },
    /// A program we run is not installed.
    #[error(
        "`{tool}` is not installed (the netns backend needs iproute2 and iptables); install it or use the proxy backend: {source}"
    )]
    MissingTool {
        /// The program.
        tool: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// A program could not be started or waited for.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// [`NetnsNetwork::check_available`](super::NetnsNetwork::check_available)
    /// found a step the host refuses.
    #[error(
        "the netns network backend is unavailable here (use the proxy backend): cannot {step}: {source}"
    )]
    Unavailable {
        /// What we tried (e.g. "create a network namespace").
        step: &'static str,
        /// How it failed.
        source: Box<NetnsError>,
    },
    /// A network needs at least one node.
    #[error("a namespace network needs at least one node")]
    NoNodes,
    /// More nodes than addresses in a /24.
    #[error("{count} nodes do not fit in one /24 (at most {MAX_NODES})")]
    TooManyNodes {
        /// How many were asked for.
        count: usize,
    },
    /// The same node id was given twice.
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
    /// A node id this network does not have.
    #[error("node {0} is not part of this network")]
    UnknownNode(NodeId),
    /// Every candidate subnet is routed on this host.
    #[error(
        "no free /24 in 10.213.0.0/16: every candidate overlaps a route or address on this host (see `ip -4 route show table all`)"
    )]
    NoFreeSubnet,
    /// This process has used up its interface names.
    #[error("this process created too many namespace networks for 15-byte interface names")]
    NamesExhausted,
    /// The lock serialising subnet choices failed.
    #[error("subnet lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not enter a node's namespace.
    #[error("cannot enter network namespace {namespace}: {source}")]
    Enter {
        /// The namespace.
        namespace: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A namespace's kernel setting could not be written.
    #[error("cannot write {path}: {source}")]
    Sysctl {
        /// The file under `/proc/sys`.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connectivity check after setup failed.
    #[error(
        "{from} cannot reach {to} over the bridge ({detail}); a host firewall filters bridged traffic: \
         check `iptables -S FORWARD` (and iptables-legacy / `nft list ruleset`) and \
         `sysctl net.bridge.bridge-nf-call-iptables`, or use the proxy backend"
    )]
    BridgeBlocked {
        /// Who tried (`host` or a namespace).
        from: String,
        /// The address it dialed.
        to: SocketAddr,
        /// What the connection attempt returned.
        detail: String,
    },
}

impl From<NetnsError> for NetFaultError {
    fn from(error: NetnsError) -> Self {
        match error {
            NetnsError::UnknownNode(node) => NetFaultError::UnknownNode(node),
            NetnsError::Command {
                command,
                status,
                stderr,
            } => NetFaultError::Command {
                command,
                detail: format!("{status}: {stderr}"),
            },
            NetnsError::Spawn { command, source } => NetFaultError::Command {
                command,
                detail: source.to_string(),
            },
            other => NetFaultError::Command {
                command: "netns".to_string(),
                detail: other.to_string(),
            },
        }
    }
}

//! Network faults with real Linux network namespaces and iptables (root
//! only): the `netns` backend of [`NetworkFaults`].
//!
//! The userspace proxies ([`crate::Network`]) only see traffic that was
//! dialed through them; here the kernel itself cuts the wire, so servers
//! run unmodified, with their real addresses, and a cut behaves exactly as
//! it does between machines — packets vanish and TCP retransmits with
//! exponential backoff.
//!
//! # Layout of one network
//!
//! ```text
//!   host namespace                         node namespaces
//!   ┌───────────────────────────┐
//!   │ bridge <tag>br 10.213.c.1 ├─ <tag>v0 ═══ eth0 10.213.c.2  (<tag>n0)
//!   │ (clients dial node IPs)   ├─ <tag>v1 ═══ eth0 10.213.c.3  (<tag>n1)
//!   └───────────────────────────┴─ ...
//! ```
//!
//! Every node gets a namespace with loopback up and one end of a veth pair
//! named `eth0`; the other end is a port of a bridge in the host namespace,
//! which carries the first address of the run's /24, so the host (where
//! the harness's clients run) reaches every node directly. Names start with
//! a tag unique to the run (`fl`, the pid in base 36, `_`, a per-process
//! counter), short enough for Linux's 15-byte interface names; a process
//! killed before cleaning up leaves `ip netns list` / `ip link` entries with
//! that prefix, which are safe to delete by hand. The /24 is one no route or
//! address on the host overlaps, chosen under a lock so parallel runs never
//! share one.
//!
//! # Faults
//!
//! Each namespace's `INPUT` chain jumps first to a chain of ours. A grudge
//! rewrites that chain in every namespace with one `iptables-restore`
//! transaction each: for every cut pair both sides drop what comes from the
//! other (see [`CutMode`] for `DROP` versus `REJECT`). Healing empties the
//! chains. Each change blocks the calling thread for a few milliseconds per
//! node (from async code, use `spawn_blocking`). Traffic between the host
//! and the nodes is never cut. IPv6 is off inside the namespaces, so no
//! link-local path leaks around the IPv4 rules.
//!
//! Under `DROP`, TCP backs off exponentially while it retransmits into the
//! void: after a 10 s partition an open connection carried data again only
//! 3–5 s after the heal (measured on Linux 6.18), and the wait grows with
//! the partition. Servers that want to recover promptly must notice a
//! silent peer and redial, as they would between machines.
//!
//! # Bridged traffic and the host firewall
//!
//! With the `br_netfilter` module loaded (Docker loads it) and
//! `net.bridge.bridge-nf-call-iptables = 1`, frames crossing the bridge go
//! through the host's iptables `FORWARD` chain, whose policy is often
//! `DROP`. Then node-to-node traffic would vanish, so in that case the
//! network inserts `-I FORWARD -i <bridge> -o <bridge> -j ACCEPT` and deletes
//! it again on drop. Before returning, [`NetnsNetwork::create`] checks that
//! nodes reach each other and the host reaches the nodes, and explains
//! which filter to look at if not.
//!
//! # Cleanup
//!
//! Dropping a [`NetnsNetwork`] deletes exactly what it created — veths,
//! namespaces, the bridge, the `FORWARD` rule — also while a panic unwinds.
//! Failures are logged, never raised. Stop the processes running inside the
//! namespaces first: a namespace lives on (unnamed, unreachable) until its
//! last process exits.

mod cmd;
mod error;
mod names;
mod rules;
mod subnet;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::grudge::{self, Grudge, NetFaultError, NetworkFaults};
use crate::network::NodeId;
use crate::process::ProcessSpec;
use crate::proxy::CutMode;
pub use error::NetnsError;
use names::Names;
use subnet::Prefix;

/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/var/run/netns";
/// Host numbers in the /24: `.1` is the bridge, nodes start at `.2`.
const FIRST_NODE_HOST: u8 = 2;
/// At most this many nodes fit in the /24 (`.2` to `.254`).
pub const MAX_NODES: usize = 253;
/// A port nothing listens on in a fresh namespace; the connectivity check
/// expects its connection refused.
const PROBE_PORT: u16 = 9;
/// How long the connectivity check waits for a refusal.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// `br_netfilter`'s switch that sends bridged IPv4 through iptables.
const BRIDGE_NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// One node's place in the network.
#[derive(Debug, Clone)]
struct NodeNet {
    namespace: String,
    ip: Ipv4Addr,
}

/// What a network has created so far, in creation order, so that a
/// half-built network is torn down as carefully as a whole one.
#[derive(Debug, Default)]
struct Created {
    bridge: Option<String>,
    namespaces: Vec<String>,
    host_veths: Vec<String>,
    /// The bridge named in the `FORWARD` rule we inserted.
    forward_rule: Option<String>,
}

/// A cluster's network made of namespaces on a bridge; see the module docs.
#[derive(Debug)]
pub struct NetnsNetwork {
    names: Names,
    subnet: Prefix,
    nodes: BTreeMap<NodeId, NodeNet>,
    cut_mode: CutMode,
    created: Created,
    /// Serialises grudge changes so concurrent callers cannot interleave
    /// their rewrites of the chains.
    applying: Mutex<()>,
}

impl NetnsNetwork {
    /// Explains why this host cannot run the netns backend, if it cannot:
    /// not root, `ip` or `iptables` missing, or the kernel refusing a
    /// namespace, a bridge, a veth pair or our iptables table. It tries all
    /// of them in a scratch namespace, touching nothing on the host.
    pub fn check_available() -> Result<(), NetnsError> {
        let euid = rustix::process::geteuid().as_raw();
        if euid != 0 {
            return Err(NetnsError::NotRoot { euid });
        }
        cmd::ip(&["-V"])?;
        cmd::run("iptables", &["--version"], None)?;
        cmd::run("iptables-restore", &["--version"], None)?;
        let probe = Names::next()?.namespace(0);
        let unavailable = |step| {
            move |source| NetnsError::Unavailable {
                step,
                source: Box::new(source),
            }
        };
        cmd::ip(&["netns", "add", &probe]).map_err(unavailable("create a network namespace"))?;
        let result = probe_namespace(&probe);
        if let Err(error) = cmd::ip(&["netns", "del", &probe]) {
            tracing::warn!(%error, namespace = probe, "cannot delete the probe namespace");
        }
        result
    }

    /// Builds the network for `nodes` (see the module docs): a namespace,
    /// veth and address per node, a bridge and address for the host, and an
    /// empty cut chain in every namespace; then checks that the nodes reach
    /// each other and the host reaches them. Blocks while `ip` and
    /// `iptables` run (tens of milliseconds per node). Whatever was built
    /// is removed again if a step fails.
    pub fn create(nodes: &[NodeId]) -> Result<NetnsNetwork, NetnsError> {
        let unique: BTreeSet<NodeId> = nodes.iter().copied().collect();
        if let Some(&dup) = nodes
            .iter()
            .enumerate()
            .find_map(|(i, n)| nodes[..i].contains(n).then_some(n))
        {
            return Err(NetnsError::DuplicateNode(dup));
        }
        if unique.is_empty() {
            return Err(NetnsError::NoNodes);
        }
        if unique.len() > MAX_NODES {
            return Err(NetnsError::TooManyNodes {
                count: unique.len(),
            });
        }
        let mut network = NetnsNetwork {
            names: Names::next()?,
            subnet: Prefix::slash24(0, 0, 0),
            nodes: BTreeMap::new(),
            cut_mode: CutMode::Stall,
            created: Created::default(),
            applying: Mutex::new(()),
        };
        network.create_bridge()?;
        for (index, &node) in unique.iter().enumerate() {
            network.create_node(index, node)?;
        }
        network.open_host_forwarding()?;
        network.check_connectivity()?;
        tracing::info!(
            subnet = %network.subnet,
            bridge = network.names.bridge(),
            nodes = network.nodes.len(),
            "netns network up"
        );
        Ok(network)
    }

    /// Chooses how later grudges cut pairs: [`CutMode::Stall`] (iptables
    /// `DROP`, the default, as in Jepsen) or [`CutMode::Reset`] (`REJECT`
    /// with TCP resets). Takes effect at the next
    /// [`NetworkFaults::apply_grudge`].
    pub fn set_cut_mode(&mut self, mode: CutMode) {
        self.cut_mode = mode;
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The address of `node`'s `eth0`: where its servers listen and where
    /// clients and peers dial it.
    pub fn node_ip(&self, node: NodeId) -> Option<IpAddr> {
        self.nodes.get(&node).map(|n| IpAddr::V4(n.ip))
    }

    /// The host's address on the bridge, which every node can reach.
    pub fn host_ip(&self) -> IpAddr {
        IpAddr::V4(self.subnet.host(1))
    }

    /// The name of `node`'s namespace, for `ip netns exec` and for logs.
    pub fn namespace(&self, node: NodeId) -> Option<&str> {
        self.nodes.get(&node).map(|n| n.namespace.as_str())
    }

    /// The bridge's name in the host namespace.
    pub fn bridge(&self) -> String {
        self.names.bridge()
    }

    /// The prefix every name this network creates starts with.
    pub fn tag(&self) -> &str {
        &self.names.tag
    }

    /// `spec`, changed to run inside `node`'s namespace (`ip netns exec
    /// NAMESPACE program args...`). `ip netns exec` execs the program in
    /// place, so the pid a [`crate::ManagedProcess`] holds is the server's
    /// own and its signals reach the server.
    pub fn wrap(&self, node: NodeId, spec: ProcessSpec) -> Result<ProcessSpec, NetnsError> {
        let namespace = &self.node(node)?.namespace;
        let mut args: Vec<OsString> = vec![
            "netns".into(),
            "exec".into(),
            namespace.into(),
            spec.program.into_os_string(),
        ];
        args.extend(spec.args);
        Ok(ProcessSpec {
            program: PathBuf::from("ip"),
            args,
            ..spec
        })
    }

    /// Runs `f` on a new thread that has entered `node`'s network
    /// namespace, and returns its result. Sockets `f` creates belong to that
    /// namespace for good, whichever thread uses them later — a way to
    /// listen or dial as the node does without starting a process. Blocks
    /// until `f` returns; a panic in `f` is resumed here.
    pub fn run_in<T, F>(&self, node: NodeId, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let namespace = &self.node(node)?.namespace;
        let enter_error = |source: std::io::Error| NetnsError::Enter {
            namespace: namespace.clone(),
            source,
        };
        let handle = File::open(Path::new(NETNS_DIR).join(namespace)).map_err(enter_error)?;
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                move_into_link_name_space(handle.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|errno| enter_error(errno.into()))?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn node(&self, node: NodeId) -> Result<&NodeNet, NetnsError> {
        self.nodes.get(&node).ok_or(NetnsError::UnknownNode(node))
    }

    /// Creates the bridge and gives it the first address of a free /24,
    /// holding the subnet lock until the address (and so its route) exists.
    fn create_bridge(&mut self) -> Result<(), NetnsError> {
        let bridge = self.names.bridge();
        let _lock = subnet::lock()?;
        let mut used = subnet::route_prefixes(&cmd::ip(&["-4", "route", "show", "table", "all"])?);
        used.extend(subnet::address_prefixes(&cmd::ip(&[
            "-4", "-o", "addr", "show",
        ])?));
        self.subnet = subnet::first_free(&used).ok_or(NetnsError::NoFreeSubnet)?;
        cmd::ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.created.bridge = Some(bridge.clone());
        let address = format!("{}/{}", self.subnet.host(1), self.subnet.len());
        cmd::ip(&["addr", "add", &address, "dev", &bridge])?;
        cmd::ip(&["link", "set", &bridge, "up"])?;
        Ok(())
    }

    /// The namespace of the `index`th node, its veth pair on the bridge,
    /// its address and its (empty) cut chain.
    fn create_node(&mut self, index: usize, node: NodeId) -> Result<(), NetnsError> {
        let namespace = self.names.namespace(index);
        let host_veth = self.names.host_veth(index);
        let bridge = self.names.bridge();
        let host_part = u8::try_from(index)
            .ok()
            .and_then(|i| i.checked_add(FIRST_NODE_HOST))
            .ok_or(NetnsError::TooManyNodes { count: index + 1 })?;
        let ip = self.subnet.host(host_part);
        cmd::ip(&["netns", "add", &namespace])?;
        self.created.namespaces.push(namespace.clone());
        cmd::ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        cmd::ip(&[
            "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
        ])?;
        self.created.host_veths.push(host_veth.clone());
        cmd::ip(&["link", "set", &host_veth, "master", &bridge, "up"])?;
        let address = format!("{ip}/{}", self.subnet.len());
        cmd::ip(&["-n", &namespace, "addr", "add", &address, "dev", "eth0"])?;
        cmd::ip(&["-n", &namespace, "link", "set", "eth0", "up"])?;
        cmd::in_namespace(
            &namespace,
            "iptables-restore",
            &["-w"],
            Some(&rules::initial_table()),
        )?;
        self.nodes.insert(node, NodeNet { namespace, ip });
        self.run_in(node, disable_ipv6)?
    }

    /// Lets bridged frames through the host's `FORWARD` chain when
    /// `br_netfilter` sends them there (see the module docs).
    fn open_host_forwarding(&mut self) -> Result<(), NetnsError> {
        let bridged_through_iptables =
            std::fs::read_to_string(BRIDGE_NF_CALL_IPTABLES).is_ok_and(|value| value.trim() == "1");
        if !bridged_through_iptables {
            return Ok(());
        }
        let bridge = self.names.bridge();
        cmd::run("iptables", &forward_rule("-I", &bridge), None)?;
        self.created.forward_rule = Some(bridge);
        Ok(())
    }

    /// Dials a closed port on the nodes, from the host and from a node,
    /// and expects a refusal: proof that packets cross the bridge both ways.
    fn check_connectivity(&self) -> Result<(), NetnsError> {
        let mut nodes = self.nodes.iter();
        let Some((&first, first_net)) = nodes.next() else {
            return Ok(());
        };
        let to_first = SocketAddr::new(IpAddr::V4(first_net.ip), PROBE_PORT);
        expect_refused(
            "host",
            to_first,
            TcpStream::connect_timeout(&to_first, PROBE_TIMEOUT),
        )?;
        if let Some((_, second_net)) = nodes.next() {
            let to_second = SocketAddr::new(IpAddr::V4(second_net.ip), PROBE_PORT);
            let attempt = self.run_in(first, || {
                TcpStream::connect_timeout(&to_second, PROBE_TIMEOUT)
            })?;
            expect_refused(&first_net.namespace, to_second, attempt)?;
        }
        Ok(())
    }

    /// Rewrites every namespace's cut chain for `grudge`.
    fn rewrite_chains(&self, grudge: &Grudge) -> Result<(), NetnsError> {
        let _applying = self.applying.lock().unwrap_or_else(PoisonError::into_inner);
        for (&node, net) in &self.nodes {
            let cut_from: Vec<Ipv4Addr> = self
                .nodes
                .iter()
                .filter(|&(&peer, _)| peer != node && grudge::is_cut(grudge, node, peer))
                .map(|(_, peer_net)| peer_net.ip)
                .collect();
            cmd::in_namespace(
                &net.namespace,
                "iptables-restore",
                &["-w", "--noflush"],
                Some(&rules::cut_chain(&cut_from, self.cut_mode)),
            )?;
        }
        Ok(())
    }
}

/// The host `FORWARD` rule accepting traffic within `bridge`, with
/// `action` `-I` (insert) or `-D` (delete).
fn forward_rule<'a>(action: &'a str, bridge: &'a str) -> [&'a str; 9] {
    [
        "-w", action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
    ]
}

/// Accepts a connection refusal (or, oddly, a connection) as proof of
/// reachability.
fn expect_refused(
    from: &str,
    to: SocketAddr,
    attempt: std::io::Result<TcpStream>,
) -> Result<(), NetnsError> {
    match attempt {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(error) => Err(NetnsError::BridgeBlocked {
            from: from.to_string(),
            to,
            detail: error.to_string(),
        }),
    }
}

/// Turns IPv6 off in the calling thread's namespace: grudges cut IPv4
/// only, and a link-local IPv6 path between nodes would leak around them.
/// A kernel without IPv6 has nothing to turn off.
fn disable_ipv6() -> Result<(), NetnsError> {
    for scope in ["all", "default", "eth0"] {
        let path = format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6");
        match std::fs::write(&path, "1") {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(NetnsError::Sysctl { path, source });
            }
        }
    }
    Ok(())
}

/// The steps of [`NetnsNetwork::check_available`] inside the scratch
/// namespace `probe`.
fn probe_namespace(probe: &str) -> Result<(), NetnsError> {
    let unavailable = |step| {
        move |source| NetnsError::Unavailable {
            step,
            source: Box::new(source),
        }
    };
    cmd::ip(&["-n", probe, "link", "add", "probebr", "type", "bridge"])
        .map_err(unavailable("create a bridge"))?;
    cmd::ip(&[
        "-n", probe, "link", "add", "probev0", "type", "veth", "peer", "name", "probev1",
    ])
    .map_err(unavailable("create a veth pair"))?;
    cmd::ip(&["-n", probe, "link", "set", "probev0", "master", "probebr"])
        .map_err(unavailable("attach a veth to a bridge"))?;
    cmd::in_namespace(
        probe,
        "iptables-restore",
        &["-w"],
        Some(&rules::initial_table()),
    )
    .map_err(unavailable("load iptables rules in a namespace"))?;
    Ok(())
}

impl NetworkFaults for NetnsNetwork {
    fn backend(&self) -> &'static str {
        "netns"
    }

    fn apply_grudge(&self, grudge: &Grudge) -> Result<(), NetFaultError> {
        if let Some(&unknown) = grudge
            .iter()
            .flat_map(|(a, s)| std::iter::once(a).chain(s))
            .find(|n| !self.nodes.contains_key(n))
        {
            return Err(NetFaultError::UnknownNode(unknown));
        }
        Ok(self.rewrite_chains(grudge)?)
    }

    fn heal(&self) -> Result<(), NetFaultError> {
        Ok(self.rewrite_chains(&Grudge::new())?)
    }
}

impl Drop for NetnsNetwork {
    fn drop(&mut self) {
        let log_failure = |what: &str, result: Result<String, NetnsError>| {
            if let Err(error) = result {
                tracing::warn!(%error, "netns cleanup: cannot delete {what}");
            }
        };
        if let Some(bridge) = self.created.forward_rule.take() {
            log_failure(
                "the FORWARD rule",
                cmd::run("iptables", &forward_rule("-D", &bridge), None),
            );
        }
        // Deleting the host end of a veth deletes the pair, even while a
        // process still holds the namespace open.
        for veth in self.created.host_veths.drain(..) {
            if Path::new("/sys/class/net").join(&veth).exists() {
                log_failure("a veth", cmd::ip(&["link", "del", &veth]));
            }
        }
        for namespace in self.created.namespaces.drain(..) {
            log_failure("a namespace", cmd::ip(&["netns", "del", &namespace]));
        }
        if let Some(bridge) = self.created.bridge.take() {
            log_failure("the bridge", cmd::ip(&["link", "del", &bridge]));
        }
    }
}

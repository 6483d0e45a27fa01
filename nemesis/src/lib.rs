//! `nemesis`: the faults Faultline injects into a cluster under test.
//!
//! A Jepsen-style test is only as good as the trouble it causes. Two kinds
//! live here, all but the `netns` backend usable without privileges:
//!
//! - **Network faults** ([`proxy`], [`network`]): every peer link runs
//!   through a userspace TCP relay, so a test can cut links (partitions,
//!   isolating a node, one-way cuts), stall them, delay them, or make their
//!   connections die at random. A [`Network`] holds the `N·(N−1)` links of
//!   an N-node cluster and speaks in partitions.
//! - **Kernel network faults** (`netns`, Linux, as root): each node runs in
//!   its own network namespace on a bridge and partitions are iptables rules,
//!   so servers keep their real addresses and cut packets really vanish. Both
//!   network backends implement [`NetworkFaults`], which takes Jepsen-style
//!   grudges ([`grudge`]).
//! - **Process faults** ([`process`]): start a server, wait until it says it
//!   is ready, then SIGKILL, SIGSTOP/SIGCONT, SIGTERM or restart it on the
//!   same data directory — always by the pid we started, never by name.
//!
//! The harness and the service tests drive both; fault *schedules* (what to
//! do when) are built on top.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use nemesis::Network;
//!
//! // Nodes 1..=3 listen for peers here; each dials the others through proxies.
//! let peers: BTreeMap<u64, std::net::SocketAddr> =
//!     (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7100 + id).parse().unwrap())).collect();
//! let network = Network::start(&peers, 42).await?;
//! let node1_reaches_node2_at = network.dial_addr(1, 2).unwrap();
//! # let _ = node1_reaches_node2_at;
//! network.partition(&[vec![1], vec![2, 3]]); // node 1 alone in a minority
//! network.heal_all();
//! # Ok(())
//! # }
//! ```

pub mod grudge;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod network;
pub mod ports;
pub mod process;
pub mod proxy;

pub use grudge::{Grudge, NetFaultError, NetworkFaults};
#[cfg(target_os = "linux")]
pub use netns::{NetnsError, NetnsNetwork};
pub use network::{Network, NodeId};
pub use process::{ManagedProcess, ProcessError, ProcessSpec};
pub use proxy::{CutMode, LinkFaults, LinkProxy, LinkStats, ProxyError};

//! Choosing a /24 for a run's bridge that nothing on the host uses.
//!
//! The candidates are `10.213.0.0/24` … `10.213.255.0/24`. A candidate is
//! free if it overlaps no route (any table) and no IPv4 address of the host.
//! Two runs choosing at once would both see the same subnet free, so the
//! choice and the bridge's address assignment happen under an exclusive
//! `flock` on [`LOCK_PATH`]; once the bridge has its address its route is
//! visible to the next run.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use super::NetnsError;

/// The lock serialising subnet choices across processes and threads.
pub(super) const LOCK_PATH: &str = "/run/faultline-netns.lock";

/// The first two octets of every candidate /24.
const CANDIDATE_PREFIX: [u8; 2] = [10, 213];

/// An IPv4 prefix (`network/len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Prefix {
    network: Ipv4Addr,
    len: u8,
}

impl Prefix {
    /// A /24 whose first three octets are `a.b.c`.
    pub(super) fn slash24(a: u8, b: u8, c: u8) -> Prefix {
        Prefix {
            network: Ipv4Addr::new(a, b, c, 0),
            len: 24,
        }
    }

    /// The address with host part `host` inside this /24.
    pub(super) fn host(self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network.octets();
        Ipv4Addr::new(a, b, c, host)
    }

    /// The prefix length.
    pub(super) fn len(self) -> u8 {
        self.len
    }

    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }

    /// Whether the two prefixes share an address.
    pub(super) fn overlaps(self, other: Prefix) -> bool {
        let mask = Prefix::mask(self.len.min(other.len));
        u32::from(self.network) & mask == u32::from(other.network) & mask
    }

    /// Parses `a.b.c.d` (a /32) or `a.b.c.d/len`.
    fn parse(text: &str) -> Option<Prefix> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, len.parse().ok().filter(|&l: &u8| l <= 32)?),
            None => (text, 32),
        };
        Some(Prefix {
            network: addr.parse().ok()?,
            len,
        })
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// Route types `ip route` may print before the destination.
const ROUTE_TYPES: [&str; 10] = [
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "anycast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
];

/// The destinations of `ip -4 route show table all` output, skipping the
/// default route (it overlaps everything and means "elsewhere").
pub(super) fn route_prefixes(routes: &str) -> Vec<Prefix> {
    routes
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| !ROUTE_TYPES.contains(word))
        })
        .filter(|&dest| dest != "default")
        .filter_map(Prefix::parse)
        .collect()
}

/// The prefixes of `ip -4 -o addr show` output (`... inet a.b.c.d/len ...`).
pub(super) fn address_prefixes(addrs: &str) -> Vec<Prefix> {
    addrs
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|&w| w == "inet")?;
            Prefix::parse(words.next()?)
        })
        .collect()
}

/// The first candidate /24 that overlaps none of `used`.
pub(super) fn first_free(used: &[Prefix]) -> Option<Prefix> {
    (0..=u8::MAX)
        .map(|c| Prefix::slash24(CANDIDATE_PREFIX[0], CANDIDATE_PREFIX[1], c))
        .find(|candidate| !used.iter().any(|u| u.overlaps(*candidate)))
}

/// Holds the subnet lock until dropped.
pub(super) struct SubnetLock {
    _file: File,
}

/// Takes the subnet lock, waiting for other runs to finish choosing.
pub(super) fn lock() -> Result<SubnetLock, NetnsError> {
    let path = Path::new(LOCK_PATH);
    let lock_error = |source: std::io::Error| NetnsError::Lock {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(lock_error)?;
    flock(&file, FlockOperation::LockExclusive).map_err(|errno| lock_error(errno.into()))?;
    Ok(SubnetLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_every_type_are_read_and_default_is_ignored() {
        let routes = "default via 192.0.2.1 dev eth0\n\
                      10.213.0.0/24 dev flx proto kernel scope link src 10.213.0.1 linkdown\n\
                      local 10.213.1.1 dev fly table local proto kernel scope host src 10.213.1.1\n\
                      broadcast 127.255.255.255 dev lo table local proto kernel scope link\n\
                      unreachable 10.213.4.0/23 metric 1024\n";
        let prefixes: Vec<String> = route_prefixes(routes)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            prefixes,
            [
                "10.213.0.0/24",
                "10.213.1.1/32",
                "127.255.255.255/32",
                "10.213.4.0/23"
            ]
        );
    }

    #[test]
    fn addresses_are_read_with_their_prefix_length() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                     4: eth0    inet 10.213.2.7/16 brd 10.213.255.255 scope global eth0\n";
        let prefixes: Vec<String> = address_prefixes(addrs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(prefixes, ["127.0.0.1/8", "10.213.2.7/16"]);
    }

    #[test]
    fn first_free_skips_every_overlapping_subnet() {
        let used =
            route_prefixes("10.213.0.0/24 dev a\nlocal 10.213.1.9 dev b\n10.213.2.0/23 dev c\n");
        assert_eq!(first_free(&used), Some(Prefix::slash24(10, 213, 4)));
        assert_eq!(first_free(&[]), Some(Prefix::slash24(10, 213, 0)));
        // A wider route covering all candidates leaves nothing.
        assert_eq!(first_free(&route_prefixes("10.0.0.0/8 dev vpn\n")), None);
    }

    #[test]
    fn garbage_lines_are_ignored() {
        assert!(route_prefixes("nonsense here\n10.213.0.0/99 dev x\n\n").is_empty());
    }
}

//! The iptables rules of one node's namespace, as `iptables-restore` input.
//!
//! Each namespace has a chain of ours, [`CHAIN`], jumped to first thing in
//! `INPUT`. A partition rewrites that chain alone with
//! `iptables-restore --noflush`, which replaces it in one transaction: the
//! node never sees half of the old grudge and half of the new one.
//!
//! Dropping *incoming* packets on both sides of a cut pair cuts both
//! directions; the host (where clients run) is never cut.

use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::proxy::CutMode;

/// Our chain in every node's `filter` table.
pub(super) const CHAIN: &str = "FAULTLINE";

/// The namespace's whole `filter` table when it is created: our chain,
/// empty, jumped to from `INPUT`.
pub(super) fn initial_table() -> String {
    format!("*filter\n:{CHAIN} - [0:0]\n-A INPUT -j {CHAIN}\nCOMMIT\n")
}

/// Our chain's contents cutting the node off from `peers`, for
/// `iptables-restore --noflush` (declaring the chain flushes it).
///
/// - [`CutMode::Stall`]: `DROP` everything from them; packets vanish and
///   TCP retransmits into the void (Jepsen's default).
/// - [`CutMode::Reset`]: answer their TCP segments with a reset, so
///   connections fail at once. Their resets are let through: the peer drops
///   our packets in the same way, and would otherwise swallow the reset it
///   is meant to receive. Non-TCP traffic is dropped.
pub(super) fn cut_chain(peers: &[Ipv4Addr], mode: CutMode) -> String {
    let mut text = format!("*filter\n:{CHAIN} - [0:0]\n");
    for peer in peers {
        // Writing to a String cannot fail.
        let _ = match mode {
            CutMode::Stall => writeln!(text, "-A {CHAIN} -s {peer}/32 -j DROP"),
            CutMode::Reset => writeln!(
                text,
                "-A {CHAIN} -s {peer}/32 -p tcp --tcp-flags RST RST -j ACCEPT\n\
                 -A {CHAIN} -s {peer}/32 -p tcp -j REJECT --reject-with tcp-reset\n\
                 -A {CHAIN} -s {peer}/32 -j DROP"
            ),
        };
    }
    text.push_str("COMMIT\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEERS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 213, 0, 3), Ipv4Addr::new(10, 213, 0, 4)];

    #[test]
    fn stall_drops_every_packet_from_each_peer() {
        assert_eq!(
            cut_chain(&PEERS, CutMode::Stall),
            "*filter\n:FAULTLINE - [0:0]\n\
             -A FAULTLINE -s 10.213.0.3/32 -j DROP\n\
             -A FAULTLINE -s 10.213.0.4/32 -j DROP\n\
             COMMIT\n"
        );
    }

    #[test]
    fn reset_rejects_tcp_but_lets_resets_through() {
        let text = cut_chain(&PEERS[..1], CutMode::Reset);
        let rules: Vec<&str> = text.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(rules.len(), 3);
        assert!(
            rules[0].ends_with("--tcp-flags RST RST -j ACCEPT"),
            "{text}"
        );
        assert!(
            rules[1].ends_with("-j REJECT --reject-with tcp-reset"),
            "{text}"
        );
        assert!(rules[2].ends_with("-j DROP"), "{text}");
    }

    #[test]
    fn no_peers_means_an_empty_chain() {
        assert_eq!(
            cut_chain(&[], CutMode::Stall),
            "*filter\n:FAULTLINE - [0:0]\nCOMMIT\n"
        );
    }
}

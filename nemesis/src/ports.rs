//! Loopback ports for servers under test that stay free across restarts.
//!
//! Asking the kernel for port 0 and passing the number on is racy twice
//! over: the port comes from the ephemeral range, so while a killed server
//! is down any outgoing connection may take its port, and a restart then
//! fails with "address in use". Ports handed out here come from below the
//! ephemeral range (Linux's default starts at 32768), are never handed out
//! twice by one process, start at an offset derived from the pid so that
//! concurrent test processes spread out, and are checked free before use.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The ports handed out: above the well-known and registered services
/// most machines run, below the ephemeral range.
const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback address whose port nobody listens on now, outside the
/// ephemeral range, not returned before by this process.
pub fn reserve_loopback_addr() -> std::io::Result<SocketAddr> {
    // First use: start at a pid-derived offset (a lost race here only
    // means two callers share a start, which the counter then separates).
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let start = std::process::id().wrapping_mul(2_654_435_761) % COUNT;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % COUNT;
        let port = u16::try_from(FIRST + n).expect("FIRST + COUNT fits in a port");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "every loopback port in {FIRST}..{} is in use",
            FIRST + COUNT
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let addrs: Vec<SocketAddr> = (0..50).map(|_| reserve_loopback_addr().unwrap()).collect();
        let mut ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 50);
        assert!(ports.iter().all(|&p| (20_000..32_000).contains(&p)));
        assert!(addrs.iter().all(|a| TcpListener::bind(a).is_ok()));
    }
}

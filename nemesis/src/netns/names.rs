//! Names of what one network creates, unique per run and short enough for
//! Linux's 15-byte interface names.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{MAX_NODES, NETNS_DIR, NetnsError};

/// Linux's limit on interface names, in bytes.
const MAX_IFNAME: usize = 15;

/// Networks created by this process so far; part of every run's tag.
static NETWORKS_CREATED: AtomicU64 = AtomicU64::new(0);

/// The names of one run: everything starts with its tag.
#[derive(Debug)]
pub(super) struct Names {
    pub(super) tag: String,
}

impl Names {
    /// A tag no live process can share: `fl`, pid, `_`, counter (`_` is
    /// not a base-36 digit, so pid and counter cannot run into each other).
    pub(super) fn next() -> Result<Names, NetnsError> {
        let pid = u64::from(std::process::id());
        loop {
            let counter = NETWORKS_CREATED.fetch_add(1, Ordering::Relaxed);
            let names = Names {
                tag: format!("fl{}_{}", base36(pid), base36(counter)),
            };
            if names.host_veth(MAX_NODES - 1).len() > MAX_IFNAME {
                return Err(NetnsError::NamesExhausted);
            }
            // A process that died without cleaning up may have had our pid.
            if !names.any_exists() {
                return Ok(names);
            }
        }
    }

    pub(super) fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    pub(super) fn namespace(&self, index: usize) -> String {
        format!("{}n{index}", self.tag)
    }

    pub(super) fn host_veth(&self, index: usize) -> String {
        format!("{}v{index}", self.tag)
    }

    fn any_exists(&self) -> bool {
        let link_exists = |name: String| Path::new("/sys/class/net").join(name).exists();
        link_exists(self.bridge())
            || (0..MAX_NODES).any(|i| {
                link_exists(self.host_veth(i))
                    || Path::new(NETNS_DIR).join(self.namespace(i)).exists()
            })
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_counts_like_a_number() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(4_194_304), "2hwcg");
    }

    #[test]
    fn names_fit_linux_interface_names_for_the_largest_pid_and_node() {
        let names = Names {
            tag: format!("fl{}_{}", base36(4_194_304), base36(46_655)),
        };
        assert!(names.host_veth(MAX_NODES - 1).len() <= MAX_IFNAME);
        assert!(names.bridge().len() <= MAX_IFNAME);
    }
}

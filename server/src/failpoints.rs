//! Deliberate bugs, for proving that the harness catches them.
//!
//! A checker that never says "invalid" proves nothing. With the
//! `failpoints` cargo feature, kvd accepts `--failpoint NAME` and breaks
//! itself on purpose; `faultline test` must then find a counterexample. Without
//! the feature (every release build) the flag does not exist and every
//! method here answers `false`, so the bugs cannot be switched on by mistake.

/// One deliberate bug.
#[cfg(feature = "failpoints")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failpoint {
    /// Every node, leader or not, answers `get` from its own state machine
    /// at once, skipping ReadIndex: a node cut off in a minority serves
    /// stale values.
    StaleReads,
}

/// Which deliberate bugs are on (none, unless built with `failpoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failpoints {
    #[cfg(feature = "failpoints")]
    stale_reads: bool,
}

impl Failpoints {
    /// The set named on the command line.
    #[cfg(feature = "failpoints")]
    pub fn from_names(names: &[Failpoint]) -> Self {
        Failpoints {
            stale_reads: names.contains(&Failpoint::StaleReads),
        }
    }

    /// Gets skip ReadIndex and read local state on any node.
    pub fn stale_reads(&self) -> bool {
        #[cfg(feature = "failpoints")]
        {
            self.stale_reads
        }
        #[cfg(not(feature = "failpoints"))]
        {
            false
        }
    }
}

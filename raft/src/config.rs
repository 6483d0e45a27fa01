//! Node configuration and its validation.

use thiserror::Error;

use crate::types::NodeId;

/// How a node behaves. Build it with [`Config::new`], which picks safe
/// defaults, then adjust fields.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Config {
    /// This node's id; must appear in `voters`.
    pub id: NodeId,
    /// Every voting member of the group, this node included.
    pub voters: Vec<NodeId>,
    /// A follower that hears nothing from a leader for a random number of
    /// ticks in `[election_tick, 2 * election_tick)` starts an election. A
    /// leader with check-quorum steps down after `election_tick` ticks
    /// without hearing from a majority.
    pub election_tick: u32,
    /// A leader sends heartbeats every `heartbeat_tick` ticks. Must be
    /// smaller than `election_tick`.
    pub heartbeat_tick: u32,
    /// Ask peers before starting a real election (Raft thesis §9.6), so a node
    /// that was cut off cannot force a healthy leader out by bumping its term.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an
    /// election timeout, and followers that hear from a live leader ignore
    /// vote requests (leader lease).
    pub check_quorum: bool,
    /// Soft cap on the payload bytes of entries in one AppendEntries; a
    /// message always carries at least one entry when any is due.
    pub max_size_per_msg: u64,
    /// How many AppendEntries a leader keeps in flight to one follower that
    /// is keeping up (pipelining). At least 1.
    pub max_inflight_msgs: usize,
    /// Seed of the node's own RNG (election timeouts). Give each node and
    /// each restart its own seed.
    pub seed: u64,
    /// Known protocol bugs to inject, for proving that checkers catch them.
    #[cfg(feature = "bug-injection")]
    pub bugs: Bugs,
}

/// Deliberate protocol bugs, honoured only when the crate is built with the
/// `bug-injection` feature. Each one breaks a safety property that the
/// randomized test and the model checker must then detect.
#[cfg(feature = "bug-injection")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Bugs {
    /// Grant votes without checking that the candidate's log is at least as
    /// up to date as ours (breaks leader completeness, Raft §5.4.1).
    pub skip_up_to_date_check: bool,
    /// Let a leader commit an entry of an earlier term by counting replicas
    /// (the Figure 8 bug, Raft §5.4.2).
    pub commit_previous_term: bool,
    /// Followers keep their conflicting entries instead of truncating them
    /// (breaks log matching).
    pub no_truncate_on_conflict: bool,
}

/// A reason why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The voter list is empty.
    #[error("the voter list is empty")]
    NoVoters,
    /// The node is not one of the voters.
    #[error("node {id} is not in the voter list {voters:?}")]
    NotAVoter {
        /// This node's id.
        id: NodeId,
        /// The configured voters.
        voters: Vec<NodeId>,
    },
    /// A voter appears twice.
    #[error("voter {0} appears more than once")]
    DuplicateVoter(NodeId),
    /// `heartbeat_tick` is zero.
    #[error("heartbeat_tick must be at least 1")]
    ZeroHeartbeat,
    /// Elections would time out before heartbeats arrive.
    #[error("election_tick ({election}) must be greater than heartbeat_tick ({heartbeat})")]
    ElectionNotAboveHeartbeat {
        /// Configured election_tick.
        election: u32,
        /// Configured heartbeat_tick.
        heartbeat: u32,
    },
    /// Pipelining needs room for at least one message.
    #[error("max_inflight_msgs must be at least 1")]
    ZeroInflight,
}

impl Config {
    /// A configuration with safe defaults: election after 10–20 ticks,
    /// heartbeat every tick, pre-vote and check-quorum on, 1 MiB per
    /// message, 256 pipelined messages per follower, seed derived from `id`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            voters,
            election_tick: 10,
            heartbeat_tick: 1,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            seed: id,
            #[cfg(feature = "bug-injection")]
            bugs: Bugs::default(),
        }
    }

    /// Checks that the configuration can run a node.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter {
                id: self.id,
                voters: self.voters.clone(),
            });
        }
        let mut sorted = self.voters.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election: self.election_tick,
                heartbeat: self.heartbeat_tick,
            });
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        Ok(())
    }

    /// Number of votes (or acknowledgements) that make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::new(1, vec![1, 2, 3]).validate(), Ok(()));
    }

    #[test]
    fn rejects_node_outside_voters_and_duplicates() {
        assert!(matches!(
            Config::new(4, vec![1, 2, 3]).validate(),
            Err(ConfigError::NotAVoter { id: 4, .. })
        ));
        assert_eq!(
            Config::new(1, vec![1, 2, 2]).validate(),
            Err(ConfigError::DuplicateVoter(2))
        );
        assert_eq!(
            Config::new(1, vec![]).validate(),
            Err(ConfigError::NoVoters)
        );
    }

    #[test]
    fn rejects_election_not_above_heartbeat() {
        let mut c = Config::new(1, vec![1]);
        c.heartbeat_tick = 10;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ElectionNotAboveHeartbeat { .. })
        ));
        c.heartbeat_tick = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroHeartbeat));
    }
}

//! A sans-IO implementation of the Raft consensus algorithm.
//!
//! Raft keeps a log of commands identical on a group of servers so that
//! each can run the same deterministic state machine over it. This crate is
//! the algorithm alone: a [`RawNode`] is a plain value that consumes inputs
//! (clock ticks, messages from peers, client requests) and produces outputs
//! (state to persist, messages to send, entries to apply) in a [`Ready`].
//! It has no threads, clocks, sockets or files, so the same code runs under
//! the `kvd` server, in the deterministic simulator in [`sim`] and inside a
//! model checker. Equal nodes given equal inputs produce equal outputs; a
//! node is `Clone + Eq + Hash`.
//!
//! # The algorithm, as implemented
//!
//! **Terms and roles.** Time is divided into terms, each with at most one
//! leader. A node is a [`Role::Follower`], a [`Role::PreCandidate`], a
//! [`Role::Candidate`] or the [`Role::Leader`]. Any message from a newer term
//! makes a node adopt that term and follow (with the exceptions below).
//!
//! **Elections.** A follower that hears nothing from a leader for a random
//! `[election_tick, 2 * election_tick)` ticks (drawn from the seeded RNG in
//! the node) campaigns. With *pre-vote* (on by default) it first asks
//! whether peers would vote for it, without changing any term; only with a
//! majority of yeses does it bump its term and ask for real votes. A voter
//! grants at most one vote per term, and only to a candidate whose log is
//! at least as up to date as its own (higher last term, or equal last term
//! and at least as long) — this is what guarantees that every leader holds
//! all committed entries. With *check-quorum* (on by default) a leader that
//! has not heard from a majority within an election timeout steps down, and
//! a follower that has heard from its leader within that time ignores vote
//! requests. Together they keep a node that was cut off and comes back from
//! deposing a healthy leader.
//!
//! **Replication.** The leader appends proposals to its log and sends them
//! in `AppendEntries` carrying the index and term of the preceding entry; a
//! follower accepts only if it holds that entry (log matching), replacing
//! any conflicting suffix. On rejection the follower returns a hint (the
//! last index at or before the probe whose term is no newer than the probed
//! term) so the leader skips whole terms instead of one entry per round
//! trip. Per follower, the leader *probes* (one message in flight) until it
//! knows where the logs match, then *pipelines* up to `max_inflight_msgs`
//! messages of at most `max_size_per_msg` payload bytes each. Proposals made
//! between two `Ready`s leave in one message per follower (batching). If a
//! follower needs entries that were compacted away, the leader sends its
//! latest snapshot instead (`InstallSnapshot`).
//!
//! **Commit.** An entry is committed once a majority stores it *and* it is
//! from the leader's current term; earlier entries commit implicitly with it
//! (Raft §5.4.2, Figure 8). Each new leader therefore appends an empty no-op
//! entry at once. Empty entries are reserved for this: applications skip
//! them and [`RawNode::propose`] refuses empty data.
//!
//! **Reads.** [`RawNode::read_index`] serves linearizable reads without
//! writing the log: the leader records its commit index, waits until it has
//! committed an entry of its own term, and confirms with a heartbeat round
//! that a majority still follows it. The read may then be served once the
//! state machine has applied that index.
//!
//! **Leadership transfer.** [`RawNode::transfer_leader`] brings the target's
//! log up to date and then sends it `TimeoutNow`; the target campaigns at
//! once, and voters waive their check-quorum lease for that election.
//!
//! **Compaction.** When the application has snapshotted its state machine
//! at an applied index, it calls [`RawNode::compact`]; the node drops the log
//! up to there and keeps the snapshot to send to followers that fall behind.
//!
//! # Driving a node
//!
//! A driver owns a node, a durable store and a network connection to the
//! peers, and repeats:
//!
//! 1. feed inputs: [`RawNode::tick`] on a timer (every `tick` is one unit
//!    of all timeouts in [`Config`]), [`RawNode::step`] for each message
//!    received, [`RawNode::propose`] / [`RawNode::read_index`] for clients;
//! 2. while [`RawNode::has_ready`], take a [`Ready`] and, *in this order*:
//!    persist `snapshot`, `entries` (truncating the stored log from the
//!    first entry's index) and `hard_state`, durably; then send `messages`;
//!    then restore the state machine from `snapshot` if any and apply
//!    `committed_entries`; then answer `read_states`; then call
//!    [`RawNode::advance`].
//!
//! Persisting before sending is Raft's durability rule: a vote or an
//! acknowledgement must never be sent for state a crash could lose. This
//! crate takes the simple safe route for leaders too: a leader's own new
//! entries are persisted before the messages that carry them are sent, which
//! lets it count itself towards the majority immediately. After a crash,
//! [`RawNode::restore`] rebuilds the node from the persisted hard state,
//! snapshot and entries.
//!
//! ```
//! use std::collections::{BTreeMap, VecDeque};
//! use bytes::Bytes;
//! use raft::{Config, Entry, HardState, Message, RawNode, Role};
//!
//! /// What one server keeps: the node, its "disk" and its state machine.
//! struct Server {
//!     node: RawNode,
//!     hard_state: HardState,
//!     log: Vec<Entry>,
//!     applied: Vec<Bytes>,
//! }
//!
//! impl Server {
//!     /// The driver loop: persist, send, apply, advance.
//!     fn drive(&mut self, network: &mut VecDeque<Message>) {
//!         while self.node.has_ready() {
//!             let rd = self.node.ready();
//!             if rd.snapshot.is_some() {
//!                 self.log.clear(); // and restore the state machine from it
//!             }
//!             if let Some(first) = rd.entries.first() {
//!                 self.log.retain(|e| e.index < first.index);
//!             }
//!             self.log.extend(rd.entries);
//!             if let Some(hs) = rd.hard_state {
//!                 self.hard_state = hs;
//!             }
//!             // (a real server fsyncs here)
//!             network.extend(rd.messages);
//!             for entry in rd.committed_entries {
//!                 if !entry.is_noop() {
//!                     self.applied.push(entry.data);
//!                 }
//!             }
//!             self.node.advance();
//!         }
//!     }
//! }
//!
//! let voters = vec![1, 2, 3];
//! let mut servers: BTreeMap<u64, Server> = voters
//!     .iter()
//!     .map(|&id| {
//!         let node = RawNode::new(Config::new(id, voters.clone())).unwrap();
//!         (id, Server { node, hard_state: HardState::default(), log: vec![], applied: vec![] })
//!     })
//!     .collect();
//! let mut network = VecDeque::new();
//! let mut deliver_all = |servers: &mut BTreeMap<u64, Server>, network: &mut VecDeque<Message>| {
//!     while let Some(msg) = network.pop_front() {
//!         let server = servers.get_mut(&msg.to).unwrap();
//!         server.node.step(msg).unwrap();
//!         server.drive(network);
//!     }
//! };
//!
//! // Node 1's election timer fires (or call `campaign` directly).
//! let s1 = servers.get_mut(&1).unwrap();
//! while s1.node.role() != Role::PreCandidate {
//!     s1.node.tick();
//! }
//! s1.drive(&mut network);
//! deliver_all(&mut servers, &mut network);
//! assert_eq!(servers[&1].node.role(), Role::Leader);
//!
//! // A proposal commits once a majority has persisted it.
//! let s1 = servers.get_mut(&1).unwrap();
//! let index = s1.node.propose(Bytes::from_static(b"set x=1")).unwrap();
//! s1.drive(&mut network);
//! deliver_all(&mut servers, &mut network);
//! assert_eq!(servers[&1].applied, vec![Bytes::from_static(b"set x=1")]);
//!
//! // Followers learn the commit index from the next heartbeat.
//! let s1 = servers.get_mut(&1).unwrap();
//! s1.node.tick();
//! s1.drive(&mut network);
//! deliver_all(&mut servers, &mut network);
//! assert!(servers.values().all(|s| s.applied.len() == 1 && s.node.commit_index() == index));
//! ```
//!
//! # Testing hooks
//!
//! [`sim`] is a deterministic cluster simulator (seeded loss, delay,
//! reordering, duplication, partitions, crash and restart) with a checker of
//! Raft's safety invariants. The `bug-injection` feature adds
//! [`Config::bugs`](Config) to switch on known protocol bugs, so checkers can
//! prove they catch them; it must never be enabled in a server.

#![warn(missing_docs)]

mod config;
mod error;
mod log;
mod message;
mod node;
mod progress;
mod read_index;
mod ready;
mod rng;
pub mod sim;
mod types;

#[cfg(feature = "bug-injection")]
pub use config::Bugs;
pub use config::{Config, ConfigError};
pub use error::{ProposeError, ReadIndexError, StepError, TransferError};
pub use log::{CompactError, RestoreError};
pub use message::{Message, MessageBody, RejectHint};
pub use node::RawNode;
pub use ready::Ready;
pub use types::{
    Entry, HardState, Index, NodeId, ReadState, Role, Snapshot, SnapshotMeta, SoftState, Term,
};

//! The replicated state machine: a string map plus the exactly-once session
//! table.
//!
//! Writes reach it as Raft log entries ([`Command`], encoded with
//! MessagePack); every replica applies the same entries in the same order and
//! so holds the same map. A write carries `(client_id, seq)`; the table
//! remembers the highest `seq` applied per client, and a write whose `seq` is
//! not above it is a retry of something already applied: it is answered `ok`
//! again and changes nothing. The table is part of the snapshot, so this holds
//! across leader changes, restarts and log compaction.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wire::{ClientId, Op, Reply};

use crate::state_machine::{Admission, SnapshotDecodeError, StateMachine, not_served};

/// A write as it travels through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Set `key` to `value`.
    Put {
        key: String,
        value: String,
        client_id: ClientId,
        seq: u64,
    },
    /// Append `value` to `key` (a missing key counts as empty).
    Append {
        key: String,
        value: String,
        client_id: ClientId,
        seq: u64,
    },
}

impl Command {
    /// The log entry payload for this command. Never empty, so it is never
    /// mistaken for a leader's no-op.
    pub(crate) fn encode(&self) -> Bytes {
        // Encoding plain strings and integers into a Vec cannot fail.
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    fn decode(data: &[u8]) -> Result<Command, rmp_serde::decode::Error> {
        rmp_serde::from_slice(data)
    }

    /// The write a client operation asks for, with its bytes of key and
    /// value (for the frame limit); any other operation is handed back.
    pub(crate) fn from_op(op: Op) -> Result<(Command, usize), Op> {
        let command = match op {
            Op::Put {
                key,
                value,
                client_id,
                seq,
            } => Command::Put {
                key,
                value,
                client_id,
                seq,
            },
            Op::Append {
                key,
                value,
                client_id,
                seq,
            } => Command::Append {
                key,
                value,
                client_id,
                seq,
            },
            other => return Err(other),
        };
        let bytes = command.key().len() + command.value().len();
        Ok((command, bytes))
    }

    /// The write's session, `(client_id, seq)`.
    pub(crate) fn session(&self) -> (ClientId, u64) {
        match *self {
            Command::Put { client_id, seq, .. } | Command::Append { client_id, seq, .. } => {
                (client_id, seq)
            }
        }
    }

    /// The key written.
    pub(crate) fn key(&self) -> &str {
        match self {
            Command::Put { key, .. } | Command::Append { key, .. } => key,
        }
    }

    fn value(&self) -> &str {
        match self {
            Command::Put { value, .. } | Command::Append { value, .. } => value,
        }
    }

    /// Performs the write on `data`.
    pub(crate) fn write_to(self, data: &mut BTreeMap<String, String>) {
        match self {
            Command::Put { key, value, .. } => {
                data.insert(key, value);
            }
            Command::Append { key, value, .. } => {
                data.entry(key).or_default().push_str(&value);
            }
        }
    }
}

/// The key/value map and the session table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KvStore {
    data: BTreeMap<String, String>,
    /// Highest write `seq` applied per client.
    sessions: BTreeMap<ClientId, u64>,
}

impl KvStore {
    /// Applies one committed log entry and returns the answer for the client
    /// that proposed it. An entry that does not decode is a deterministic
    /// error (every replica sees the same bytes): it changes nothing and is
    /// answered `bad_request`.
    pub(crate) fn apply(&mut self, data: &[u8]) -> Reply {
        let command = match Command::decode(data) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(len = data.len(), error = %e, "skipping undecodable log entry");
                return Reply::BadRequest {
                    reason: format!("the committed command could not be decoded: {e}"),
                };
            }
        };
        let (client_id, seq) = command.session();
        if self.is_applied(client_id, seq) {
            return Reply::Ok;
        }
        self.sessions.insert(client_id, seq);
        command.write_to(&mut self.data);
        Reply::Ok
    }

    /// Whether write `seq` of `client_id` (or a later one) was applied.
    pub(crate) fn is_applied(&self, client_id: ClientId, seq: u64) -> bool {
        self.sessions
            .get(&client_id)
            .is_some_and(|&last| seq <= last)
    }

    /// The current value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Serializes the whole state (map and sessions) for a snapshot.
    pub(crate) fn snapshot(&self) -> Bytes {
        Bytes::from(rmp_serde::to_vec(self).unwrap_or_default())
    }

    /// Rebuilds the state from [`KvStore::snapshot`] output.
    pub(crate) fn restore(image: &[u8]) -> Result<KvStore, SnapshotDecodeError> {
        rmp_serde::from_slice(image).map_err(|source| SnapshotDecodeError::Decode {
            service: Self::SERVICE,
            source,
        })
    }

    /// Number of keys, for logs.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }
}

impl StateMachine for KvStore {
    /// The key a `get` reads.
    type Query = String;
    type Env = ();

    const SERVICE: &'static str = "kv";

    fn new((): &()) -> Self {
        KvStore::default()
    }

    fn admit(op: Op) -> Admission<String> {
        match Command::from_op(op) {
            Ok((command, payload_bytes)) => Admission::Write {
                entry: command.encode(),
                session: Some(command.session()),
                payload_bytes,
            },
            Err(Op::Get { key }) => Admission::Read(key),
            Err(other) => Admission::Refuse(not_served(Self::SERVICE, "get, put, append", &other)),
        }
    }

    fn apply(&mut self, entry: &[u8]) -> Reply {
        KvStore::apply(self, entry)
    }

    fn duplicate(&self, client_id: ClientId, seq: u64) -> Option<Reply> {
        // Every kv write answers `ok`, so a retry's answer needs no memory.
        self.is_applied(client_id, seq).then_some(Reply::Ok)
    }

    fn read(&self, key: &String) -> Reply {
        Reply::Value {
            value: self.get(key).map(str::to_owned),
        }
    }

    fn snapshot(&self) -> Bytes {
        KvStore::snapshot(self)
    }

    fn restore(image: &[u8], (): &()) -> Result<Self, SnapshotDecodeError> {
        KvStore::restore(image)
    }

    fn size(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, client_id: u64, seq: u64) -> Bytes {
        Command::Put {
            key: key.into(),
            value: value.into(),
            client_id,
            seq,
        }
        .encode()
    }

    fn append(key: &str, value: &str, client_id: u64, seq: u64) -> Bytes {
        Command::Append {
            key: key.into(),
            value: value.into(),
            client_id,
            seq,
        }
        .encode()
    }

    #[test]
    fn put_then_append_builds_the_value_and_missing_keys_read_as_absent() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply(&append("k", "a", 1, 1)), Reply::Ok);
        assert_eq!(kv.get("k"), Some("a"));
        assert_eq!(kv.apply(&put("k", "x", 1, 2)), Reply::Ok);
        assert_eq!(kv.apply(&append("k", "y", 2, 1)), Reply::Ok);
        assert_eq!(kv.get("k"), Some("xy"));
        assert_eq!(kv.get("missing"), None);
    }

    #[test]
    fn retried_write_is_answered_ok_but_applied_once() {
        let mut kv = KvStore::default();
        let a = append("k", "a", 7, 1);
        assert_eq!(kv.apply(&a), Reply::Ok);
        assert_eq!(kv.apply(&a), Reply::Ok);
        assert_eq!(kv.get("k"), Some("a"));
        // An older seq from the same client is a duplicate too.
        assert_eq!(kv.apply(&append("k", "b", 7, 2)), Reply::Ok);
        assert_eq!(kv.apply(&append("k", "stale", 7, 1)), Reply::Ok);
        assert_eq!(kv.get("k"), Some("ab"));
        assert!(kv.is_applied(7, 2));
        assert!(!kv.is_applied(7, 3));
        // Other clients are independent.
        assert_eq!(kv.apply(&append("k", "c", 8, 1)), Reply::Ok);
        assert_eq!(kv.get("k"), Some("abc"));
    }

    #[test]
    fn snapshot_round_trip_keeps_data_and_sessions() {
        let mut kv = KvStore::default();
        kv.apply(&put("a", "1", 1, 1));
        kv.apply(&append("b", "2", 2, 5));
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        // Dedup survives the snapshot.
        restored.apply(&append("b", "2", 2, 5));
        assert_eq!(restored.get("b"), Some("2"));
        assert_eq!(restored.len(), 2);
    }

    #[test]
    fn garbage_entry_is_a_bad_request_and_changes_nothing() {
        let mut kv = KvStore::default();
        kv.apply(&put("a", "1", 1, 1));
        let before = kv.clone();
        assert!(matches!(kv.apply(b"\xc1garbage"), Reply::BadRequest { .. }));
        assert_eq!(kv, before);
        assert!(KvStore::restore(b"\xc1").is_err());
    }
}

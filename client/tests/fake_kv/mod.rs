//! The data a fake server applies kv requests to, deduplicating writes by
//! session as kvd does. Shared by the clerk tests' fake servers.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;

use wire::{Op, Reply};

/// Keys and values, and each session's highest applied write.
#[derive(Default)]
pub struct FakeKv {
    kv: BTreeMap<String, String>,
    /// client id → highest applied seq, as a real server's dedup table.
    sessions: BTreeMap<u64, u64>,
}

impl FakeKv {
    /// Applies a get, put or append (a write at most once per `seq`);
    /// `None` for any other request.
    pub fn apply(&mut self, op: &Op) -> Option<Reply> {
        match op {
            Op::Get { key } => Some(Reply::Value {
                value: self.kv.get(key).cloned(),
            }),
            Op::Put {
                key,
                value,
                client_id,
                seq,
            }
            | Op::Append {
                key,
                value,
                client_id,
                seq,
            } => {
                let last = self.sessions.entry(*client_id).or_default();
                if *seq > *last {
                    *last = *seq;
                    if matches!(op, Op::Put { .. }) {
                        self.kv.insert(key.clone(), value.clone());
                    } else {
                        self.kv.entry(key.clone()).or_default().push_str(value);
                    }
                }
                Some(Reply::Ok)
            }
            _ => None,
        }
    }

    /// The value of `key`.
    pub fn value(&self, key: &str) -> Option<String> {
        self.kv.get(key).cloned()
    }
}

//! One line of a history: an invocation or a completion.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an event says about its operation.
///
/// These are Jepsen's four types; their meaning for the checker is the heart
/// of the format, so it is spelled out here once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A client started an operation.
    Invoke,
    /// The operation completed and took effect; `value` is what it observed.
    Ok,
    /// The operation definitely did not take effect.
    Fail,
    /// The outcome is unknown (timeout, crash): it may have taken effect at
    /// any point after its invocation, or never. The process never invokes
    /// again afterwards.
    Info,
}

impl EventType {
    /// The lowercase name used by both the JSONL and the EDN formats.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// Parses the lowercase name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

/// One line of `history.jsonl`, field for field as in DESIGN.md:
/// `{"index", "process", "type", "f", "key", "value", "time"}`.
///
/// `key` is omitted (or `null`) for single-object histories such as one
/// register. `value` follows Jepsen: a read's invoke carries `null` and its
/// `ok` what it observed; a write carries its argument on both; a
/// compare-and-set carries `[expected, new]`. `time` is nanoseconds since the
/// run began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, strictly increasing.
    pub index: u64,
    /// The logical client that issued the operation.
    pub process: u64,
    /// Invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation's function, e.g. `read`, `write`, `cas`, `get`, `put`, `append`.
    pub f: String,
    /// The object operated on; `None` for single-object histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// Argument (invoke) or observed result (completion).
    #[serde(default)]
    pub value: Value,
    /// Nanoseconds since the run began; never decreases along a history.
    pub time: u64,
}

/// A borrowed event, so the recorder can serialize without allocating.
#[derive(Serialize)]
pub(crate) struct EventRef<'a> {
    pub index: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a Value>,
    pub value: &'a Value,
    pub time: u64,
}

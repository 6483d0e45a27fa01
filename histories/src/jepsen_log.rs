//! Import of Jepsen's old plain-text log format.
//!
//! Early Jepsen tests logged each op as a tab-separated line, for example
//! `INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[3 0]`; Porcupine's etcd test
//! histories (`etcd_000.log` ...) are in this format. Lines without the
//! `jepsen.util - ` marker are log noise and are skipped. The format has no
//! timestamps, so each event's `time` and `index` are its position among the
//! op lines, which keeps real-time order exactly.

use crate::edn::{EdnReader, edn_to_json};
use crate::error::HistoryError;
use crate::event::{Event, EventType};
use crate::history::History;
use crate::operation::validate_events;

const MARKER: &str = "jepsen.util - ";

/// Reads a Jepsen text log into a history.
pub fn read_jepsen_log(text: &str) -> Result<History, HistoryError> {
    let mut events = Vec::new();
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let Some(at) = raw.find(MARKER) else {
            continue;
        };
        let fail = |message: String| HistoryError::Line { line, message };
        let mut fields = raw[at + MARKER.len()..].trim_end().splitn(4, '\t');
        let process = fields.next().unwrap_or("").trim();
        if process == ":nemesis" {
            continue;
        }
        let process: u64 = process
            .parse()
            .map_err(|_| fail(format!("process `{process}` is not a non-negative integer")))?;
        let kind_field = fields
            .next()
            .ok_or_else(|| fail("missing the :type field".into()))?;
        let kind = kind_field
            .strip_prefix(':')
            .and_then(EventType::parse)
            .ok_or_else(|| {
                fail(format!(
                    "type must be :invoke, :ok, :fail or :info, found `{kind_field}`"
                ))
            })?;
        let f = fields
            .next()
            .ok_or_else(|| fail("missing the :f field".into()))?;
        let f = f.strip_prefix(':').unwrap_or(f).to_string();
        let value_text = fields.next().unwrap_or("nil");
        let value = match EdnReader::new(value_text).next_form() {
            Ok(Some(v)) => edn_to_json(&v.value).map_err(|e| fail(format!("value {e}")))?,
            Ok(None) => serde_json::Value::Null,
            Err(e) => return Err(fail(format!("value `{value_text}`: {e}"))),
        };
        let position = events.len() as u64;
        events.push(Event {
            index: position,
            process,
            kind,
            f,
            key: None,
            value,
            time: position,
        });
        lines.push(line);
    }
    if let Err(e) = validate_events(&events) {
        return Err(HistoryError::Line {
            line: lines[e.position],
            message: e.message,
        });
    }
    Ok(History::new(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OpStatus;
    use serde_json::json;

    #[test]
    fn reads_invokes_completions_and_timeouts() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    some other log line\n\
                    INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 0\t:ok\t:read\t3\n\
                    INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n";
        let h = read_jepsen_log(text).unwrap();
        let ops = h.operations().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].output, Some(json!(3)));
        assert_eq!(ops[1].input, json!([3, 0]));
        assert_eq!(ops[1].status, OpStatus::Info);
        assert_eq!(h.events[2].time, 2);
    }

    #[test]
    fn broken_line_is_named() {
        let text =
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - x\t:ok\t:read\t3\n";
        let e = read_jepsen_log(text).unwrap_err().to_string();
        assert!(e.starts_with("line 2:") && e.contains("`x`"), "{e}");
    }
}

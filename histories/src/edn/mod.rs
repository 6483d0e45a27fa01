//! Jepsen's EDN history format: import and export.
//!
//! A Jepsen history is a sequence of op maps such as
//! `{:type :invoke, :f :read, :value nil, :process 0, :time 123, :index 0}`,
//! written one per line or as one vector. Reading maps each op onto an
//! [`Event`]:
//!
//! - `:type`, `:f` and `:process` are required; `:f` may be a keyword or a
//!   string. Ops of the `:nemesis` process are not client operations and are
//!   skipped.
//! - `:value` and `:key` become JSON values: keywords and symbols become
//!   strings without the colon (as Jepsen's own JSON export does), vectors,
//!   lists and sets become arrays, maps become objects with stringified keys.
//! - `:time` and `:index` default to the op's position when absent (older
//!   logs, such as Porcupine's test histories, carry neither).
//!
//! Other keys (`:error`, `:node`, ...) are ignored. Writing produces one map
//! per line with `:type` and `:f` as keywords, so that Jepsen tooling reads
//! it back; a JSON → EDN → JSON round trip is the identity.

mod parse;
mod value;

use std::io::Write;

use serde_json::{Map, Number, Value};

pub use parse::{EdnReader, Located};
pub use value::Edn;

use crate::error::HistoryError;
use crate::event::{Event, EventType};
use crate::history::History;
use crate::operation::validate_events;

/// Reads a Jepsen EDN history and checks it can be paired into operations.
pub fn read_edn(text: &str) -> Result<History, HistoryError> {
    let mut reader = EdnReader::new(text);
    let mut events = Vec::new();
    let mut lines = Vec::new();
    let mut position = 0u64;
    while let Some(item) = reader.next_item()? {
        let line = item.line;
        let fail = |message: String| HistoryError::Line { line, message };
        if let Some(event) = op_map_to_event(&item.value, position).map_err(fail)? {
            events.push(event);
            lines.push(line);
        }
        position += 1;
    }
    if let Err(e) = validate_events(&events) {
        return Err(HistoryError::Line {
            line: lines[e.position],
            message: e.message,
        });
    }
    Ok(History::new(events))
}

/// Writes a history as Jepsen EDN, one op map per line.
pub fn write_edn<W: Write>(history: &History, mut writer: W) -> Result<(), HistoryError> {
    for event in &history.events {
        writeln!(writer, "{}", event_to_edn(event))?;
    }
    writer.flush()?;
    Ok(())
}

/// The EDN op map for one event.
pub fn event_to_edn(event: &Event) -> Edn {
    let f = if value::is_symbolic(&event.f) {
        Edn::Keyword(event.f.clone())
    } else {
        Edn::Str(event.f.clone())
    };
    let mut entries = vec![
        (Edn::Keyword("index".into()), Edn::Int(event.index.into())),
        (
            Edn::Keyword("type".into()),
            Edn::Keyword(event.kind.as_str().into()),
        ),
        (
            Edn::Keyword("process".into()),
            Edn::Int(event.process.into()),
        ),
        (Edn::Keyword("f".into()), f),
    ];
    if let Some(key) = &event.key {
        entries.push((Edn::Keyword("key".into()), json_to_edn(key)));
    }
    entries.push((Edn::Keyword("value".into()), json_to_edn(&event.value)));
    entries.push((Edn::Keyword("time".into()), Edn::Int(event.time.into())));
    Edn::Map(entries)
}

/// Converts one op map; `Ok(None)` for ops that are not client operations.
fn op_map_to_event(form: &Edn, position: u64) -> Result<Option<Event>, String> {
    let form = match form {
        Edn::Tagged(_, inner) => inner.as_ref(),
        other => other,
    };
    if !matches!(form, Edn::Map(_)) {
        return Err(format!(
            "expected an op map `{{:type ..., :f ..., :process ...}}`, found `{form}`"
        ));
    }
    let process = match form.get_keyword("process") {
        Some(Edn::Int(p)) => {
            u64::try_from(*p).map_err(|_| format!(":process {p} is not a non-negative integer"))?
        }
        Some(Edn::Keyword(k)) if k == "nemesis" => return Ok(None),
        Some(other) => {
            return Err(format!(
                ":process must be an integer or :nemesis, found `{other}`"
            ));
        }
        None => return Err("op map has no :process".into()),
    };
    let kind = match form.get_keyword("type") {
        Some(Edn::Keyword(k)) => EventType::parse(k)
            .ok_or_else(|| format!(":type must be :invoke, :ok, :fail or :info, found `:{k}`"))?,
        Some(other) => return Err(format!(":type must be a keyword, found `{other}`")),
        None => return Err("op map has no :type".into()),
    };
    let f = match form.get_keyword("f") {
        Some(Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k)) => k.clone(),
        Some(other) => return Err(format!(":f must be a keyword or string, found `{other}`")),
        None => return Err("op map has no :f".into()),
    };
    let value = match form.get_keyword("value") {
        Some(v) => edn_to_json(v).map_err(|e| format!(":value {e}"))?,
        None => Value::Null,
    };
    let key = match form.get_keyword("key") {
        None | Some(Edn::Nil) => None,
        Some(k) => Some(edn_to_json(k).map_err(|e| format!(":key {e}"))?),
    };
    let counter = |name: &str| -> Result<u64, String> {
        match form.get_keyword(name) {
            None => Ok(position),
            Some(Edn::Int(n)) => {
                u64::try_from(*n).map_err(|_| format!(":{name} {n} is negative or too large"))
            }
            Some(other) => Err(format!(":{name} must be an integer, found `{other}`")),
        }
    };
    Ok(Some(Event {
        index: counter("index")?,
        process,
        kind,
        f,
        key,
        value,
        time: counter("time")?,
    }))
}

/// Converts EDN data to a JSON value (see the module doc for the mapping).
pub fn edn_to_json(edn: &Edn) -> Result<Value, String> {
    Ok(match edn {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Value::Number(v.into())
            } else if let Ok(v) = u64::try_from(*i) {
                Value::Number(v.into())
            } else {
                return Err(format!("integer {i} does not fit in 64 bits"));
            }
        }
        Edn::Float(x) => {
            Value::Number(Number::from_f64(*x).ok_or_else(|| format!("{x} has no JSON form"))?)
        }
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::List(items) | Edn::Vector(items) | Edn::Set(items) => {
            Value::Array(items.iter().map(edn_to_json).collect::<Result<_, _>>()?)
        }
        Edn::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                    other => other.to_string(),
                };
                map.insert(key, edn_to_json(v)?);
            }
            Value::Object(map)
        }
        Edn::Tagged(_, inner) => edn_to_json(inner)?,
    })
}

/// Converts a JSON value to EDN: `null` → `nil`, arrays → vectors, objects →
/// maps with string keys.
pub fn json_to_edn(value: &Value) -> Edn {
    match value {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Edn::Int(i.into())
            } else if let Some(u) = n.as_u64() {
                Edn::Int(u.into())
            } else {
                Edn::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Edn::Str(s.clone()),
        Value::Array(items) => Edn::Vector(items.iter().map(json_to_edn).collect()),
        Value::Object(map) => Edn::Map(
            map.iter()
                .map(|(k, v)| (Edn::Str(k.clone()), json_to_edn(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OpStatus;
    use serde_json::json;

    #[test]
    fn reads_the_classic_jepsen_example() {
        let text = "{:type :invoke, :f :read, :value nil, :process 0, :time 123, :index 0}\n\
                    {:type :ok, :f :read, :value 3, :process 0, :time 456, :index 1}\n";
        let h = read_edn(text).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[0].kind, EventType::Invoke);
        assert_eq!(h.events[0].f, "read");
        assert_eq!(h.events[1].value, json!(3));
        assert_eq!(h.events[1].time, 456);
        let ops = h.operations().unwrap();
        assert_eq!(ops[0].status, OpStatus::Ok);
        assert_eq!(ops[0].output, Some(json!(3)));
    }

    #[test]
    fn reads_a_vector_of_ops_and_skips_the_nemesis() {
        let text = "[{:type :invoke, :f :write, :value 1, :process 0}\n\
                     {:type :info, :f :start, :value nil, :process :nemesis}\n\
                     {:type :info, :f :write, :value :timed-out, :process 0}]";
        let h = read_edn(text).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[1].value, json!("timed-out"));
        assert_eq!(h.events[1].index, 2, "index defaults to the position");
        assert_eq!(h.operations().unwrap()[0].status, OpStatus::Info);
    }

    #[test]
    fn broken_op_names_its_line_and_problem() {
        let text = "{:type :invoke, :f :read, :value nil, :process 0}\n\
                    {:type :okay, :f :read, :value nil, :process 0}\n";
        let e = read_edn(text).unwrap_err().to_string();
        assert!(e.starts_with("line 2:") && e.contains(":okay"), "{e}");
        let e = read_edn("{:type :invoke, :f :read, :value nil}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 1:") && e.contains("no :process"), "{e}");
        let e = read_edn("{:type :invoke, :f :read, :process 0}\n{:type :ok :f :read")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2, column 1:"), "{e}");
    }

    #[test]
    fn json_edn_json_round_trip_is_identity() {
        let values = [
            json!(null),
            json!(true),
            json!(-7),
            json!(u64::MAX),
            json!(2.5),
            json!(1e-7),
            json!("x \"q\" \\ \n"),
            json!([1, [2, "a"], null]),
            json!({"a": 1, "b": [true]}),
        ];
        for v in values {
            let text = json_to_edn(&v).to_string();
            let back =
                edn_to_json(&EdnReader::new(&text).next_form().unwrap().unwrap().value).unwrap();
            assert_eq!(back, v, "through {text}");
        }
    }

    #[test]
    fn history_round_trips_through_edn() {
        let events = vec![
            Event {
                index: 0,
                process: 3,
                kind: EventType::Invoke,
                f: "cas".into(),
                key: Some(json!("k1")),
                value: json!([1, 2]),
                time: 5,
            },
            Event {
                index: 1,
                process: 3,
                kind: EventType::Fail,
                f: "cas".into(),
                key: Some(json!("k1")),
                value: json!([1, 2]),
                time: 9,
            },
            Event {
                index: 2,
                process: 4,
                kind: EventType::Invoke,
                f: "weird f".into(),
                key: None,
                value: json!({"nested": [1.5]}),
                time: 9,
            },
        ];
        let h = History::new(events);
        let mut out = Vec::new();
        write_edn(&h, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "{:index 0, :type :invoke, :process 3, :f :cas, :key \"k1\", :value [1 2], :time 5}\n"
        ));
        assert_eq!(read_edn(&text).unwrap(), h);
    }
}

//! Reading and writing the JSONL history format (one event per line).
//!
//! The recorder ends every line with a newline and hands it to the kernel
//! before returning, so after a crash the file is a readable prefix of the
//! run, except possibly for one torn last line. The reader reports that line
//! clearly, and can drop it on request ([`ReadOptions::tolerate_torn_tail`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::error::HistoryError;
use crate::event::Event;
use crate::history::History;
use crate::operation::validate_events;

/// How forgiving a read is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Drop a last line that has no final newline and does not parse (the
    /// mark of a writer that crashed mid-line) instead of failing. The
    /// dropped line is remembered in [`History::dropped_torn_line`].
    pub tolerate_torn_tail: bool,
}

/// Reads a JSONL history and checks it can be paired into operations.
///
/// Blank lines are skipped. Every error names the 1-based line and what is
/// wrong with it.
pub fn read_jsonl<R: BufRead>(reader: R, options: ReadOptions) -> Result<History, HistoryError> {
    read_jsonl_sized(reader, options, 0)
}

/// [`read_jsonl`] with room for `expected` events reserved up front.
fn read_jsonl_sized<R: BufRead>(
    mut reader: R,
    options: ReadOptions,
    expected: usize,
) -> Result<History, HistoryError> {
    let mut events = Vec::with_capacity(expected);
    let mut lines = Vec::with_capacity(expected);
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0usize;
    let mut dropped_torn_line = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let terminated = buf.last() == Some(&b'\n');
        let text = trim_ascii(&buf);
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Event>(text) {
            Ok(event) => {
                events.push(event);
                lines.push(line_no);
            }
            Err(err) => {
                let message = describe_json_error(&err);
                if !terminated {
                    if options.tolerate_torn_tail {
                        dropped_torn_line = Some(line_no);
                        break;
                    }
                    return Err(HistoryError::TornTail {
                        line: line_no,
                        message,
                    });
                }
                return Err(HistoryError::Line {
                    line: line_no,
                    message,
                });
            }
        }
    }
    if let Err(e) = validate_events(&events) {
        return Err(HistoryError::Line {
            line: lines[e.position],
            message: e.message,
        });
    }
    Ok(History {
        events,
        dropped_torn_line,
    })
}

/// Reads a JSONL history from a file (see [`read_jsonl`]).
pub fn read_jsonl_file(
    path: impl AsRef<Path>,
    options: ReadOptions,
) -> Result<History, HistoryError> {
    let file = File::open(path.as_ref())?;
    // Recorded lines are about 100 bytes; reserving avoids copying a large
    // history several times while it grows.
    let expected = usize::try_from(file.metadata()?.len() / 100)
        .unwrap_or(0)
        .min(1 << 26);
    read_jsonl_sized(BufReader::with_capacity(1 << 16, file), options, expected)
}

/// Writes a history as JSONL, one event per line, each line ending in `\n`.
pub fn write_jsonl<W: Write>(history: &History, mut writer: W) -> Result<(), HistoryError> {
    for event in &history.events {
        serde_json::to_writer(&mut writer, event).map_err(std::io::Error::from)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(())
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// serde_json's messages end in "at line 1 column N", which is misleading
/// inside a one-line parse; keep the column, drop the line.
fn describe_json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let base = match text.rfind(" at line ") {
        Some(cut) => &text[..cut],
        None => text.as_str(),
    };
    if err.column() > 0 {
        format!("{base} (column {})", err.column())
    } else {
        base.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use serde_json::json;

    const GOOD: &str = concat!(
        r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1,"time":10}"#,
        "\n",
        r#"{"index":1,"process":0,"type":"ok","f":"write","value":1,"time":20}"#,
        "\n"
    );

    #[test]
    fn reads_the_design_format_field_for_field() {
        let h = read_jsonl(GOOD.as_bytes(), ReadOptions::default()).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[1].kind, EventType::Ok);
        assert_eq!(h.events[1].value, json!(1));
        assert_eq!(h.events[1].key, None);
        assert_eq!(h.events[1].time, 20);
    }

    #[test]
    fn broken_line_is_named_with_its_number_and_problem() {
        let text =
            format!("{GOOD}{{\"index\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}}\n");
        let err = read_jsonl(text.as_bytes(), ReadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, HistoryError::Line { line: 3, .. }), "{msg}");
        assert!(msg.contains("missing field `time`"), "{msg}");
    }

    #[test]
    fn unknown_event_type_is_named() {
        let text =
            r#"{"index":0,"process":0,"type":"maybe","f":"read","time":1}"#.to_string() + "\n";
        let msg = read_jsonl(text.as_bytes(), ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("line 1:") && msg.contains("maybe"), "{msg}");
    }

    #[test]
    fn torn_last_line_is_reported_or_dropped_on_request() {
        let text = format!("{GOOD}{{\"index\":2,\"process\":1,\"ty");
        let err = read_jsonl(text.as_bytes(), ReadOptions::default()).unwrap_err();
        assert!(
            matches!(err, HistoryError::TornTail { line: 3, .. }),
            "{err}"
        );
        let h = read_jsonl(
            text.as_bytes(),
            ReadOptions {
                tolerate_torn_tail: true,
            },
        )
        .unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.dropped_torn_line, Some(3));
    }

    #[test]
    fn broken_line_in_the_middle_is_never_tolerated() {
        let text = format!("{{\"index\":0,\n{GOOD}");
        let err = read_jsonl(
            text.as_bytes(),
            ReadOptions {
                tolerate_torn_tail: true,
            },
        )
        .unwrap_err();
        assert!(matches!(err, HistoryError::Line { line: 1, .. }), "{err}");
    }

    #[test]
    fn pairing_errors_name_the_line() {
        let text = concat!(
            r#"{"index":0,"process":0,"type":"invoke","f":"read","time":1}"#,
            "\n",
            r#"{"index":1,"process":0,"type":"invoke","f":"read","time":2}"#,
            "\n"
        );
        let err = read_jsonl(text.as_bytes(), ReadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("line 2:") && msg.contains("still open"),
            "{msg}"
        );
    }

    #[test]
    fn reordered_lines_are_refused() {
        let text = concat!(
            r#"{"index":1,"process":0,"type":"invoke","f":"read","time":1}"#,
            "\n",
            r#"{"index":0,"process":1,"type":"invoke","f":"read","time":2}"#,
            "\n"
        );
        let msg = read_jsonl(text.as_bytes(), ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("line 2:") && msg.contains("does not increase"),
            "{msg}"
        );
    }

    #[test]
    fn write_then_read_is_identity() {
        let h = read_jsonl(GOOD.as_bytes(), ReadOptions::default()).unwrap();
        let mut out = Vec::new();
        write_jsonl(&h, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), GOOD);
    }
}

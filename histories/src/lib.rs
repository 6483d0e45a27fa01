//! Operation histories: what a Faultline run records and a checker reads.
//!
//! A history is the sequence of events a test observed, in order of
//! occurrence: every client operation appears as an *invocation* and, unless
//! the client crashed or gave up, a *completion* (`ok`, `fail` or `info`).
//! The on-disk form is JSON Lines, one [`Event`] per line, as fixed by
//! DESIGN.md:
//!
//! ```text
//! {"index":0,"process":0,"type":"invoke","f":"append","key":"x","value":"a","time":1200}
//! {"index":1,"process":0,"type":"ok","f":"append","key":"x","value":"a","time":5300}
//! ```
//!
//! This crate provides:
//!
//! - [`Event`] and [`History`], the format itself, with readers that refuse
//!   broken files with the line number and the reason ([`read_jsonl`]), and
//!   can drop a last line torn by a crash ([`ReadOptions`]);
//! - [`Recorder`], which appends events from many tasks at once, assigning
//!   `index` and `time` under one lock and handing every line to the kernel
//!   before returning, so a crashed harness leaves a readable prefix;
//! - pairing into [`Operation`]s ([`History::operations`]) under Jepsen's
//!   rules for indeterminate (`info`) operations;
//! - import and export of Jepsen's EDN histories ([`read_edn`],
//!   [`write_edn`]) and of Jepsen's old text logs ([`read_jepsen_log`]), so
//!   histories move between Faultline and Jepsen tooling.

pub mod edn;
mod error;
mod event;
mod history;
mod jepsen_log;
mod jsonl;
pub mod operation;
mod recorder;

pub use edn::{read_edn, write_edn};
pub use error::HistoryError;
pub use event::{Event, EventType};
pub use history::History;
pub use jepsen_log::read_jepsen_log;
pub use jsonl::{ReadOptions, read_jsonl, read_jsonl_file, write_jsonl};
pub use operation::{OpStatus, Operation, PairError, pair_events, validate_events};
pub use recorder::{Recorded, Recorder};

/// The on-disk formats a history can be read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Faultline's JSON Lines (DESIGN.md).
    Jsonl,
    /// Jepsen EDN: op maps, one per line or in a vector.
    Edn,
    /// Jepsen's old text log (`INFO  jepsen.util - 0\t:invoke\t:read\tnil`).
    JepsenLog,
}

impl Format {
    /// Guesses the format from a file's name and first bytes: `.jsonl` /
    /// `.json` and `.edn` decide by extension; otherwise text starting with
    /// `{"` is JSONL, text mentioning `jepsen.util` is a Jepsen log, and
    /// text starting with `{:`, `[`, `(`, `;` or `#` is EDN (Porcupine's
    /// `c10-ok.txt`-style files are EDN).
    pub fn detect(path: &std::path::Path, head: &[u8]) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json") => return Format::Jsonl,
            Some("edn") => return Format::Edn,
            _ => {}
        }
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start();
        if trimmed.starts_with("{\"") {
            Format::Jsonl
        } else if text.contains("jepsen.util") {
            Format::JepsenLog
        } else if trimmed.starts_with(['{', '[', '(', ';', '#']) {
            Format::Edn
        } else {
            Format::Jsonl
        }
    }
}

/// Reads a history file in the given format.
pub fn read_file_as(
    path: impl AsRef<std::path::Path>,
    format: Format,
    options: ReadOptions,
) -> Result<History, HistoryError> {
    let path = path.as_ref();
    match format {
        Format::Jsonl => read_jsonl_file(path, options),
        Format::Edn => read_edn(&std::fs::read_to_string(path)?),
        Format::JepsenLog => read_jepsen_log(&std::fs::read_to_string(path)?),
    }
}

/// Reads a history file, detecting its format ([`Format::detect`]).
pub fn read_file(
    path: impl AsRef<std::path::Path>,
    options: ReadOptions,
) -> Result<History, HistoryError> {
    use std::io::Read;
    let path = path.as_ref();
    let mut head = [0u8; 4096];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    read_file_as(path, Format::detect(path, &head[..filled]), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn format_is_detected_from_extension_then_content() {
        let p = Path::new("h.txt");
        assert_eq!(Format::detect(Path::new("h.edn"), b"{\"a\""), Format::Edn);
        assert_eq!(Format::detect(Path::new("h.jsonl"), b"{:a"), Format::Jsonl);
        assert_eq!(Format::detect(p, b"  {\"index\":0"), Format::Jsonl);
        assert_eq!(
            Format::detect(p, b"{:process 0, :type :invoke}"),
            Format::Edn
        );
        assert_eq!(Format::detect(p, b"[{:process 0}]"), Format::Edn);
        assert_eq!(
            Format::detect(p, b"INFO  jepsen.util - 0\t:invoke"),
            Format::JepsenLog
        );
    }

    #[test]
    fn read_file_reads_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let edn = dir.path().join("c01-ok.txt");
        std::fs::write(
            &edn,
            "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n",
        )
        .unwrap();
        let h = read_file(&edn, ReadOptions::default()).unwrap();
        assert_eq!(h.events.len(), 1);
        let log = dir.path().join("etcd_000.log");
        std::fs::write(&log, "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n").unwrap();
        assert_eq!(
            read_file(&log, ReadOptions::default())
                .unwrap()
                .events
                .len(),
            1
        );
        let missing =
            read_file(dir.path().join("missing.jsonl"), ReadOptions::default()).unwrap_err();
        assert!(matches!(missing, HistoryError::Io(_)));
    }
}

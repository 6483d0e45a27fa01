//! Finding the history to check and reading it in the right format.
//!
//! The path may name a history file or a run-store directory
//! (`store/<test>/<timestamp>/`, see DESIGN.md), which holds
//! `history.jsonl`. The format comes from `--format`, else from the
//! extension, else from the first non-blank characters: a JSON object starts
//! `{"`, an EDN map `{:` (or a vector `[`), and a Jepsen text log has
//! `jepsen.util - ` on its op lines.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use histories::{History, HistoryError, ReadOptions};

/// The file name of the history inside a run-store directory.
const RUN_STORE_HISTORY: &str = "history.jsonl";

/// How many bytes are enough to recognise a format.
const SNIFF_BYTES: u64 = 8 * 1024;

/// A history format `check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    /// Decide from the extension, then from the contents.
    Auto,
    /// Faultline's JSON Lines (one event object per line).
    Jsonl,
    /// Jepsen's EDN (one op map per line, or one vector of op maps).
    Edn,
    /// Jepsen's old text log (`INFO jepsen.util - 0 :invoke :read nil`), as
    /// in Porcupine's etcd test data.
    JepsenLog,
}

impl HistoryFormat {
    /// The name users see in reports.
    pub fn name(self) -> &'static str {
        match self {
            HistoryFormat::Auto => "auto",
            HistoryFormat::Jsonl => "jsonl",
            HistoryFormat::Edn => "edn",
            HistoryFormat::JepsenLog => "jepsen-log",
        }
    }
}

/// A located history: where it is, what format, and whether it sits in a
/// run store.
#[derive(Clone, Debug)]
pub struct HistoryInput {
    /// The history file itself.
    pub path: PathBuf,
    /// Its format, never `Auto`.
    pub format: HistoryFormat,
    /// True when the user named a run-store directory: results go beside it.
    pub is_run_store: bool,
}

impl HistoryInput {
    /// Resolves a user-given path to a history file and its format.
    pub fn locate(path: &Path, format: HistoryFormat) -> Result<Self> {
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("history {} does not exist", path.display())
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open history {}", path.display()));
            }
        };
        let (file, is_run_store) = if metadata.is_dir() {
            let file = path.join(RUN_STORE_HISTORY);
            if !file.is_file() {
                bail!(
                    "{} is a directory without a {RUN_STORE_HISTORY}; give a history file or a run-store directory",
                    path.display()
                );
            }
            (file, true)
        } else {
            (path.to_path_buf(), false)
        };
        let format = match format {
            HistoryFormat::Auto => detect_format(&file)?,
            chosen => chosen,
        };
        Ok(HistoryInput {
            path: file,
            format,
            is_run_store,
        })
    }

    /// Reads and parses the history; errors name the file, the line and
    /// what is wrong.
    pub fn read(&self, allow_torn_tail: bool) -> Result<History> {
        let read = || -> Result<History, HistoryError> {
            match self.format {
                HistoryFormat::Jsonl | HistoryFormat::Auto => histories::read_jsonl_file(
                    &self.path,
                    ReadOptions {
                        tolerate_torn_tail: allow_torn_tail,
                    },
                ),
                HistoryFormat::Edn => histories::read_edn(&std::fs::read_to_string(&self.path)?),
                HistoryFormat::JepsenLog => {
                    histories::read_jepsen_log(&std::fs::read_to_string(&self.path)?)
                }
            }
        };
        read().map_err(|e| {
            let hint = match e {
                HistoryError::TornTail { .. } => "; pass --allow-torn-tail to check the rest",
                _ => "",
            };
            anyhow::anyhow!(
                "cannot read {} history {}: {e}{hint}",
                self.format.name(),
                self.path.display()
            )
        })
    }

    /// The directory results go to by default: beside the history.
    pub fn beside(&self) -> PathBuf {
        // A bare file name has the empty parent: the current directory.
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The history's file name without its extension, for naming outputs.
    pub fn stem(&self) -> String {
        self.path.file_stem().map_or_else(
            || "history".to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    }
}

/// Picks a format from the extension, else from the first bytes.
fn detect_format(path: &Path) -> Result<HistoryFormat> {
    let by_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .and_then(|e| match e.as_str() {
            "jsonl" | "json" | "ndjson" => Some(HistoryFormat::Jsonl),
            "edn" => Some(HistoryFormat::Edn),
            "log" => Some(HistoryFormat::JepsenLog),
            _ => None,
        });
    if let Some(format) = by_extension {
        return Ok(format);
    }
    let file =
        File::open(path).with_context(|| format!("cannot open history {}", path.display()))?;
    let mut head = Vec::new();
    BufReader::new(file)
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read history {}", path.display()))?;
    sniff(&head).with_context(|| {
        format!(
            "cannot tell the format of {}; pass --format jsonl|edn|jepsen-log",
            path.display()
        )
    })
}

/// Recognises a format from the first bytes of a file. An empty file is an
/// empty JSONL history.
fn sniff(head: &[u8]) -> Result<HistoryFormat> {
    let text = String::from_utf8_lossy(head);
    if text.contains("jepsen.util - ") {
        return Ok(HistoryFormat::JepsenLog);
    }
    let mut chars = text.chars().filter(|c| !c.is_whitespace() && *c != ',');
    match (chars.next(), chars.next()) {
        (None, _) => Ok(HistoryFormat::Jsonl),
        (Some('{'), Some('"')) => Ok(HistoryFormat::Jsonl),
        (Some('{'), Some(':')) | (Some('['), _) | (Some(';'), _) => Ok(HistoryFormat::Edn),
        (Some(c), _) => {
            bail!("it starts with `{c}`, which is neither a JSON object nor an EDN map")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_json_objects_edn_maps_and_jepsen_logs() {
        assert_eq!(sniff(b"\n  {\"index\":0}").unwrap(), HistoryFormat::Jsonl);
        assert_eq!(sniff(b"{ \"index\":0}").unwrap(), HistoryFormat::Jsonl);
        assert_eq!(
            sniff(b"{:process 0, :type :invoke}").unwrap(),
            HistoryFormat::Edn
        );
        assert_eq!(sniff(b"[{:process 0}]").unwrap(), HistoryFormat::Edn);
        assert_eq!(
            sniff(b"; a comment\n{:process 0}").unwrap(),
            HistoryFormat::Edn
        );
        assert_eq!(
            sniff(b"noise\nINFO  jepsen.util - 0\t:invoke\t:read\tnil").unwrap(),
            HistoryFormat::JepsenLog
        );
        assert_eq!(sniff(b"   \n").unwrap(), HistoryFormat::Jsonl);
    }

    #[test]
    fn unrecognisable_contents_say_what_they_start_with() {
        let err = sniff(b"hello").unwrap_err().to_string();
        assert!(err.contains("`h`"), "{err}");
    }
}

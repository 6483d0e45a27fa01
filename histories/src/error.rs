//! The one error type of this crate.

use std::io;

/// Everything that can go wrong reading, writing or recording a history.
///
/// Errors about file contents always say *where* (line, and column when the
/// format has one) and *what*, so that a person can open the file and fix it.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A line of a history file could not be understood.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The last line of a JSONL history is cut short (no newline, does not
    /// parse): the writer most likely crashed in the middle of it.
    #[error(
        "line {line}: the last line is torn (no final newline and it does not parse: {message}); \
         the writer probably crashed mid-line — read with `tolerate_torn_tail` to drop it"
    )]
    TornTail {
        /// 1-based line number of the torn line.
        line: usize,
        /// Why it does not parse.
        message: String,
    },
    /// EDN text is malformed at a given position.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What was expected or found.
        message: String,
    },
    /// An event breaks the rules of a history (for example a process
    /// invoking twice without completing), found after parsing.
    #[error("event {index}: {message}")]
    Event {
        /// The event's `index` field.
        index: u64,
        /// Which rule it breaks.
        message: String,
    },
    /// Reading or writing the underlying file failed.
    #[error("history I/O: {0}")]
    Io(#[from] io::Error),
}

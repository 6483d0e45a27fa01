//! Storage errors. Each names the file (and byte offset) involved, because the
//! reader is an operator looking at a node that will not start.

use std::io;
use std::path::PathBuf;

/// Why opening or writing the storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process (or another `Storage` in this one) has the directory open.
    #[error("data directory {dir} is already in use by {holder} (it holds the lock on {lock})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file inside it.
        lock: PathBuf,
        /// Who holds it, as far as the lock file tells ("pid 1234").
        holder: String,
    },
    /// A file system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we were doing ("fsync", "open", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A WAL record is damaged somewhere other than a torn tail, so the log
    /// cannot be trusted. Never repaired automatically.
    #[error("corrupt WAL segment {file} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot file fails its checks.
    #[error("corrupt snapshot file {file}: {reason}")]
    CorruptSnapshot {
        /// The snapshot file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The files are individually sound but do not fit together (a missing
    /// segment, a snapshot the WAL refers to but that is gone, a hole in the log).
    #[error("inconsistent data directory {dir}: {reason}")]
    Inconsistent {
        /// The data directory.
        dir: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// The caller asked for a write that would break the log's shape (a gap,
    /// an entry under the snapshot, a snapshot older than the stored one).
    /// Nothing was written.
    #[error("invalid write batch: {reason}")]
    InvalidBatch {
        /// What is wrong with the batch.
        reason: String,
    },
    /// An earlier write failed part-way; what reached the disk is unknown, so
    /// the storage refuses further writes. Restart and recover from disk.
    #[error(
        "storage in {dir} refuses writes after an earlier I/O failure; restart to recover from disk"
    )]
    Poisoned {
        /// The data directory.
        dir: PathBuf,
    },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StorageError::Io { op, path, source }
    }
}

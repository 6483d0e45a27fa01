//! Durable Raft storage: a segmented write-ahead log plus snapshot files.
//!
//! The Raft driver hands over, for each `Ready`, a [`Batch`]: an optional
//! snapshot, new log entries, and an optional new hard state. [`Storage::append`]
//! makes the whole batch durable with one write and one `fdatasync` (group
//! commit) before it returns; only then may the driver send the messages that
//! depend on it. After a crash, [`Storage::open`] hands back exactly what was
//! acknowledged, as a [`Recovered`].
//!
//! # On disk
//!
//! ```text
//! <dir>/LOCK                                 held (flock) while a process has the dir open
//! <dir>/snapshot-<term>-<index>.snap         the newest snapshot, written atomically
//! <dir>/wal/00000000000000000001.log, ...    WAL segments, numbered consecutively
//! ```
//!
//! A segment holds batches of checksummed records (entries, hard state,
//! snapshot marker, truncation; format in the `record` module). A batch's last
//! record carries an end-of-batch bit, so recovery applies whole batches only:
//! an append is atomic. New segments start once the current one passes
//! [`StorageOptions::segment_size`], each beginning with a header batch that
//! restates the hard state (and, when opened at startup, the snapshot marker);
//! so once a snapshot covers every entry of the oldest segments, those segments
//! are simply deleted.
//!
//! # Log semantics
//!
//! Entries starting at index `i` replace whatever the log held from `i` on (a
//! new leader overwriting a conflicting suffix). A snapshot at `(i, t)` covers
//! the log up to `i`; if the log held entry `i` with term `t` the entries after
//! it stay, otherwise the whole log is discarded (the Raft rule for
//! InstallSnapshot). Batches that would leave a gap, write under the snapshot
//! or move the snapshot backwards are refused with
//! [`StorageError::InvalidBatch`] before anything is written.
//!
//! # Recovery
//!
//! Damage in the unfinished last batch of the newest segment is a torn write:
//! it is cut off, logged with `tracing::warn!`, and reported in
//! [`Recovered::torn_tail`]. Any other damage (a bad record followed by a
//! complete batch, or in an older segment), a missing segment, or a snapshot
//! the WAL refers to but cannot be found makes `open` fail with an error naming
//! the file and byte offset. Nothing is ever silently skipped.
//!
//! # Threads
//!
//! All calls block on the disk. From async code, run them on a dedicated
//! thread or with `tokio::task::spawn_blocking`.

mod error;
mod plan;
mod record;
mod replay;
mod segment;
mod snapshot;
mod types;
mod wal;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub use error::StorageError;
pub use types::{Entry, HardState, Snapshot};

use plan::LiveLog;
use record::{BatchEncoder, Record};
use replay::ReplayLog;
use wal::Wal;

/// Tunables for [`Storage::open_with`].
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// A new WAL segment starts once the current one reaches this many bytes
    /// (a segment may overshoot by one batch). Smaller segments let compaction
    /// free space sooner; larger ones mean fewer files. Default 64 MiB.
    pub segment_size: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_size: 64 * 1024 * 1024,
        }
    }
}

/// Everything that must become durable for one Raft `Ready`, written by one
/// [`Storage::append`]. Empty fields are skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch<'a> {
    /// A snapshot to install or one taken locally; written to its own file
    /// before the WAL records that refer to it.
    pub snapshot: Option<&'a Snapshot>,
    /// Consecutive new entries; they replace any stored entries from the first
    /// one's index on.
    pub entries: &'a [Entry],
    /// The new hard state, if it changed.
    pub hard_state: Option<&'a HardState>,
}

impl Batch<'_> {
    fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.entries.is_empty() && self.hard_state.is_none()
    }
}

/// The durable state found by [`Storage::open`]: what the Raft node restarts
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The last hard state written (all zeros on a fresh directory).
    pub hard_state: HardState,
    /// The newest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, consecutive, starting at the snapshot's
    /// index + 1 (or 1).
    pub entries: Vec<Entry>,
    /// Set when an unfinished final write was cut off the WAL.
    pub torn_tail: Option<TornTail>,
}

/// A torn tail that recovery cut off the newest WAL segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// Its new length: where the unfinished batch began.
    pub offset: u64,
    /// How many bytes were cut.
    pub discarded_bytes: u64,
    /// What was wrong with the first bad record.
    pub reason: String,
}

/// An open data directory: the WAL being appended to, the snapshot files, and
/// the lock that keeps other processes out.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    wal: Wal,
    log: LiveLog,
    hard_state: HardState,
    /// Reused encode buffer, so a steady stream of appends does not allocate.
    buf: Vec<u8>,
    /// Set by a failed write: what reached the disk is unknown from then on.
    poisoned: bool,
    /// Held for as long as the storage is open; closing it releases the lock.
    _lock: File,
}

const LOCK_FILE: &str = "LOCK";
const WAL_DIR: &str = "wal";

impl Storage {
    /// Opens (creating if needed) the data directory `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Storage, Recovered), StorageError> {
        Storage::open_with(dir, &StorageOptions::default())
    }

    /// Opens (creating if needed) the data directory `dir`, locks it, and
    /// recovers its durable state.
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: &StorageOptions,
    ) -> Result<(Storage, Recovered), StorageError> {
        let dir = dir.as_ref().to_owned();
        create_dir_durably(&dir)?;
        let lock = lock_dir(&dir)?;
        let wal_dir = dir.join(WAL_DIR);
        create_dir_durably(&wal_dir)?;

        let found = snapshot::recover(&dir)?;
        let mut recovery = wal::recover(&wal_dir)?;
        let log = &mut recovery.log;
        let inconsistent = |reason: String| StorageError::Inconsistent {
            dir: dir.clone(),
            reason,
        };
        // Every open writes a segment, so a snapshot without any segment means
        // the WAL (and with it the term and vote) was lost: starting from the
        // snapshot alone could make this node vote twice in a term.
        if let Some((path, _)) = &found.newest
            && recovery.segments.is_empty()
        {
            return Err(inconsistent(format!(
                "{} exists but the WAL directory holds no segments",
                path.display()
            )));
        }

        let extra_truncate =
            adopt_newer_snapshot(log, found.newest.as_ref().map(|(p, s)| (p.as_path(), s)))
                .map_err(&inconsistent)?;
        log.finish().map_err(&inconsistent)?;
        let header = startup_header(log, extra_truncate);
        let mut wal = Wal::start(&wal_dir, recovery.segments, options.segment_size, &header)?;

        let snapshot_index = log.snapshot.0;
        if let Some((path, _)) = &found.newest {
            snapshot::remove_all_but(&dir, path)?;
        }
        wal.compact(snapshot_index)?;

        let live = LiveLog::new(log.snapshot, log.entries.iter().map(|e| e.term));
        let recovered = Recovered {
            hard_state: log.hard_state,
            snapshot: found.newest.map(|(_, s)| s),
            entries: std::mem::take(&mut log.entries).into(),
            torn_tail: recovery.torn_tail,
        };
        let storage = Storage {
            dir,
            wal,
            log: live,
            hard_state: recovered.hard_state,
            buf: Vec::new(),
            poisoned: false,
            _lock: lock,
        };
        Ok((storage, recovered))
    }

    /// Makes `batch` durable: the snapshot file first (if any), then all WAL
    /// records with one write and one `fdatasync`, then compaction of whatever
    /// a new snapshot made obsolete. Returns once everything is on disk.
    ///
    /// A batch that does not fit the log fails with
    /// [`StorageError::InvalidBatch`] and changes nothing. Any I/O failure
    /// poisons the storage: later calls fail with [`StorageError::Poisoned`],
    /// and the process should restart and recover from disk.
    pub fn append(&mut self, batch: &Batch<'_>) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        let plan = self
            .log
            .plan(batch)
            .map_err(|reason| StorageError::InvalidBatch { reason })?;
        let result = self.write(batch, plan);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn write(&mut self, batch: &Batch<'_>, plan: plan::Plan) -> Result<(), StorageError> {
        let snapshot_path = match batch.snapshot {
            Some(s) => Some(snapshot::write(&self.dir, s)?),
            None => None,
        };
        let roll = self.wal.wants_roll();
        self.buf.clear();
        let mut enc = BatchEncoder::new(&mut self.buf);
        if roll {
            // Restated so that deleting older segments never loses the latest
            // hard state. The snapshot marker needs no restating here: segments
            // are only deleted right after a marker is written to the newest one.
            enc.hard_state(&self.hard_state);
        }
        self.log.apply(plan, batch, &mut enc);
        enc.finish();
        if let Some(hs) = batch.hard_state {
            self.hard_state = *hs;
        }
        if roll {
            self.wal.roll()?;
        }
        self.wal
            .write(&self.buf, batch.entries.last().map(|e| e.index))?;
        if let Some(path) = snapshot_path {
            snapshot::remove_all_but(&self.dir, &path)?;
            self.wal.compact(self.log.snapshot().0)?;
        }
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last hard state made durable.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// `(index, term)` of the stored snapshot, `(0, 0)` if there is none.
    pub fn snapshot_point(&self) -> (u64, u64) {
        self.log.snapshot()
    }

    /// Index of the last stored entry (the snapshot's index if the log after
    /// it is empty, 0 on a fresh directory).
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
}

/// Lines the replayed WAL up with the newest snapshot file. The file is written
/// before the WAL marker that refers to it, so the file may be newer (a crash
/// came in between: finish the job as the marker would have) but never older.
/// Returns the truncation point if finishing the job discarded the log.
fn adopt_newer_snapshot(
    log: &mut ReplayLog,
    newest: Option<(&Path, &Snapshot)>,
) -> Result<Option<u64>, String> {
    let (wal_index, wal_term) = log.snapshot;
    match newest {
        None if wal_index > 0 => Err(format!(
            "the WAL records a snapshot at index {wal_index} (term {wal_term}) but there is no snapshot file"
        )),
        Some((path, s)) if s.index < wal_index || (s.index == wal_index && s.term != wal_term) => {
            Err(format!(
                "the WAL records a snapshot at index {wal_index} (term {wal_term}) but the newest snapshot file is {}",
                path.display()
            ))
        }
        Some((_, s)) if s.index > wal_index => {
            let holds_last = log
                .entries
                .iter()
                .any(|e| e.index == s.index && e.term == s.term);
            log.apply(Record::Snapshot {
                index: s.index,
                term: s.term,
            })?;
            if holds_last || log.entries.is_empty() {
                return Ok(None);
            }
            log.apply(Record::Truncate { from: s.index + 1 })?;
            Ok(Some(s.index + 1))
        }
        _ => Ok(None),
    }
}

/// The batch that starts the WAL after recovery: the recovered hard state and
/// snapshot point (and the truncation an adopted snapshot implied), so that
/// every older segment may be deleted once the snapshot covers its entries.
fn startup_header(log: &ReplayLog, truncate_from: Option<u64>) -> Vec<u8> {
    let mut header = Vec::new();
    let mut enc = BatchEncoder::new(&mut header);
    enc.hard_state(&log.hard_state);
    if log.snapshot.0 > 0 {
        enc.snapshot(log.snapshot.0, log.snapshot.1);
    }
    if let Some(from) = truncate_from {
        enc.truncate(from);
    }
    enc.finish();
    header
}

/// Takes the directory's lock file, recording our pid in it for operators.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StorageError::io("open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StorageError::Locked {
                dir: dir.to_owned(),
                lock: path,
                holder: holder_of(&mut file),
            });
        }
        Err(TryLockError::Error(e)) => return Err(StorageError::io("lock", &path)(e)),
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(StorageError::io("write", &path))?;
    Ok(file)
}

/// The pid the current lock holder wrote, for the error message.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) if !text.trim().is_empty() => format!("pid {}", text.trim()),
        _ => "an unknown process".to_owned(),
    }
}

/// Creates `dir` (and missing parents) and fsyncs each new directory's parent,
/// so that the directory itself survives a crash along with what goes in it.
fn create_dir_durably(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_durably(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(StorageError::io("create directory", dir)(e)),
    }
    fsync_dir(parent)
}

/// Makes a directory's entries (created, renamed, deleted files) durable.
fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

//! The segmented write-ahead log: recovery, appends, rolling and compaction.
//!
//! Segments are numbered consecutively; only the newest one is written. A
//! segment begins with a header batch restating the hard state current when it
//! was created (at startup also the snapshot marker), so that older segments
//! can be deleted, once a snapshot covers every entry they hold, without
//! losing either.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::replay::ReplayLog;
use super::segment;
use super::{StorageError, TornTail, fsync_dir};

/// One segment file and the highest entry index ever written to it.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    seq: u64,
    path: PathBuf,
    max_index: u64,
    len: u64,
}

/// What reading the WAL directory produced.
#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) log: ReplayLog,
    pub(crate) segments: Vec<SegmentMeta>,
    pub(crate) torn_tail: Option<TornTail>,
}

/// Reads every segment in order and rebuilds the log. A damaged tail of the
/// newest segment is cut off (and reported); damage anywhere else is an error.
pub(crate) fn recover(dir: &Path) -> Result<Recovery, StorageError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(StorageError::io("list", dir))? {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(StorageError::Inconsistent {
                dir: dir.to_owned(),
                reason: format!(
                    "WAL segment {} is missing (found {} and then {})",
                    segment::file_name(pair[0] + 1),
                    segment::file_name(pair[0]),
                    segment::file_name(pair[1])
                ),
            });
        }
    }

    let mut log = ReplayLog::default();
    let mut segments = Vec::with_capacity(seqs.len());
    let mut torn_tail = None;
    for (i, &seq) in seqs.iter().enumerate() {
        let path = dir.join(segment::file_name(seq));
        let is_newest = i + 1 == seqs.len();
        let bytes = fs::read(&path).map_err(StorageError::io("read", &path))?;
        let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
            file: path.clone(),
            offset,
            reason,
        };
        let scan = segment::scan(&bytes).map_err(|u| {
            corrupt(
                u.offset,
                format!(
                    "record passes its checksum but does not decode: {}",
                    u.reason
                ),
            )
        })?;
        let mut max_index = 0;
        for batch in scan.batches {
            for (offset, record) in batch.records {
                if let super::record::Record::Entries(entries) = &record {
                    max_index = entries.last().map_or(max_index, |e| e.index.max(max_index));
                }
                log.apply(record)
                    .map_err(|reason| corrupt(offset, reason))?;
            }
        }
        let mut len = bytes.len() as u64;
        if let Some(tail) = scan.tail {
            if let Some(later) = tail.later_batch_end {
                return Err(corrupt(
                    tail.damage_offset,
                    format!(
                        "{}; a complete batch ends at offset {later} after it, so this is not a torn write",
                        tail.reason
                    ),
                ));
            }
            if !is_newest {
                return Err(corrupt(
                    tail.damage_offset,
                    format!(
                        "{} in a segment that is not the newest, so it was synced before the damage",
                        tail.reason
                    ),
                ));
            }
            let discarded = len - tail.batch_offset;
            tracing::warn!(
                file = %path.display(),
                offset = tail.batch_offset,
                discarded_bytes = discarded,
                reason = %tail.reason,
                "discarding torn WAL tail (an unfinished write from a crash)"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(StorageError::io("open", &path))?;
            file.set_len(tail.batch_offset)
                .map_err(StorageError::io("truncate", &path))?;
            file.sync_all().map_err(StorageError::io("fsync", &path))?;
            len = tail.batch_offset;
            torn_tail = Some(TornTail {
                file: path.clone(),
                offset: tail.batch_offset,
                discarded_bytes: discarded,
                reason: tail.reason,
            });
        }
        segments.push(SegmentMeta {
            seq,
            path,
            max_index,
            len,
        });
    }
    Ok(Recovery {
        log,
        segments,
        torn_tail,
    })
}

/// The open WAL: the segment list and the newest segment's file.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    /// Oldest first; the last one is being written. Never empty.
    segments: Vec<SegmentMeta>,
    active: File,
    segment_size: u64,
}

impl Wal {
    /// Starts writing after recovery: continues in the newest segment only if
    /// it is empty, otherwise opens a fresh one, and writes `header` (a sealed
    /// batch restating the recovered state) at its start. Every segment thus
    /// begins with a header, whatever a crash did to the previous one.
    pub(crate) fn start(
        dir: &Path,
        mut segments: Vec<SegmentMeta>,
        segment_size: u64,
        header: &[u8],
    ) -> Result<Wal, StorageError> {
        let reuse = segments.last().is_some_and(|s| s.len == 0);
        let active = if reuse {
            let path = &segments[segments.len() - 1].path;
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(StorageError::io("open", path))?
        } else {
            let seq = segments.last().map_or(1, |s| s.seq + 1);
            let (meta, file) = create_segment(dir, seq)?;
            segments.push(meta);
            file
        };
        let mut wal = Wal {
            dir: dir.to_owned(),
            segments,
            active,
            segment_size,
        };
        wal.write(header, None)?;
        Ok(wal)
    }

    /// Whether the next batch should go to a new segment (which then needs a
    /// header in front of it).
    pub(crate) fn wants_roll(&self) -> bool {
        self.segments
            .last()
            .is_some_and(|s| s.len >= self.segment_size)
    }

    /// Opens the next segment; the following [`Wal::write`] fsyncs the
    /// directory so the new file's name is durable with its first batch.
    pub(crate) fn roll(&mut self) -> Result<(), StorageError> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let (meta, file) = create_segment(&self.dir, seq)?;
        self.segments.push(meta);
        self.active = file;
        Ok(())
    }

    /// Appends one sealed batch with a single write and a single `fdatasync`
    /// (plus a directory fsync if this batch opened the segment).
    /// `max_index` is the highest entry index in the batch.
    pub(crate) fn write(
        &mut self,
        batch: &[u8],
        max_index: Option<u64>,
    ) -> Result<(), StorageError> {
        let Some(meta) = self.segments.last_mut() else {
            return Err(StorageError::Inconsistent {
                dir: self.dir.clone(),
                reason: "no WAL segment is open".into(),
            });
        };
        let new_file = meta.len == 0;
        self.active
            .write_all(batch)
            .map_err(StorageError::io("write", &meta.path))?;
        self.active
            .sync_data()
            .map_err(StorageError::io("fdatasync", &meta.path))?;
        meta.len += batch.len() as u64;
        meta.max_index = meta.max_index.max(max_index.unwrap_or(0));
        if new_file {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Deletes the oldest segments while every entry they hold is covered by
    /// the snapshot at `snapshot_index`; the newest segment always stays.
    /// Returns how many were deleted.
    pub(crate) fn compact(&mut self, snapshot_index: u64) -> Result<usize, StorageError> {
        let older = self.segments.len().saturating_sub(1);
        let covered = self.segments[..older]
            .iter()
            .take_while(|s| s.max_index <= snapshot_index)
            .count();
        for meta in self.segments.drain(..covered) {
            fs::remove_file(&meta.path).map_err(StorageError::io("remove", &meta.path))?;
            tracing::debug!(file = %meta.path.display(), "deleted WAL segment covered by snapshot");
        }
        if covered > 0 {
            fsync_dir(&self.dir)?;
        }
        Ok(covered)
    }
}

fn create_segment(dir: &Path, seq: u64) -> Result<(SegmentMeta, File), StorageError> {
    let path = dir.join(segment::file_name(seq));
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(StorageError::io("create", &path))?;
    let meta = SegmentMeta {
        seq,
        path,
        max_index: 0,
        len: 0,
    };
    Ok((meta, file))
}

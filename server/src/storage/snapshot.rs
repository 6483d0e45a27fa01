//! Snapshot files, written atomically.
//!
//! A snapshot goes to `snapshot-<term>-<index>.snap.tmp`, is fsynced, renamed
//! to `snapshot-<term>-<index>.snap` (both numbers zero-padded to 20 digits) and
//! the directory is fsynced, so after a crash a snapshot file is either whole
//! or absent; a leftover `.tmp` is deleted on open. The file format is
//!
//! ```text
//! magic "FLTSNAP1" | index:u64 | term:u64 | len:u64 | crc:u32 | data[len]
//! ```
//!
//! little-endian, with the CRC-32 over index, term, len and data.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::StorageError;
use super::fsync_dir;
use super::types::Snapshot;

const MAGIC: &[u8; 8] = b"FLTSNAP1";
const HEADER_LEN: usize = 8 + 8 + 8 + 8 + 4;
const TEMP_SUFFIX: &str = ".tmp";

/// File name of the snapshot covering up to `index` at `term`.
pub(crate) fn file_name(term: u64, index: u64) -> String {
    format!("snapshot-{term:020}-{index:020}.snap")
}

/// `(term, index)` of a snapshot file name, if it is one of ours.
fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let (term, index) = name
        .strip_prefix("snapshot-")?
        .strip_suffix(".snap")?
        .split_once('-')?;
    let number = |s: &str| {
        (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(term)?, number(index)?))
}

/// Writes `snap` atomically into `dir` and returns its path.
pub(crate) fn write(dir: &Path, snap: &Snapshot) -> Result<PathBuf, StorageError> {
    let path = dir.join(file_name(snap.term, snap.index));
    let tmp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(snap.term, snap.index)));
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&snap.index.to_le_bytes());
    header.extend_from_slice(&snap.term.to_le_bytes());
    header.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    header.extend_from_slice(&checksum(&header[8..], &snap.data).to_le_bytes());

    let mut file = File::create(&tmp).map_err(StorageError::io("create", &tmp))?;
    file.write_all(&header)
        .and_then(|()| file.write_all(&snap.data))
        .map_err(StorageError::io("write", &tmp))?;
    file.sync_all().map_err(StorageError::io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(StorageError::io("rename into place", &tmp))?;
    fsync_dir(dir)?;
    Ok(path)
}

/// Reads and verifies one snapshot file.
pub(crate) fn read(path: &Path) -> Result<Snapshot, StorageError> {
    let corrupt = |reason: String| StorageError::CorruptSnapshot {
        file: path.to_owned(),
        reason,
    };
    let bytes = fs::read(path).map_err(StorageError::io("read", path))?;
    let Some((header, data)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(corrupt(format!(
            "{} bytes is shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    };
    if &header[..8] != MAGIC {
        return Err(corrupt("bad magic: not a snapshot file".into()));
    }
    let word = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (index, term, len) = (word(8), word(16), word(24));
    let stored = u32::from_le_bytes([header[32], header[33], header[34], header[35]]);
    if len != data.len() as u64 {
        return Err(corrupt(format!(
            "header promises {len} bytes of data, the file holds {}",
            data.len()
        )));
    }
    let computed = checksum(&header[8..32], data);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_file_name);
    if named != Some((term, index)) {
        return Err(corrupt(format!(
            "contents are for index {index} term {term}, which does not match the file name"
        )));
    }
    Ok(Snapshot {
        index,
        term,
        data: Bytes::copy_from_slice(data),
    })
}

fn checksum(fields: &[u8], data: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(fields);
    crc.update(data);
    crc.finalize()
}

/// Snapshot files found in a data directory.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The newest snapshot, loaded and verified, with its path.
    pub(crate) newest: Option<(PathBuf, Snapshot)>,
}

/// Deletes leftover temporary files and loads the newest snapshot. A damaged
/// newest snapshot is an error, never a silent fallback to an older one: the
/// WAL entries the older one would need may already be compacted away.
pub(crate) fn recover(dir: &Path) -> Result<Found, StorageError> {
    let mut newest: Option<(u64, u64, PathBuf)> = None;
    let mut removed_temp = false;
    for entry in fs::read_dir(dir).map_err(StorageError::io("list", dir))? {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("snapshot-") && name.ends_with(TEMP_SUFFIX) {
            tracing::info!(file = %entry.path().display(), "removing unfinished snapshot file");
            fs::remove_file(entry.path()).map_err(StorageError::io("remove", entry.path()))?;
            removed_temp = true;
        } else if let Some((term, index)) = parse_file_name(name)
            && newest
                .as_ref()
                .is_none_or(|(i, t, _)| (index, term) > (*i, *t))
        {
            newest = Some((index, term, entry.path()));
        }
    }
    if removed_temp {
        fsync_dir(dir)?;
    }
    let newest = match newest {
        Some((_, _, path)) => Some((path.clone(), read(&path)?)),
        None => None,
    };
    Ok(Found { newest })
}

/// Deletes every snapshot file in `dir` except `keep`.
pub(crate) fn remove_all_but(dir: &Path, keep: &Path) -> Result<(), StorageError> {
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(StorageError::io("list", dir))? {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .and_then(parse_file_name)
            .is_some();
        if ours && path != keep {
            fs::remove_file(&path).map_err(StorageError::io("remove", &path))?;
            removed = true;
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let name = file_name(3, 1234);
        assert_eq!(
            name,
            "snapshot-00000000000000000003-00000000000000001234.snap"
        );
        assert_eq!(parse_file_name(&name), Some((3, 1234)));
        assert_eq!(parse_file_name(&format!("{name}.tmp")), None);
        assert_eq!(parse_file_name("snapshot-3-1234.snap"), None);
    }
}

//! Segment files: naming, and reading one back into complete batches.
//!
//! A segment is a file `wal/<seq>.log` (`seq` zero-padded to 20 digits, from 1)
//! holding whole batches of records. Reading stops at the first record that
//! fails its checks or at an unfinished batch; the caller decides whether that
//! tail is a torn write to cut off or corruption to refuse.

use super::record::{self, Record};

/// File name of segment number `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:020}.log")
}

/// The segment number in a file name, if it is one of ours.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One complete batch read back from a segment: its records and their offsets.
#[derive(Debug)]
pub(crate) struct ReadBatch {
    pub(crate) records: Vec<(u64, Record)>,
}

/// Bytes after the last complete batch that do not form a complete batch.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Where the unfinished batch begins (the length to keep if the tail is cut).
    pub(crate) batch_offset: u64,
    /// Where reading stopped.
    pub(crate) damage_offset: u64,
    /// Why reading stopped there.
    pub(crate) reason: String,
    /// Offset of a complete, valid batch-ending record found after the damage,
    /// which proves the damage is not a torn final write.
    pub(crate) later_batch_end: Option<u64>,
}

/// A segment's contents.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) batches: Vec<ReadBatch>,
    pub(crate) tail: Option<Tail>,
}

/// A record that passed its checksum but does not decode: never a torn write.
#[derive(Debug)]
pub(crate) struct Undecodable {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

/// Reads every complete batch in `buf` and describes what follows them.
pub(crate) fn scan(buf: &[u8]) -> Result<Scan, Undecodable> {
    let mut batches = Vec::new();
    let mut pending = Vec::new();
    let mut batch_offset = 0;
    let mut offset = 0;
    while offset < buf.len() {
        let raw = match record::read_raw(&buf[offset..]) {
            Ok(raw) => raw,
            Err(damage) => {
                let tail = Tail {
                    batch_offset: batch_offset as u64,
                    damage_offset: offset as u64,
                    reason: damage.to_string(),
                    later_batch_end: find_batch_end(buf, offset + 1).map(|o| o as u64),
                };
                return Ok(Scan {
                    batches,
                    tail: Some(tail),
                });
            }
        };
        let rec = record::decode(&raw).map_err(|reason| Undecodable {
            offset: offset as u64,
            reason,
        })?;
        pending.push((offset as u64, rec));
        offset += raw.total_len;
        if raw.end_of_batch {
            batches.push(ReadBatch {
                records: std::mem::take(&mut pending),
            });
            batch_offset = offset;
        }
    }
    let tail = (!pending.is_empty()).then(|| Tail {
        batch_offset: batch_offset as u64,
        damage_offset: offset as u64,
        reason: format!(
            "the file ends inside a batch, after {} of its records",
            pending.len()
        ),
        later_batch_end: None,
    });
    Ok(Scan { batches, tail })
}

/// First offset at or after `from` where a valid batch-ending record starts.
fn find_batch_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&o| record::read_raw(&buf[o..]).is_ok_and(|raw| raw.end_of_batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_strangers_are_ignored() {
        assert_eq!(file_name(7), "00000000000000000007.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for stranger in [
            "7.log",
            "0000000000000000000a.log",
            "00000000000000000007.tmp",
            "LOCK",
        ] {
            assert_eq!(parse_file_name(stranger), None, "{stranger}");
        }
    }
}

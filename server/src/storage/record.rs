//! WAL record format.
//!
//! ```text
//! record  = len:u32 | crc:u32 | kind:u8 | payload[len]
//! crc     = CRC-32 (IEEE) over len, kind and payload, in that order
//! kind    = end_of_batch:1 bit (0x80) | record kind:7 bits
//! ```
//!
//! Records come in batches, one per `Storage::append`, written with one write
//! and one fsync; the last record of a batch has the `end_of_batch` bit set.
//! Recovery applies whole batches only, which makes each append atomic, and
//! tells a torn tail (damage in the unfinished final batch) from corruption
//! (damage followed by a finished batch, which was only written after the
//! damaged bytes had been synced).
//!
//! Integers are little-endian. Payloads by kind:
//!
//! | kind | name       | payload                                                   |
//! |------|------------|-----------------------------------------------------------|
//! | 1    | entries    | first_index:u64, count:u32, count × (term:u64, len:u32, data[len]) |
//! | 2    | hard state | term:u64, has_vote:u8, vote:u64, commit:u64               |
//! | 3    | snapshot   | index:u64, term:u64 — entries up to `index` are compacted  |
//! | 4    | truncate   | from:u64 — entries from `from` on are discarded           |
//!
//! The checksum covers the length, so a torn or overwritten length field is
//! caught rather than sending the reader off into the middle of a payload.

use bytes::Bytes;

use super::types::{Entry, HardState};

/// Bytes in front of every payload.
pub(crate) const HEADER_LEN: usize = 9;

const KIND_ENTRIES: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_TRUNCATE: u8 = 4;
/// Set in the kind byte of a batch's last record.
const END_OF_BATCH: u8 = 0x80;

/// Bytes per entry in an entries payload besides its data.
const ENTRY_OVERHEAD: usize = 12;

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// Consecutive entries; the first one's index says where they go.
    Entries(Vec<Entry>),
    /// A new hard state replacing the previous one.
    HardState(HardState),
    /// A snapshot now covers the log up to `index`.
    Snapshot { index: u64, term: u64 },
    /// Entries from `from` on are gone.
    Truncate { from: u64 },
}

/// Encodes one batch of records into a buffer and seals it by marking the last
/// record as the end of the batch.
pub(crate) struct BatchEncoder<'a> {
    out: &'a mut Vec<u8>,
    last_record: Option<usize>,
}

impl<'a> BatchEncoder<'a> {
    /// Starts a batch at the end of `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BatchEncoder {
            out,
            last_record: None,
        }
    }

    /// Appends an entries record. `entries` must be consecutive and non-empty,
    /// with every data length below 4 GiB.
    pub(crate) fn entries(&mut self, entries: &[Entry]) {
        let first = entries.first().map_or(0, |e| e.index);
        self.record(KIND_ENTRIES, |out| {
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                out.extend_from_slice(&e.term.to_le_bytes());
                out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
                out.extend_from_slice(&e.data);
            }
        });
    }

    /// Appends a hard state record.
    pub(crate) fn hard_state(&mut self, hs: &HardState) {
        self.record(KIND_HARD_STATE, |out| {
            out.extend_from_slice(&hs.term.to_le_bytes());
            out.push(u8::from(hs.vote.is_some()));
            out.extend_from_slice(&hs.vote.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&hs.commit.to_le_bytes());
        });
    }

    /// Appends a snapshot marker.
    pub(crate) fn snapshot(&mut self, index: u64, term: u64) {
        self.record(KIND_SNAPSHOT, |out| {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&term.to_le_bytes());
        });
    }

    /// Appends a truncation record.
    pub(crate) fn truncate(&mut self, from: u64) {
        self.record(KIND_TRUNCATE, |out| {
            out.extend_from_slice(&from.to_le_bytes())
        });
    }

    /// Marks the last record as the end of the batch. Returns false (and writes
    /// nothing more) for an empty batch.
    pub(crate) fn finish(self) -> bool {
        let Some(start) = self.last_record else {
            return false;
        };
        self.out[start + 8] |= END_OF_BATCH;
        let crc = checksum(&self.out[start..]);
        self.out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        true
    }

    fn record(&mut self, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; HEADER_LEN]);
        payload(self.out);
        // The batch planner keeps payloads under 4 GiB.
        let len = u32::try_from(self.out.len() - start - HEADER_LEN).unwrap_or(u32::MAX);
        self.out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.out[start + 8] = kind;
        let crc = checksum(&self.out[start..]);
        self.out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.last_record = Some(start);
    }
}

/// CRC of one whole encoded record (header and payload), skipping the crc field.
fn checksum(record: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record[..4]);
    crc.update(&record[8..]);
    crc.finalize()
}

/// A record located in a buffer, checksum verified, payload not yet decoded.
#[derive(Debug)]
pub(crate) struct RawRecord<'a> {
    /// Record kind with the end-of-batch bit cleared.
    pub(crate) kind: u8,
    /// Whether this record closes its batch.
    pub(crate) end_of_batch: bool,
    pub(crate) payload: &'a [u8],
    /// Header plus payload.
    pub(crate) total_len: usize,
}

/// Why no record could be read at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The buffer ends inside the header or the payload.
    Incomplete { have: usize, need: usize },
    /// Header and payload are all there but the checksum disagrees.
    Checksum { stored: u32, computed: u32 },
    /// The kind byte is not one we write.
    UnknownKind(u8),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Incomplete { have, need } => {
                write!(f, "incomplete record: {have} of {need} bytes present")
            }
            Damage::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Damage::UnknownKind(kind) => write!(f, "unknown record kind {kind}"),
        }
    }
}

/// Reads the record starting at the beginning of `buf`.
pub(crate) fn read_raw(buf: &[u8]) -> Result<RawRecord<'_>, Damage> {
    let Some((header, _)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(Damage::Incomplete {
            have: buf.len(),
            need: HEADER_LEN,
        });
    };
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = header[8] & !END_OF_BATCH;
    if !(KIND_ENTRIES..=KIND_TRUNCATE).contains(&kind) {
        return Err(Damage::UnknownKind(header[8]));
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let total_len = HEADER_LEN.saturating_add(len);
    let Some(record) = buf.get(..total_len) else {
        return Err(Damage::Incomplete {
            have: buf.len(),
            need: total_len,
        });
    };
    let computed = checksum(record);
    if computed != stored {
        return Err(Damage::Checksum { stored, computed });
    }
    Ok(RawRecord {
        kind,
        end_of_batch: header[8] & END_OF_BATCH != 0,
        payload: &record[HEADER_LEN..],
        total_len,
    })
}

/// Decodes a checksummed payload. A failure here is not a torn write (the
/// checksum matched), so it always means a bug or deliberate tampering.
pub(crate) fn decode(raw: &RawRecord<'_>) -> Result<Record, String> {
    let mut p = Payload(raw.payload);
    let record = match raw.kind {
        KIND_ENTRIES => {
            let first = p.u64()?;
            let count = p.u32()? as usize;
            // Bound the allocation by what the payload can actually hold.
            let mut entries = Vec::with_capacity(count.min(p.0.len() / ENTRY_OVERHEAD));
            for i in 0..count {
                let index = first
                    .checked_add(i as u64)
                    .ok_or_else(|| format!("entry index overflows after {first}"))?;
                let term = p.u64()?;
                let len = p.u32()? as usize;
                let data = Bytes::copy_from_slice(p.take(len)?);
                entries.push(Entry { term, index, data });
            }
            if entries.is_empty() {
                return Err("entries record holds no entries".into());
            }
            Record::Entries(entries)
        }
        KIND_HARD_STATE => {
            let term = p.u64()?;
            let has_vote = p.u8()?;
            let vote = p.u64()?;
            let commit = p.u64()?;
            let vote = match has_vote {
                0 => None,
                1 => Some(vote),
                other => return Err(format!("hard state vote flag is {other}, not 0 or 1")),
            };
            Record::HardState(HardState { term, vote, commit })
        }
        KIND_SNAPSHOT => Record::Snapshot {
            index: p.u64()?,
            term: p.u64()?,
        },
        KIND_TRUNCATE => Record::Truncate { from: p.u64()? },
        other => return Err(format!("unknown record kind {other}")),
    };
    if !p.0.is_empty() {
        return Err(format!("{} unexpected bytes after the payload", p.0.len()));
    }
    Ok(record)
}

/// A bounds-checked little-endian reader over a payload.
struct Payload<'a>(&'a [u8]);

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!(
                "payload too short: wanted {n} more bytes, {} left",
                self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(put: impl FnOnce(&mut BatchEncoder<'_>)) -> Record {
        let mut buf = Vec::new();
        let mut batch = BatchEncoder::new(&mut buf);
        put(&mut batch);
        assert!(batch.finish());
        let raw = read_raw(&buf).expect("record reads back");
        assert_eq!(raw.total_len, buf.len());
        assert!(raw.end_of_batch);
        decode(&raw).expect("payload decodes")
    }

    fn one_record(put: impl FnOnce(&mut BatchEncoder<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut batch = BatchEncoder::new(&mut buf);
        put(&mut batch);
        batch.finish();
        buf
    }

    #[test]
    fn every_record_kind_round_trips() {
        let entries = vec![
            Entry {
                term: 3,
                index: 7,
                data: Bytes::from_static(b"seven"),
            },
            Entry {
                term: 4,
                index: 8,
                data: Bytes::new(),
            },
        ];
        assert_eq!(
            roundtrip(|b| b.entries(&entries)),
            Record::Entries(entries.clone())
        );
        let hs = HardState {
            term: 9,
            vote: Some(0),
            commit: 5,
        };
        assert_eq!(roundtrip(|b| b.hard_state(&hs)), Record::HardState(hs));
        let no_vote = HardState { vote: None, ..hs };
        assert_eq!(
            roundtrip(|b| b.hard_state(&no_vote)),
            Record::HardState(no_vote)
        );
        assert_eq!(
            roundtrip(|b| b.snapshot(100, 6)),
            Record::Snapshot {
                index: 100,
                term: 6
            }
        );
        assert_eq!(roundtrip(|b| b.truncate(42)), Record::Truncate { from: 42 });
    }

    #[test]
    fn only_the_last_record_of_a_batch_ends_it() {
        let buf = one_record(|b| {
            b.truncate(5);
            b.snapshot(4, 1);
        });
        let first = read_raw(&buf).unwrap();
        assert!(!first.end_of_batch);
        let second = read_raw(&buf[first.total_len..]).unwrap();
        assert!(second.end_of_batch);
        assert_eq!(
            decode(&second).unwrap(),
            Record::Snapshot { index: 4, term: 1 }
        );
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let buf = one_record(|b| b.snapshot(100, 6));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    read_raw(&bad).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn every_prefix_of_a_record_is_incomplete() {
        let buf = one_record(|b| b.truncate(1));
        for cut in 0..buf.len() {
            assert!(matches!(
                read_raw(&buf[..cut]),
                Err(Damage::Incomplete { .. })
            ));
        }
    }

    #[test]
    fn checksummed_nonsense_payload_is_an_error_not_a_panic() {
        // A well-formed header around an entries payload claiming 2^32-1 entries.
        let buf = one_record(|b| {
            b.record(KIND_ENTRIES, |out| {
                out.extend_from_slice(&1u64.to_le_bytes());
                out.extend_from_slice(&u32::MAX.to_le_bytes());
            })
        });
        let raw = read_raw(&buf).unwrap();
        assert!(decode(&raw).unwrap_err().contains("too short"));
    }
}

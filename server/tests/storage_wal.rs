//! The WAL across reopen: round trips, overwrites, torn tails, corruption.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use server::storage::{Batch, Entry, HardState, Recovered, Storage, StorageError, StorageOptions};

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    indexes
        .map(|index| Entry {
            term,
            index,
            data: Bytes::from(format!("entry {index} of term {term}")),
        })
        .collect()
}

fn append(storage: &mut Storage, entries: &[Entry], hs: Option<HardState>) {
    storage
        .append(&Batch {
            snapshot: None,
            entries,
            hard_state: hs.as_ref(),
        })
        .expect("append");
}

fn reopen(dir: &Path) -> Recovered {
    Storage::open(dir).expect("reopen").1
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

#[test]
fn fresh_directory_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, recovered) = Storage::open(dir.path()).unwrap();
    assert_eq!(recovered.hard_state, HardState::default());
    assert!(recovered.snapshot.is_none() && recovered.entries.is_empty());
    assert!(recovered.torn_tail.is_none());
    assert_eq!(storage.last_index(), 0);
}

#[test]
fn appended_entries_and_hard_state_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 2,
        vote: Some(3),
        commit: 4,
    };
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append(&mut storage, &entries(1..=3, 1), None);
        append(&mut storage, &entries(4..=5, 2), Some(hs));
        assert_eq!(storage.last_index(), 5);
    }
    let recovered = reopen(dir.path());
    assert_eq!(recovered.hard_state, hs);
    let mut expected = entries(1..=3, 1);
    expected.extend(entries(4..=5, 2));
    assert_eq!(recovered.entries, expected);

    // And again: reopening must not change anything by itself.
    let again = reopen(dir.path());
    assert_eq!(again, recovered);
}

#[test]
fn later_append_at_a_lower_index_replaces_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append(&mut storage, &entries(1..=5, 1), None);
        append(&mut storage, &entries(3..=3, 2), None);
        assert_eq!(storage.last_index(), 3);
    }
    let recovered = reopen(dir.path());
    let mut expected = entries(1..=2, 1);
    expected.extend(entries(3..=3, 2));
    assert_eq!(recovered.entries, expected);

    // The storage continues from the overwritten point after reopening.
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    append(&mut storage, &entries(4..=4, 2), None);
    drop(storage);
    assert_eq!(reopen(dir.path()).entries.len(), 4);
}

#[test]
fn invalid_batches_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    append(&mut storage, &entries(1..=2, 1), None);
    let before = file_len(segments(dir.path()).last().unwrap());
    let gap = entries(5..=5, 1);
    let err = storage
        .append(&Batch {
            entries: &gap,
            ..Batch::default()
        })
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
    assert_eq!(file_len(segments(dir.path()).last().unwrap()), before);
    // Still usable afterwards.
    append(&mut storage, &entries(3..=3, 1), None);
    drop(storage);
    assert_eq!(reopen(dir.path()).entries.len(), 3);
}

/// Opens, writes `batches` (one append each) and returns the newest segment
/// and its length after each batch.
fn write_batches(dir: &Path, batches: &[Vec<Entry>]) -> (PathBuf, Vec<u64>) {
    let (mut storage, _) = Storage::open(dir).unwrap();
    let segment = segments(dir).last().unwrap().clone();
    let mut lens = vec![file_len(&segment)];
    for (i, batch) in batches.iter().enumerate() {
        let hs = HardState {
            term: 1,
            vote: None,
            commit: i as u64,
        };
        append(&mut storage, batch, Some(hs));
        lens.push(file_len(&segment));
    }
    (segment, lens)
}

fn five_batches() -> Vec<Vec<Entry>> {
    (0..5).map(|b| entries(b * 3 + 1..=b * 3 + 3, 1)).collect()
}

#[test]
fn torn_tail_with_garbage_is_cut_and_the_valid_prefix_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, lens) = write_batches(dir.path(), &five_batches());
    // Cut the last batch in the middle of its first record, then add garbage,
    // as a crash during the write might leave it.
    let cut = lens[4] + 5;
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(cut).unwrap();
    drop(file);
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(50))
        .unwrap();
    drop(file);

    let (mut storage, recovered) = Storage::open(dir.path()).unwrap();
    let torn = recovered.torn_tail.expect("the torn tail is reported");
    assert_eq!(
        (torn.file.as_path(), torn.offset),
        (segment.as_path(), lens[4])
    );
    assert_eq!(torn.discarded_bytes, 5 + 200);
    assert_eq!(recovered.entries.len(), 12);
    assert_eq!(recovered.hard_state.commit, 3);
    assert_eq!(file_len(&segment), lens[4], "the garbage is gone from disk");

    // Appending and reopening again is clean.
    append(&mut storage, &entries(13..=13, 2), None);
    drop(storage);
    let recovered = reopen(dir.path());
    assert!(recovered.torn_tail.is_none());
    assert_eq!(recovered.entries.last().unwrap().index, 13);
}

#[test]
fn crash_at_any_byte_recovers_exactly_the_batches_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, lens) = write_batches(dir.path(), &five_batches());
    let pristine = fs::read(&segment).unwrap();
    // Every cut inside the last batch (an entries record plus a hard state
    // record, so some cuts fall between the records of one batch), and the
    // last bytes of the batch before it.
    for cut in lens[4] - 4..=lens[5] {
        let copy = tempfile::tempdir().unwrap();
        fs::create_dir(copy.path().join("wal")).unwrap();
        fs::write(
            copy.path().join("wal").join(segment.file_name().unwrap()),
            &pristine[..cut as usize],
        )
        .unwrap();
        let recovered = reopen(copy.path());
        let whole_batches = lens.iter().skip(1).filter(|&&l| l <= cut).count();
        assert_eq!(
            recovered.entries.len(),
            whole_batches * 3,
            "cut at byte {cut}"
        );
        let expected_commit = whole_batches.checked_sub(1).map_or(0, |c| c as u64);
        assert_eq!(
            recovered.hard_state.commit, expected_commit,
            "cut at byte {cut}"
        );
        assert_eq!(
            recovered.torn_tail.is_some(),
            !lens.contains(&cut),
            "cut at byte {cut}"
        );
    }
}

#[test]
fn flipped_byte_in_the_middle_fails_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, lens) = write_batches(dir.path(), &five_batches());
    let mut bytes = fs::read(&segment).unwrap();
    // A byte inside the payload of the second batch's first record.
    bytes[lens[1] as usize + 20] ^= 0x01;
    fs::write(&segment, &bytes).unwrap();

    let err = Storage::open(dir.path()).unwrap_err();
    let StorageError::Corrupt {
        file,
        offset,
        reason,
    } = &err
    else {
        panic!("expected corruption, got {err}")
    };
    assert_eq!((file.as_path(), *offset), (segment.as_path(), lens[1]));
    assert!(reason.contains("checksum"), "{reason}");
    let message = err.to_string();
    assert!(
        message.contains(&segment.display().to_string())
            && message.contains(&format!("offset {}", lens[1])),
        "{message}"
    );
    // Refusing to open must not have "repaired" anything.
    assert_eq!(fs::read(&segment).unwrap(), bytes);
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions { segment_size: 200 };
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &options).unwrap();
        for batch in five_batches() {
            append(&mut storage, &batch, None);
        }
    }
    let files = segments(dir.path());
    assert!(files.len() >= 3, "small segments roll: {files:?}");
    let first = &files[0];
    let len = file_len(first);
    let file = OpenOptions::new().write(true).open(first).unwrap();
    file.set_len(len - 1).unwrap();
    drop(file);

    let err = Storage::open_with(dir.path(), &options).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { file, .. } if file == first),
        "{err}"
    );
    assert!(err.to_string().contains("not the newest"), "{err}");
}

#[test]
fn missing_segment_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions { segment_size: 200 };
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &options).unwrap();
        for batch in five_batches() {
            append(&mut storage, &batch, None);
        }
    }
    let files = segments(dir.path());
    fs::remove_file(&files[1]).unwrap();
    let err = Storage::open_with(dir.path(), &options).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn rolled_segments_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions { segment_size: 100 };
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &options).unwrap();
        append(&mut storage, &entries(1..=10, 1), None);
        append(&mut storage, &entries(6..=12, 2), None);
        append(&mut storage, &entries(13..=14, 2), None);
    }
    assert!(segments(dir.path()).len() >= 3);
    let recovered = Storage::open_with(dir.path(), &options).unwrap().1;
    let mut expected = entries(1..=5, 1);
    expected.extend(entries(6..=14, 2));
    assert_eq!(recovered.entries, expected);
}

#[test]
fn arbitrary_bytes_in_a_segment_never_panic() {
    // A deterministic spread of hostile files: each either opens (as a torn
    // tail) or fails with an error; none may panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for size in [0usize, 1, 8, 9, 10, 64, 4096] {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("wal")).unwrap();
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            fs::write(dir.path().join("wal/00000000000000000001.log"), &bytes).unwrap();
            if let Ok((_, recovered)) = Storage::open(dir.path()) {
                assert!(recovered.entries.is_empty());
            }
        }
    }
}

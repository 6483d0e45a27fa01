//! Snapshots, compaction and the directory lock.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use server::storage::{Batch, Entry, HardState, Snapshot, Storage, StorageError, StorageOptions};

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    indexes
        .map(|index| Entry {
            term,
            index,
            data: Bytes::from(format!("entry {index} of term {term}")),
        })
        .collect()
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index,
        term,
        data: Bytes::from(format!("state machine up to {index}")),
    }
}

fn append_entries(storage: &mut Storage, entries: &[Entry]) {
    storage
        .append(&Batch {
            entries,
            ..Batch::default()
        })
        .unwrap();
}

fn install(storage: &mut Storage, snap: &Snapshot) {
    storage
        .append(&Batch {
            snapshot: Some(snap),
            ..Batch::default()
        })
        .unwrap();
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn snapshot_files(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("snapshot-"))
        .collect()
}

const SMALL: StorageOptions = StorageOptions { segment_size: 256 };

#[test]
fn local_snapshot_keeps_the_log_after_it_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(6, 1);
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=10, 1));
        install(&mut storage, &snap);
        assert_eq!(storage.snapshot_point(), (6, 1));
        assert_eq!(storage.last_index(), 10);
    }
    let (_, recovered) = Storage::open(dir.path()).unwrap();
    assert_eq!(recovered.snapshot, Some(snap));
    assert_eq!(recovered.entries, entries(7..=10, 1));
}

#[test]
fn snapshot_that_conflicts_with_the_log_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=10, 1));
        // A leader's snapshot whose last entry (6, term 2) we do not hold.
        let snap = snapshot(6, 2);
        let next = entries(7..=7, 2);
        storage
            .append(&Batch {
                snapshot: Some(&snap),
                entries: &next,
                hard_state: Some(&HardState {
                    term: 2,
                    vote: None,
                    commit: 6,
                }),
            })
            .unwrap();
        assert_eq!(storage.last_index(), 7);
    }
    let (_, recovered) = Storage::open(dir.path()).unwrap();
    assert_eq!(recovered.snapshot.map(|s| (s.index, s.term)), Some((6, 2)));
    assert_eq!(recovered.entries, entries(7..=7, 2));
    assert_eq!(recovered.hard_state.commit, 6);
}

#[test]
fn conflicting_snapshot_alone_leaves_an_empty_log_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=10, 1));
        install(&mut storage, &snapshot(6, 2));
    }
    let (mut storage, recovered) = Storage::open(dir.path()).unwrap();
    assert!(recovered.entries.is_empty(), "{:?}", recovered.entries);
    assert_eq!(storage.last_index(), 6);
    append_entries(&mut storage, &entries(7..=7, 2));
}

#[test]
fn hard_state_and_snapshot_point_survive_restarts_that_compact_everything() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 4,
        vote: Some(1),
        commit: 20,
    };
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &SMALL).unwrap();
        storage
            .append(&Batch {
                hard_state: Some(&hs),
                ..Batch::default()
            })
            .unwrap();
        append_entries(&mut storage, &entries(1..=20, 1));
        install(&mut storage, &snapshot(20, 1));
    }
    // Each restart starts a segment and deletes the older ones, all covered by
    // the snapshot; only what the new segment restates remains.
    for _ in 0..3 {
        let (_, recovered) = Storage::open_with(dir.path(), &SMALL).unwrap();
        assert_eq!(recovered.hard_state, hs);
        assert_eq!(recovered.snapshot.map(|s| s.index), Some(20));
        assert!(recovered.entries.is_empty());
    }
    let (mut storage, _) = Storage::open_with(dir.path(), &SMALL).unwrap();
    append_entries(&mut storage, &entries(21..=21, 1));
}

#[test]
fn snapshot_point_survives_when_its_marker_segment_is_compacted_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &SMALL).unwrap();
        append_entries(&mut storage, &entries(1..=20, 1));
        install(&mut storage, &snapshot(20, 1));
        // Fill the marker's segment with hard states only, so that the next
        // entries start a new segment and the marker's segment holds no entry
        // above the snapshot.
        for commit in 0..8 {
            let hs = HardState {
                term: 1,
                vote: None,
                commit,
            };
            storage
                .append(&Batch {
                    hard_state: Some(&hs),
                    ..Batch::default()
                })
                .unwrap();
        }
        append_entries(&mut storage, &entries(21..=40, 1));
    }
    // The first restart deletes the marker's segment; the second must still
    // know the snapshot point, or it would discard entries 21..=40.
    for _ in 0..2 {
        let (_, recovered) = Storage::open_with(dir.path(), &SMALL).unwrap();
        assert_eq!(recovered.snapshot.map(|s| s.index), Some(20));
        assert_eq!(recovered.entries, entries(21..=40, 1));
        assert_eq!(recovered.hard_state.commit, 7);
    }
}

#[test]
fn compaction_deletes_segments_covered_by_the_snapshot_and_old_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = Storage::open_with(dir.path(), &SMALL).unwrap();
    for i in 0..20 {
        append_entries(&mut storage, &entries(i * 5 + 1..=i * 5 + 5, 1));
    }
    let wal = dir.path().join("wal");
    let before = files_in(&wal);
    assert!(before.len() >= 5, "{before:?}");

    install(&mut storage, &snapshot(40, 1));
    let after_first = files_in(&wal);
    assert!(after_first.len() < before.len(), "{after_first:?}");
    drop(storage);
    // Only whole segments went: everything after the snapshot is still there.
    let (mut storage, recovered) = Storage::open_with(dir.path(), &SMALL).unwrap();
    assert_eq!(recovered.entries, entries(41..=100, 1));

    install(&mut storage, &snapshot(95, 1));
    let after_second = files_in(&wal);
    assert!(after_second.len() < after_first.len(), "{after_second:?}");
    assert_eq!(
        snapshot_files(dir.path()),
        ["snapshot-00000000000000000001-00000000000000000095.snap"]
    );
    drop(storage);

    let (_, recovered) = Storage::open_with(dir.path(), &SMALL).unwrap();
    assert_eq!(recovered.snapshot.unwrap().index, 95);
    assert_eq!(recovered.entries, entries(96..=100, 1));
}

#[test]
fn hard_state_survives_compaction_of_the_segment_that_first_held_it() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 1,
        vote: Some(2),
        commit: 0,
    };
    {
        let (mut storage, _) = Storage::open_with(dir.path(), &SMALL).unwrap();
        storage
            .append(&Batch {
                hard_state: Some(&hs),
                ..Batch::default()
            })
            .unwrap();
        for i in 0..10 {
            append_entries(&mut storage, &entries(i * 5 + 1..=i * 5 + 5, 1));
        }
        install(&mut storage, &snapshot(50, 1));
        assert_eq!(files_in(&dir.path().join("wal")).len(), 1);
    }
    let (_, recovered) = Storage::open_with(dir.path(), &SMALL).unwrap();
    assert_eq!(recovered.hard_state, hs);
    assert!(recovered.entries.is_empty());
}

#[test]
fn leftover_temp_snapshot_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(3, 1);
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=5, 1));
        install(&mut storage, &snap);
    }
    // A crash while writing a newer snapshot leaves its temporary file behind.
    let temp = dir
        .path()
        .join("snapshot-00000000000000000001-00000000000000000005.snap.tmp");
    fs::write(&temp, b"half a snapsh").unwrap();

    let (_, recovered) = Storage::open(dir.path()).unwrap();
    assert_eq!(recovered.snapshot, Some(snap));
    assert_eq!(recovered.entries, entries(4..=5, 1));
    assert!(!temp.exists());
}

/// Builds a directory holding a snapshot file for `snap` and returns its path.
fn snapshot_file_for(snap: &Snapshot) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    append_entries(&mut storage, &entries(1..=snap.index, snap.term));
    install(&mut storage, snap);
    drop(storage);
    let name = snapshot_files(dir.path()).pop().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn snapshot_file_whose_wal_marker_was_never_written_is_adopted() {
    // A crash between renaming the snapshot into place and logging its marker.
    let snap = snapshot(4, 1);
    let (_source, file) = snapshot_file_for(&snap);
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=6, 1));
    }
    fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();

    for _ in 0..2 {
        let (storage, recovered) = Storage::open(dir.path()).unwrap();
        assert_eq!(recovered.snapshot.as_ref(), Some(&snap));
        assert_eq!(recovered.entries, entries(5..=6, 1));
        assert_eq!(storage.snapshot_point(), (4, 1));
    }
}

#[test]
fn adopted_snapshot_that_conflicts_with_the_log_discards_it() {
    let snap = snapshot(4, 2);
    let (_source, file) = snapshot_file_for(&snap);
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=6, 1));
    }
    fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();
    for _ in 0..2 {
        let (storage, recovered) = Storage::open(dir.path()).unwrap();
        assert_eq!(recovered.snapshot.as_ref(), Some(&snap));
        assert!(recovered.entries.is_empty(), "{:?}", recovered.entries);
        assert_eq!(storage.last_index(), 4);
    }
}

#[test]
fn wal_referring_to_a_vanished_snapshot_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=5, 1));
        install(&mut storage, &snapshot(3, 1));
    }
    for name in snapshot_files(dir.path()) {
        fs::remove_file(dir.path().join(name)).unwrap();
    }
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("no snapshot file"), "{err}");
}

#[test]
fn corrupt_snapshot_file_fails_open_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=5, 1));
        install(&mut storage, &snapshot(3, 1));
    }
    let path = dir.path().join(snapshot_files(dir.path()).pop().unwrap());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, bytes).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StorageError::CorruptSnapshot { file, reason } if *file == path && reason.contains("checksum")),
        "{err}"
    );
}

#[test]
fn second_open_of_a_data_dir_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = Storage::open(dir.path()).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string())
            && message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    Storage::open(dir.path()).expect("the lock is released on drop");
}

#[test]
fn stale_snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    append_entries(&mut storage, &entries(1..=5, 1));
    install(&mut storage, &snapshot(4, 1));
    let older = snapshot(2, 1);
    let err = storage
        .append(&Batch {
            snapshot: Some(&older),
            ..Batch::default()
        })
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
    let under = entries(3..=3, 1);
    let err = storage
        .append(&Batch {
            entries: &under,
            ..Batch::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("covered by the snapshot"), "{err}");
}

#[test]
fn snapshot_without_any_wal_fails_open_rather_than_forgetting_the_vote() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        append_entries(&mut storage, &entries(1..=5, 1));
        install(&mut storage, &snapshot(3, 1));
    }
    fs::remove_dir_all(dir.path().join("wal")).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("holds no segments"), "{err}");
}

#[test]
fn missing_data_directory_is_created_with_its_parents() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/node-1");
    let (mut storage, _) = Storage::open(&nested).unwrap();
    append_entries(&mut storage, &entries(1..=1, 1));
    drop(storage);
    assert_eq!(Storage::open(&nested).unwrap().1.entries.len(), 1);
}

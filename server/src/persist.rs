//! The storage thread: makes Raft state durable without blocking the event
//! loop.
//!
//! The driver hands over one job per `Ready` (plus occasional local
//! snapshots); a dedicated OS thread runs them through [`Storage::append`] in
//! order, each with one write and one fsync, and reports each completion back.
//! Because jobs run in submission order, a completion also vouches for every
//! job submitted before it. The driver keeps the Raft order (persist, then
//! send, then apply) by waiting for a `Ready`'s completion before touching its
//! messages; meanwhile it keeps stepping messages and taking proposals, which
//! pile up into the next `Ready`: that is the group commit.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;
use tracing::Span;

use crate::storage::{self, Batch, Storage, StorageError};

/// Work for the storage thread.
#[derive(Debug)]
pub(crate) enum Job {
    /// The durable part of one `Ready`.
    Ready {
        snapshot: Option<storage::Snapshot>,
        entries: Vec<storage::Entry>,
        hard_state: Option<storage::HardState>,
    },
    /// A snapshot the node took of its own state machine.
    LocalSnapshot(storage::Snapshot),
}

/// A finished job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// A `Ready` job is durable.
    Ready,
    /// A local snapshot is durable and the log below it is compacted.
    LocalSnapshot { index: u64 },
}

/// Handle to the storage thread.
#[derive(Debug)]
pub(crate) struct Persister {
    jobs: Option<std_mpsc::Sender<Job>>,
    done: mpsc::UnboundedReceiver<Result<Done, StorageError>>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// Starts the thread, which owns `storage` until [`Persister::close`].
    pub(crate) fn spawn(mut storage: Storage, span: Span) -> std::io::Result<Persister> {
        let (job_tx, job_rx) = std_mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("kvd-storage".into())
            .spawn(move || {
                let _enter = span.enter();
                while let Ok(job) = job_rx.recv() {
                    let result = run_job(&mut storage, job);
                    let failed = result.is_err();
                    if done_tx.send(result).is_err() || failed {
                        // The driver is gone, or the storage is poisoned:
                        // nothing more may be written.
                        break;
                    }
                }
            })?;
        Ok(Persister {
            jobs: Some(job_tx),
            done: done_rx,
            thread: Some(thread),
        })
    }

    /// Queues a job. Fails only if the thread has stopped (after a storage
    /// error, which was reported through [`Persister::next_done`]).
    pub(crate) fn submit(&self, job: Job) -> Result<(), StorageError> {
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if sent {
            Ok(())
        } else {
            Err(StorageError::Io {
                op: "hand a write to",
                path: "the storage thread".into(),
                source: std::io::Error::other("the storage thread has stopped"),
            })
        }
    }

    /// The next completion, in submission order. Cancel-safe.
    pub(crate) async fn next_done(&mut self) -> Option<Result<Done, StorageError>> {
        self.done.recv().await
    }

    /// Lets queued jobs finish, then stops the thread and closes the storage
    /// (releasing the data directory's lock). Blocks: call it from a blocking
    /// context.
    pub(crate) fn close(mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the storage thread panicked");
        }
    }
}

fn run_job(storage: &mut Storage, job: Job) -> Result<Done, StorageError> {
    match job {
        Job::Ready {
            snapshot,
            entries,
            hard_state,
        } => {
            storage.append(&Batch {
                snapshot: snapshot.as_ref(),
                entries: &entries,
                hard_state: hard_state.as_ref(),
            })?;
            Ok(Done::Ready)
        }
        Job::LocalSnapshot(snapshot) => {
            let index = snapshot.index;
            storage.append(&Batch {
                snapshot: Some(&snapshot),
                ..Batch::default()
            })?;
            Ok(Done::LocalSnapshot { index })
        }
    }
}

/// Raft's entry in the storage's terms.
pub(crate) fn to_storage_entry(e: raft::Entry) -> storage::Entry {
    storage::Entry {
        term: e.term,
        index: e.index,
        data: e.data,
    }
}

/// Raft's hard state in the storage's terms.
pub(crate) fn to_storage_hard_state(h: raft::HardState) -> storage::HardState {
    storage::HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit,
    }
}

/// Raft's snapshot in the storage's terms.
pub(crate) fn to_storage_snapshot(s: &raft::Snapshot) -> storage::Snapshot {
    storage::Snapshot {
        index: s.meta.index,
        term: s.meta.term,
        data: s.data.clone(),
    }
}

/// What recovery found, in Raft's terms.
pub(crate) fn to_raft_state(
    r: storage::Recovered,
) -> (raft::HardState, Option<raft::Snapshot>, Vec<raft::Entry>) {
    let hs = raft::HardState {
        term: r.hard_state.term,
        vote: r.hard_state.vote,
        commit: r.hard_state.commit,
    };
    let snapshot = r.snapshot.map(|s| raft::Snapshot {
        meta: raft::SnapshotMeta {
            index: s.index,
            term: s.term,
        },
        data: s.data,
    });
    let entries = r
        .entries
        .into_iter()
        .map(|e| raft::Entry {
            term: e.term,
            index: e.index,
            data: e.data,
        })
        .collect();
    (hs, snapshot, entries)
}

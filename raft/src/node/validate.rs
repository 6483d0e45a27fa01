//! Refuses messages that no correct peer could send, before they touch any
//! state, so that the protocol code can rely on their shape.

use crate::error::StepError;
use crate::message::{Message, MessageBody};
use crate::types::{Entry, Index, Term};

/// No correct log or term comes anywhere near this (it would take 2^62
/// elections or entries); refusing larger values lets the protocol code do
/// plain arithmetic (`index + 1`, `term + 1`) without overflow.
pub(crate) const MAX_INDEX_OR_TERM: u64 = 1 << 62;

pub(super) fn check(msg: &Message) -> Result<(), StepError> {
    match problem(msg) {
        Some(reason) => Err(StepError::Malformed {
            from: msg.from,
            kind: msg.body.kind(),
            reason,
        }),
        None => Ok(()),
    }
}

fn problem(msg: &Message) -> Option<&'static str> {
    if !numbers_in_range(msg) {
        return Some("index or term out of range");
    }
    match &msg.body {
        MessageBody::PreVote { last_log_term, .. }
        | MessageBody::RequestVote { last_log_term, .. }
            if *last_log_term > msg.term =>
        {
            Some("last log term is newer than the election term")
        }
        MessageBody::AppendEntries {
            prev_index,
            prev_term,
            entries,
            ..
        } => append_problem(msg.term, *prev_index, *prev_term, entries),
        MessageBody::AppendEntriesResponse {
            index,
            reject: Some(hint),
        } if hint.index > *index => Some("rejection hint lies beyond the rejected index"),
        MessageBody::InstallSnapshot { snapshot }
            if snapshot.meta.index == 0
                || snapshot.meta.term == 0
                || snapshot.meta.term > msg.term =>
        {
            Some("snapshot position is impossible")
        }
        _ => None,
    }
}

fn append_problem(
    leader_term: Term,
    prev_index: Index,
    prev_term: Term,
    entries: &[Entry],
) -> Option<&'static str> {
    if prev_term > leader_term {
        return Some("previous entry's term is newer than the leader's");
    }
    if prev_index == 0 && prev_term != 0 {
        return Some("index 0 always has term 0");
    }
    let mut expected = prev_index;
    let mut term = prev_term;
    for entry in entries {
        let Some(next) = expected.checked_add(1) else {
            return Some("entry index overflows");
        };
        expected = next;
        if entry.index != expected {
            return Some("entries are not contiguous after prev_index");
        }
        if entry.term < term || entry.term > leader_term {
            return Some("entry terms go backwards or exceed the leader's");
        }
        term = entry.term;
    }
    None
}

fn numbers_in_range(msg: &Message) -> bool {
    let ok = |n: u64| n <= MAX_INDEX_OR_TERM;
    ok(msg.term)
        && match &msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            }
            | MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => ok(*last_log_index) && ok(*last_log_term),
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                ok(*prev_index)
                    && ok(*prev_term)
                    && ok(*commit)
                    && entries.iter().all(|e| ok(e.index) && ok(e.term))
            }
            MessageBody::AppendEntriesResponse { index, reject } => {
                ok(*index) && reject.is_none_or(|h| ok(h.index) && ok(h.term))
            }
            MessageBody::Heartbeat { commit, .. } => ok(*commit),
            MessageBody::InstallSnapshot { snapshot } => {
                ok(snapshot.meta.index) && ok(snapshot.meta.term)
            }
            MessageBody::PreVoteResponse { .. }
            | MessageBody::RequestVoteResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::TimeoutNow => true,
        }
}

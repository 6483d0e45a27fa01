//! A whole history in memory.

use crate::error::HistoryError;
use crate::event::Event;
use crate::operation::{Operation, pair_events};

/// The events of one run, in order of occurrence.
///
/// Built by the readers ([`crate::read_jsonl`], [`crate::read_edn`], ...),
/// which already refuse histories that cannot be paired, or directly from
/// events (tests, generators).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Every event, in file order.
    pub events: Vec<Event>,
    /// Set when a torn last line was dropped by a tolerant read: its 1-based
    /// line number, so a report can say the history ends with a crash.
    pub dropped_torn_line: Option<usize>,
}

impl History {
    /// Wraps events without checking them; [`History::operations`] checks.
    pub fn new(events: Vec<Event>) -> Self {
        History {
            events,
            dropped_torn_line: None,
        }
    }

    /// Pairs invocations with completions (see [`crate::operation`] for the
    /// rules). Errors name the offending event by its `index`.
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        pair_events(&self.events).map_err(|e| HistoryError::Event {
            index: self.events[e.position].index,
            message: e.message,
        })
    }
}

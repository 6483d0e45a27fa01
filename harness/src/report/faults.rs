//! The nemesis log (`nemesis.jsonl`): what faults were injected, and when.
//!
//! Every line is one event, `start` or `end`, and an `end` closes the `start`
//! with the same `id`. The report needs the events as they were written (for
//! the table) and the paired windows (for shading the plots). A fault whose
//! `end` never came lasted until the end of the run. Lines that do not parse
//! are skipped and reported, so a crashed run still gets its pictures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of `nemesis.jsonl`, as the run-store contract defines it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct NemesisEvent {
    /// Nanoseconds since the run began.
    pub time: u64,
    /// `start` or `end`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `partition`, `kill`, `pause`, `join`, ...
    pub fault: String,
    /// Pairs a `start` with its `end`.
    pub id: u64,
    /// The nodes the fault touched.
    #[serde(default)]
    pub nodes: Vec<u64>,
    /// What the nemesis did, in words.
    #[serde(default)]
    pub description: String,
}

/// One fault from its start to its end: what the plots shade.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// The nemesis's id for the fault.
    pub id: u64,
    /// Its kind (`partition`, `kill`, ...).
    pub fault: String,
    /// Start, in nanoseconds since the run began.
    pub start: u64,
    /// End; `None` when the log never closed it (it lasted to the end).
    pub end: Option<u64>,
    /// The description of the `start` event.
    pub description: String,
}

impl FaultWindow {
    /// The end, with an open window running to `run_end`.
    pub fn end_or(&self, run_end: u64) -> u64 {
        self.end.unwrap_or(run_end).max(self.start)
    }
}

/// The parsed log: every readable event, the windows, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NemesisLog {
    /// Events in file order.
    pub events: Vec<NemesisEvent>,
    /// Windows in order of their start.
    pub windows: Vec<FaultWindow>,
    /// Lines that could not be used, in words.
    pub problems: Vec<String>,
}

impl NemesisLog {
    /// Parses the text of `nemesis.jsonl`; never fails, bad lines become
    /// [`NemesisLog::problems`].
    pub fn parse(text: &str) -> Self {
        let mut log = NemesisLog::default();
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let event: NemesisEvent = match serde_json::from_str(line) {
                Ok(event) => event,
                Err(err) => {
                    log.problems
                        .push(format!("nemesis.jsonl line {}: skipped: {err}", n + 1));
                    continue;
                }
            };
            match event.kind.as_str() {
                "start" => {
                    if open.contains_key(&event.id) {
                        log.problems.push(format!(
                            "nemesis.jsonl line {}: fault id {} started again before it ended",
                            n + 1,
                            event.id
                        ));
                    }
                    open.insert(event.id, log.windows.len());
                    log.windows.push(FaultWindow {
                        id: event.id,
                        fault: event.fault.clone(),
                        start: event.time,
                        end: None,
                        description: event.description.clone(),
                    });
                }
                "end" => match open.remove(&event.id) {
                    Some(at) => log.windows[at].end = Some(event.time),
                    None => log.problems.push(format!(
                        "nemesis.jsonl line {}: end of fault id {} that never started",
                        n + 1,
                        event.id
                    )),
                },
                other => {
                    log.problems.push(format!(
                        "nemesis.jsonl line {}: unknown event type {other:?}, skipped",
                        n + 1
                    ));
                    continue;
                }
            }
            log.events.push(event);
        }
        log.windows.sort_by_key(|w| (w.start, w.id));
        log
    }

    /// The distinct fault kinds, sorted, so every chart lists them alike.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.windows.iter().map(|w| w.fault.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// The time of the last event, 0 when there is none.
    pub fn last_time(&self) -> u64 {
        self.events.iter().map(|e| e.time).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_starts_with_ends_by_id_and_leaves_unended_faults_open() {
        let text = concat!(
            r#"{"time":1000,"type":"start","fault":"partition","id":1,"nodes":[1,2],"description":"halves"}"#,
            "\n",
            r#"{"time":1500,"type":"start","fault":"kill","id":2,"nodes":[3],"description":"kill n3"}"#,
            "\n",
            r#"{"time":2000,"type":"end","fault":"partition","id":1,"nodes":[],"description":"heal"}"#,
            "\n",
        );
        let log = NemesisLog::parse(text);
        assert_eq!(log.events.len(), 3);
        assert_eq!(log.windows.len(), 2);
        assert_eq!(log.windows[0].end, Some(2000));
        assert_eq!(log.windows[1].end, None);
        assert_eq!(log.windows[1].end_or(9000), 9000);
        assert_eq!(log.kinds(), vec!["kill", "partition"]);
        assert!(log.problems.is_empty());
    }

    #[test]
    fn bad_lines_are_skipped_and_named() {
        let text = concat!(
            "not json\n",
            r#"{"time":5,"type":"end","fault":"kill","id":9}"#,
            "\n",
            r#"{"time":6,"type":"middle","fault":"kill","id":9}"#,
            "\n",
            r#"{"time":7,"type":"start","fault":"pause","id":3,"nodes":[1],"descr"#,
        );
        let log = NemesisLog::parse(text);
        assert!(log.windows.is_empty());
        assert_eq!(log.problems.len(), 4, "{:?}", log.problems);
        assert!(log.problems[0].starts_with("nemesis.jsonl line 1"));
        assert!(log.problems[1].contains("never started"));
        assert!(log.problems[2].contains("unknown event type"));
    }
}

//! The progress line of a long run: elapsed time, outcomes so far and the
//! faults in force. A bar on a terminal; a plain status line every few
//! seconds otherwise (CI logs).

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::clients::LiveCounts;
use super::faults::ActiveFaults;

/// How often the plain status line is printed when stderr is not a terminal.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// A running progress display; [`Progress::finish`] stops it.
pub struct Progress {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing progress of a client phase of `length`.
    pub fn start(
        length: Duration,
        counts: Arc<LiveCounts>,
        active: ActiveFaults,
        terminal: bool,
    ) -> Progress {
        let started = tokio::time::Instant::now();
        let status = move || {
            let c = counts.get();
            let faults: Vec<String> = active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            let faults = if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join("; ")
            };
            format!(
                "ok {} fail {} info {} | faults: {faults}",
                c.ok, c.fail, c.info
            )
        };
        if terminal {
            let bar = ProgressBar::new(length.as_secs().max(1));
            bar.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            let shown = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    shown.set_position(started.elapsed().as_secs());
                    shown.set_message(status());
                }
            });
            Progress {
                task,
                bar: Some(bar),
            }
        } else {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(PLAIN_INTERVAL);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!(
                        "faultline: {:>4}s/{}s {}",
                        started.elapsed().as_secs(),
                        length.as_secs(),
                        status()
                    );
                }
            });
            Progress { task, bar: None }
        }
    }

    /// Stops the display.
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

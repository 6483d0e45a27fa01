//! The page itself: the charts, the header and the tables, put through the
//! `templates/report.html` template.
//!
//! Everything shown is formatted here, so the template only lays it out;
//! minijinja escapes every string (descriptions, config text, checker
//! output) because the template's name ends in `.html`. Only the SVG charts,
//! which `plotters` escapes itself, go in unescaped.

use std::path::{Component, Path};

use anyhow::{Context, Result};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::latency::{self, Quantiles, format_ms};
use super::load::{RunStore, StatusCounts};
use super::{throughput, timeline};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("../../templates/report.html");
/// The most nemesis events listed; the rest are counted.
const MAX_EVENT_ROWS: usize = 1000;

/// The three charts, as SVG documents.
pub struct Charts {
    timeline: String,
    latency: String,
    throughput: String,
    /// A note under the timeline (lanes left out), if any.
    timeline_note: Option<String>,
}

impl Charts {
    /// Draws every chart of the run.
    pub fn draw(store: &RunStore) -> Result<Self> {
        let (timeline, lanes) = timeline::render(&store.ops, &store.nemesis, store.end)
            .context("cannot draw the timeline")?;
        let latency = latency::render(&store.ops, &store.nemesis, store.end)
            .context("cannot draw the latency chart")?;
        let throughput = throughput::render(&store.ops, &store.nemesis, store.end)
            .context("cannot draw the throughput chart")?;
        let timeline_note = (lanes.hidden_ops > 0).then(|| {
            format!(
                "Only the first {} client lanes are drawn; {} operations on later lanes are not.",
                timeline::MAX_LANES,
                lanes.hidden_ops
            )
        });
        Ok(Charts {
            timeline,
            latency,
            throughput,
            timeline_note,
        })
    }

    /// The charts as the files written beside the report.
    pub fn files(&self) -> [(&'static str, &str); 3] {
        [
            ("timeline.svg", &self.timeline),
            ("latency.svg", &self.latency),
            ("throughput.svg", &self.throughput),
        ]
    }
}

/// One fact of the header.
#[derive(Serialize)]
struct Fact {
    name: &'static str,
    value: String,
}

/// One row of the latency table, formatted.
#[derive(Serialize)]
struct QuantileRow {
    f: String,
    ok: usize,
    fail: usize,
    info: usize,
    p50: String,
    p95: String,
    p99: String,
    max: String,
}

impl From<Quantiles> for QuantileRow {
    fn from(q: Quantiles) -> Self {
        let ms = |v: Option<f64>| v.map_or_else(|| "–".to_string(), precise_ms);
        QuantileRow {
            p50: ms(q.p50),
            p95: ms(q.p95),
            p99: ms(q.p99),
            max: ms(q.max),
            f: q.f,
            ok: q.ok,
            fail: q.fail,
            info: q.info,
        }
    }
}

/// One row of the nemesis table.
#[derive(Serialize)]
struct EventRow {
    time: String,
    kind: String,
    fault: String,
    id: u64,
    nodes: String,
    description: String,
}

/// Everything the template shows.
#[derive(Serialize)]
struct Page {
    title: String,
    verdict: &'static str,
    error: Option<String>,
    facts: Vec<Fact>,
    counts: StatusCounts,
    ops_per_s: String,
    problems: Vec<String>,
    counterexample_link: Option<String>,
    counterexample_missing: Option<String>,
    checker_summary: Option<String>,
    timeline_svg: String,
    timeline_note: Option<String>,
    latency_svg: String,
    throughput_svg: String,
    quantiles: Vec<QuantileRow>,
    windows: usize,
    events: Vec<EventRow>,
    events_left_out: usize,
    config: Option<String>,
}

/// Renders the page.
pub fn render(store_dir: &Path, store: &RunStore, charts: &Charts) -> Result<String> {
    let r = &store.results;
    let unknown = || "unknown".to_string();
    let duration = match r.duration_ms {
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None if store.end > 0 => format!("{:.1} s (from the logs)", store.end as f64 / 1e9),
        None => unknown(),
    };
    let counts = store.counts();
    let ops_per_s = match r.rate_ok_per_s {
        Some(rate) => format!("{rate:.1}"),
        None => {
            let first = store.ops.first().map_or(0, |op| op.call_time);
            let span = store.end.saturating_sub(first);
            if span > 0 {
                format!("{:.1}", counts.ok as f64 / (span as f64 / 1e9))
            } else {
                unknown()
            }
        }
    };
    let facts = vec![
        Fact {
            name: "test",
            value: r.test.clone().unwrap_or_else(unknown),
        },
        Fact {
            name: "seed",
            value: r.seed.map_or_else(unknown, |s| s.to_string()),
        },
        Fact {
            name: "started",
            value: r.started_at.clone().unwrap_or_else(unknown),
        },
        Fact {
            name: "duration",
            value: duration,
        },
        Fact {
            name: "nodes",
            value: r.nodes.map_or_else(unknown, |n| n.to_string()),
        },
        Fact {
            name: "concurrency",
            value: r.concurrency.map_or_else(unknown, |n| n.to_string()),
        },
        Fact {
            name: "workload",
            value: r.workload.clone().unwrap_or_else(unknown),
        },
        Fact {
            name: "nemesis",
            value: r.nemesis.as_ref().map_or_else(unknown, |n| {
                if n.is_empty() {
                    "none".to_string()
                } else {
                    n.join(", ")
                }
            }),
        },
        Fact {
            name: "network",
            value: r.net.clone().unwrap_or_else(unknown),
        },
        Fact {
            name: "cluster recovered",
            value: r
                .recovered
                .map_or_else(unknown, |ok| if ok { "yes" } else { "no" }.to_string()),
        },
    ];

    let (counterexample_link, counterexample_missing) = match r.timeline.as_deref() {
        Some(link) if is_inside(link) && store_dir.join(link).is_file() => {
            (Some(link.to_string()), None)
        }
        Some(link) => (None, Some(link.to_string())),
        None => (None, None),
    };

    let events = store
        .nemesis
        .events
        .iter()
        .take(MAX_EVENT_ROWS)
        .map(|e| EventRow {
            time: format!("{:.3}", e.time as f64 / 1e9),
            kind: e.kind.clone(),
            fault: e.fault.clone(),
            id: e.id,
            nodes: e
                .nodes
                .iter()
                .map(|n| format!("n{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            description: e.description.clone(),
        })
        .collect();

    let page = Page {
        title: r
            .test
            .clone()
            .unwrap_or_else(|| "faultline run".to_string()),
        verdict: r.verdict_class(),
        error: r.error.clone(),
        facts,
        counts,
        ops_per_s,
        problems: store.problems.clone(),
        counterexample_link,
        counterexample_missing,
        checker_summary: r.checker_summary(),
        timeline_svg: charts.timeline.clone(),
        timeline_note: charts.timeline_note.clone(),
        latency_svg: charts.latency.clone(),
        throughput_svg: charts.throughput.clone(),
        quantiles: latency::quantiles(&store.ops, store.end)
            .into_iter()
            .map(QuantileRow::from)
            .collect(),
        windows: store.nemesis.windows.len(),
        events,
        events_left_out: store.nemesis.events.len().saturating_sub(MAX_EVENT_ROWS),
        config: store.config.clone(),
    };
    let mut env = Environment::new();
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .context("the report template does not parse")?;
    env.get_template(TEMPLATE_NAME)?
        .render(context!(page => Value::from(Serde(&page))))
        .context("cannot render the report page")
}

/// A latency for the table: three significant figures.
fn precise_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format_ms(ms)
    }
}

/// Whether `link` names a file inside the store: relative, without `..`
/// and without a URL scheme, so the page cannot be made to point elsewhere.
fn is_inside(link: &str) -> bool {
    !link.is_empty()
        && !link.contains(':')
        && !link.contains('\\')
        && Path::new(link)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_links_are_followed() {
        assert!(is_inside("linearizability.html"));
        assert!(is_inside("check/linearizability.html"));
        assert!(!is_inside("../other/linearizability.html"));
        assert!(!is_inside("/etc/passwd"));
        assert!(!is_inside("javascript:alert(1)"));
        assert!(!is_inside(""));
    }

    #[test]
    fn table_latencies_keep_three_figures() {
        assert_eq!(precise_ms(1234.4), "1234 ms");
        assert_eq!(precise_ms(12.34), "12.3 ms");
        assert_eq!(precise_ms(0.25), "250 µs");
    }
}

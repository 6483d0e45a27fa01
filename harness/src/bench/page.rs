//! `bench.html`: the bench as a person reads it — the headline, the setup,
//! the table, the two charts and what the reference was — through the
//! `templates/bench.html` template. The page opens from disk: CSS and SVG
//! are inlined. minijinja escapes every string; only the charts, which
//! plotters escapes itself, go in unescaped.

use anyhow::{Context, Result};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::charts;
use super::figures::{BenchReport, format_ms, thousands};

const TEMPLATE_NAME: &str = "bench.html";
const TEMPLATE: &str = include_str!("../../templates/bench.html");

/// One fact of the header.
#[derive(Serialize)]
struct Fact {
    name: &'static str,
    value: String,
}

/// One row of the table, formatted.
#[derive(Serialize)]
struct Row {
    clients: usize,
    ops_per_sec: String,
    p50: String,
    p99: String,
    p999: String,
    errors: u64,
    etcd_ops_per_sec: Option<String>,
    etcd_p50: Option<String>,
    etcd_p99: Option<String>,
    ratio: Option<String>,
}

/// Everything the template shows.
#[derive(Serialize)]
struct Page {
    title: String,
    summary: String,
    facts: Vec<Fact>,
    rows: Vec<Row>,
    with_etcd: bool,
    throughput_svg: String,
    latency_svg: String,
    reference_source: Option<&'static str>,
    departures: Vec<String>,
}

/// Renders the page of `report`.
pub fn render(report: &BenchReport) -> Result<String> {
    let c = &report.config;
    let reference = report.reference.as_ref();
    let dash = || "–".to_string();
    let facts = vec![
        Fact {
            name: "deployment",
            value: c.deployment(),
        },
        Fact {
            name: "mix",
            value: c.mix.to_string(),
        },
        Fact {
            name: "keys",
            value: format!("{} (uniform)", thousands(c.keys as f64)),
        },
        Fact {
            name: "value size",
            value: format!("{} bytes", c.value_size),
        },
        Fact {
            name: "per point",
            value: format!(
                "{} warm-up + {} measured",
                humantime::format_duration(c.warmup),
                humantime::format_duration(c.duration)
            ),
        },
        Fact {
            name: "runs",
            value: if c.runs == 1 {
                "1".to_string()
            } else {
                format!("{} (median shown)", c.runs)
            },
        },
        Fact {
            name: "server",
            value: c
                .server_bin
                .as_ref()
                .map_or("faultline kvd (built in)".to_string(), |p| {
                    p.display().to_string()
                }),
        },
        Fact {
            name: "network",
            value: c.network.to_string(),
        },
        Fact {
            name: "started",
            value: report.started_at.clone(),
        },
        Fact {
            name: "took",
            value: format!("{:.0} s", report.elapsed_s),
        },
    ];
    let rows = report
        .points
        .iter()
        .map(|p| Row {
            clients: p.clients,
            ops_per_sec: thousands(p.ops_per_sec),
            p50: format_ms(p.p50_ms),
            p99: format_ms(p.p99_ms),
            p999: format_ms(p.p999_ms),
            errors: p.errors,
            etcd_ops_per_sec: p.etcd.map(|e| thousands(e.ops_per_sec)),
            etcd_p50: p.etcd.map(|e| e.p50_ms.map_or_else(dash, format_ms)),
            etcd_p99: p.etcd.map(|e| e.p99_ms.map_or_else(dash, format_ms)),
            ratio: p.ratio.map(|r| format!("{r:.2}×")),
        })
        .collect();
    let page = Page {
        title: format!("kvd {} · {}", c.shape(), c.mix_name()),
        summary: report.summary.clone(),
        facts,
        rows,
        with_etcd: report.points.iter().any(|p| p.etcd.is_some()),
        throughput_svg: charts::throughput(&report.points, reference)
            .context("cannot draw the throughput chart")?,
        latency_svg: charts::latency(&report.points, reference)
            .context("cannot draw the latency chart")?,
        reference_source: reference.map(|r| r.source),
        departures: reference.map(|r| r.departures.clone()).unwrap_or_default(),
    };
    let mut env = Environment::new();
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .context("the bench template does not parse")?;
    env.get_template(TEMPLATE_NAME)?
        .render(context!(page => Value::from(Serde(&page))))
        .context("cannot render the bench page")
}

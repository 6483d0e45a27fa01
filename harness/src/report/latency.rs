//! Latency over time, and latency quantiles per function.
//!
//! One point per operation at its invocation time, at the height of its
//! latency on a log scale, coloured by outcome. An `info` operation sits at
//! the moment its client gave up (the timeout); one the run ended on sits at
//! the end of the run, both are lower bounds. Points that land on the same
//! pixel with the same outcome are drawn once, which keeps the picture's
//! size bounded by its area rather than by the length of the run.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use histories::{OpStatus, Operation};
use plotters::prelude::*;
use serde::Serialize;

use super::chart::{
    DESC_SIZE, FONT, LABEL_SIZE, LEGEND_H, LegendMark, draw_legend, fault_legend, secs,
    shade_faults, status_colour, status_name, time_range,
};
use super::faults::NemesisLog;
use super::load::op_end;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 460;
/// The shortest latency drawn, in milliseconds: the log scale needs a floor.
const FLOOR_MS: f64 = 0.001;
/// The most points drawn: beyond it, points closer than a few pixels merge.
const MAX_POINTS: usize = 8000;

/// An operation's latency in milliseconds, `run_end` standing in for a
/// completion that never came.
pub fn latency_ms(op: &Operation, run_end: u64) -> f64 {
    let end = op_end(op).unwrap_or(run_end);
    (end.saturating_sub(op.call_time) as f64 / 1e6).max(FLOOR_MS)
}

/// Latency quantiles of one function's successful operations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantiles {
    /// The function (`get`, `put`, ...).
    pub f: String,
    /// Operations that completed `ok`.
    pub ok: usize,
    /// Operations that failed.
    pub fail: usize,
    /// Operations whose outcome is unknown.
    pub info: usize,
    /// Median latency of the `ok` operations, in milliseconds; `None`
    /// without any (likewise below).
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// The slowest.
    pub max: Option<f64>,
}

/// Quantiles per function of the `ok` operations, by nearest rank.
pub fn quantiles(ops: &[Operation], run_end: u64) -> Vec<Quantiles> {
    let mut by_f: BTreeMap<&str, (Vec<f64>, usize, usize)> = BTreeMap::new();
    for op in ops {
        let entry = by_f.entry(op.f.as_str()).or_default();
        match op.status {
            OpStatus::Ok => entry.0.push(latency_ms(op, run_end)),
            OpStatus::Fail => entry.1 += 1,
            OpStatus::Info => entry.2 += 1,
        }
    }
    by_f.into_iter()
        .map(|(f, (mut ok, fail, info))| {
            ok.sort_unstable_by(f64::total_cmp);
            let rank = |q: f64| -> Option<f64> {
                if ok.is_empty() {
                    return None;
                }
                let i = ((q * ok.len() as f64).ceil() as usize).clamp(1, ok.len()) - 1;
                Some(ok[i])
            };
            Quantiles {
                f: f.to_string(),
                ok: ok.len(),
                fail,
                info,
                p50: rank(0.50),
                p95: rank(0.95),
                p99: rank(0.99),
                max: ok.last().copied(),
            }
        })
        .collect()
}

/// The powers of ten around the latencies, so the log axis has round ends.
fn latency_range(ops: &[Operation], run_end: u64) -> std::ops::Range<f64> {
    super::chart::decades(ops.iter().map(|op| latency_ms(op, run_end)), 0.1..1000.0)
}

/// Draws the latency scatter as an SVG document.
pub fn render(ops: &[Operation], nemesis: &NemesisLog, run_end: u64) -> Result<String> {
    let y_range = latency_range(ops, run_end);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend_area, plot_area) = root.split_vertically(LEGEND_H);
        let mut legend: Vec<(String, LegendMark)> = [OpStatus::Ok, OpStatus::Fail]
            .into_iter()
            .map(|s| {
                (
                    status_name(s).to_string(),
                    LegendMark::Dot(status_colour(s)),
                )
            })
            .collect();
        legend.push((
            "info (at timeout: a lower bound)".to_string(),
            LegendMark::Dot(status_colour(OpStatus::Info)),
        ));
        legend.extend(fault_legend(&nemesis.kinds()));
        draw_legend(&legend_area, &legend)?;

        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(96)
            .build_cartesian_2d(time_range(run_end), y_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("time of invocation since the run began (s)")
            .y_desc("latency (ms, log scale)")
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .y_label_formatter(&|v| format_ms(*v))
            .light_line_style(RGBColor(0xee, 0xf2, 0xf6))
            .draw()?;
        shade_faults(
            &mut chart,
            &nemesis.windows,
            run_end,
            y_range.start,
            y_range.end,
        )?;

        // ok first, so the rarer fail and info points are drawn on top
        let points: Vec<Point> = [OpStatus::Ok, OpStatus::Fail, OpStatus::Info]
            .into_iter()
            .flat_map(|status| ops.iter().filter(move |op| op.status == status))
            .map(|op| {
                let at = (secs(op.call_time), latency_ms(op, run_end));
                Point {
                    at,
                    status: op.status,
                    pixel: chart.backend_coord(&at),
                }
            })
            .collect();
        chart.draw_series(
            thin(&points, MAX_POINTS)
                .into_iter()
                .map(|p| Circle::new(p.at, 2, status_colour(p.status).mix(0.7).filled())),
        )?;
        root.present()?;
    }
    Ok(svg)
}

/// One operation on the chart.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    /// Invocation (s) and latency (ms).
    at: (f64, f64),
    status: OpStatus,
    /// Where it lands, in pixels.
    pixel: (i32, i32),
}

/// Keeps one point per grid cell and outcome, the cells growing from one
/// pixel until at most `max` points are left.
fn thin(points: &[Point], max: usize) -> Vec<Point> {
    let mut cell = 1;
    loop {
        let mut seen = HashSet::new();
        let kept: Vec<Point> = points
            .iter()
            .filter(|p| seen.insert((p.pixel.0 / cell, p.pixel.1 / cell, p.status)))
            .copied()
            .collect();
        if kept.len() <= max {
            return kept;
        }
        cell += 1;
    }
}

/// A latency in milliseconds, as short as it can be said.
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{} µs", (ms * 1000.0).round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: &str, call: u64, ret: u64, status: OpStatus) -> Operation {
        Operation {
            id: 0,
            process: 0,
            f: f.to_string(),
            key: None,
            input: serde_json::Value::Null,
            output: None,
            status,
            call_index: 0,
            call_time: call,
            return_index: Some(1),
            return_time: (status != OpStatus::Info).then_some(ret),
            info_time: (status == OpStatus::Info).then_some(ret),
        }
    }

    #[test]
    fn quantiles_are_per_function_by_nearest_rank_over_ok_operations() {
        let mut ops: Vec<Operation> = (1..=100)
            .map(|ms| op("get", 0, ms * 1_000_000, OpStatus::Ok))
            .collect();
        ops.push(op("get", 0, 5_000_000_000, OpStatus::Info));
        ops.push(op("put", 0, 3_000_000, OpStatus::Fail));
        let q = quantiles(&ops, 10_000_000_000);
        assert_eq!(q.len(), 2);
        let get = &q[0];
        assert_eq!(
            (get.f.as_str(), get.ok, get.fail, get.info),
            ("get", 100, 0, 1)
        );
        assert_eq!(get.p50, Some(50.0));
        assert_eq!(get.p95, Some(95.0));
        assert_eq!(get.p99, Some(99.0));
        assert_eq!(get.max, Some(100.0));
        let put = &q[1];
        assert_eq!((put.ok, put.fail, put.p50), (0, 1, None));
    }

    #[test]
    fn an_unfinished_operation_lasts_until_the_end_of_the_run() {
        let mut open = op("get", 1_000_000, 0, OpStatus::Info);
        open.info_time = None;
        assert_eq!(latency_ms(&open, 11_000_000), 10.0);
    }

    #[test]
    fn thinning_merges_nearby_points_of_one_outcome_until_few_enough() {
        let at = |x, y, status| Point {
            at: (0.0, 0.0),
            status,
            pixel: (x, y),
        };
        let points = vec![
            at(0, 0, OpStatus::Ok),
            at(0, 0, OpStatus::Ok),
            at(0, 0, OpStatus::Fail),
            at(1, 0, OpStatus::Ok),
            at(3, 3, OpStatus::Ok),
        ];
        assert_eq!(thin(&points, 10).len(), 4);
        // 2 px cells: (1, 0) joins (0, 0)
        assert_eq!(thin(&points, 3).len(), 3);
        // 4 px cells: one point per outcome
        assert_eq!(thin(&points, 2).len(), 2);
    }

    #[test]
    fn the_log_axis_spans_whole_decades() {
        let ops = vec![
            op("get", 0, 2_000_000, OpStatus::Ok),
            op("get", 0, 300_000_000, OpStatus::Ok),
        ];
        assert_eq!(latency_range(&ops, 1), 1.0..1000.0);
        assert_eq!(latency_range(&[], 1), 0.1..1000.0);
    }
}

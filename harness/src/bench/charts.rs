//! The two pictures of a bench: throughput against clients, and latency
//! percentiles against clients, each with etcd's figures where published.
//!
//! Client counts grow geometrically (1, 16, 64, 256), so the client axis is
//! logarithmic in base 2; latencies span orders of magnitude, so their axis
//! is logarithmic in base 10. kvd is drawn in solid colour, etcd dashed in
//! grey, so the reference reads as a reference. The layout (legend strip on
//! top, fonts, ink) is the run report's ([`crate::report::chart`]).

use anyhow::Result;
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::figures::{Point, Reference, thousands};
use crate::report::chart::{DESC_SIZE, FONT, LABEL_SIZE, LEGEND_H, LegendMark, draw_legend};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 420;

/// kvd's throughput and median.
const KVD: RGBColor = RGBColor(0x24, 0x57, 0xc5);
/// kvd's 99th percentile.
const KVD_P99: RGBColor = RGBColor(0xe0, 0x8e, 0x0b);
/// kvd's 99.9th percentile.
const KVD_P999: RGBColor = RGBColor(0xcf, 0x3a, 0x3a);
/// Every etcd figure.
const ETCD: RGBColor = RGBColor(0x7b, 0x87, 0x94);
/// Grid lines.
const GRID: RGBColor = RGBColor(0xee, 0xf2, 0xf6);

/// The client axis: a little room either side of the measured counts, so
/// end points are not drawn on the frame.
fn client_range(points: &[Point]) -> std::ops::Range<f64> {
    let lo = points.iter().map(|p| p.clients).min().unwrap_or(1) as f64;
    let hi = points.iter().map(|p| p.clients).max().unwrap_or(1) as f64;
    (lo / 1.5)..(hi * 1.5)
}

/// How many labels the base-2 client axis can carry: one per power of two.
fn client_labels(range: &std::ops::Range<f64>) -> usize {
    ((range.end / range.start).log2().floor() as usize).max(1) + 1
}

/// A series line with a dot at every measurement.
fn line_with_dots<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    data: &[(f64, f64)],
    colour: RGBColor,
    dashed: bool,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    if dashed {
        chart
            .draw_series(DashedLineSeries::new(
                data.iter().copied(),
                8,
                5,
                colour.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(
                data.iter()
                    .map(|&p| Circle::new(p, 4, colour.stroke_width(2))),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    } else {
        chart
            .draw_series(LineSeries::new(
                data.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(data.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// etcd's figures for `pick`, as (clients, value) points.
fn etcd_series(
    reference: Option<&Reference>,
    pick: impl Fn(&super::reference::EtcdFigure) -> Option<f64>,
) -> Vec<(f64, f64)> {
    reference
        .map(|r| {
            r.figures
                .iter()
                .filter_map(|f| pick(f).map(|v| (f.clients as f64, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Throughput against clients, as an SVG document.
pub fn throughput(points: &[Point], reference: Option<&Reference>) -> Result<String> {
    let ours: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.clients as f64, p.ops_per_sec))
        .collect();
    let x_range = client_range(points);
    // Only the reference points inside the measured range: the line
    // compares, it does not extrapolate.
    let etcd: Vec<(f64, f64)> = etcd_series(reference, |f| Some(f.ops_per_sec))
        .into_iter()
        .filter(|(x, _)| x_range.contains(x))
        .collect();
    let peak = ours.iter().chain(&etcd).map(|p| p.1).fold(0.0f64, f64::max);
    let y_hi = (peak * 1.15).max(1.0);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend_area, plot_area) = root.split_vertically(LEGEND_H);
        let mut legend = vec![("kvd".to_string(), LegendMark::Line(KVD))];
        if !etcd.is_empty() {
            legend.push(("etcd 3.4 (reference)".to_string(), LegendMark::Line(ETCD)));
        }
        draw_legend(&legend_area, &legend)?;

        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(96)
            .build_cartesian_2d(x_range.clone().log_scale().base(2.0), 0.0..y_hi)?;
        chart
            .configure_mesh()
            .x_labels(client_labels(&x_range))
            .x_max_light_lines(0)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("concurrent clients (log scale)")
            .y_desc("throughput (ops/s)")
            .y_label_formatter(&|v| thousands(*v))
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .light_line_style(GRID)
            .draw()?;
        if !etcd.is_empty() {
            line_with_dots(&mut chart, &etcd, ETCD, true)?;
        }
        line_with_dots(&mut chart, &ours, KVD, false)?;
        root.present()?;
    }
    Ok(svg)
}

/// The powers of ten around `values`, so the log axis has round ends.
fn decades(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    crate::report::chart::decades(values, 0.1..100.0)
}

/// Latency percentiles against clients, as an SVG document.
pub fn latency(points: &[Point], reference: Option<&Reference>) -> Result<String> {
    let x_range = client_range(points);
    let series = |pick: fn(&Point) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (p.clients as f64, pick(p)))
            .filter(|(_, v)| *v > 0.0)
            .collect()
    };
    let ours = [
        ("kvd p50", KVD, series(|p| p.p50_ms)),
        ("kvd p99", KVD_P99, series(|p| p.p99_ms)),
        ("kvd p99.9", KVD_P999, series(|p| p.p999_ms)),
    ];
    let in_range = |s: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        s.into_iter().filter(|(x, _)| x_range.contains(x)).collect()
    };
    let etcd = [
        ("etcd p50", in_range(etcd_series(reference, |f| f.p50_ms))),
        ("etcd p99", in_range(etcd_series(reference, |f| f.p99_ms))),
    ];
    let y_range = decades(
        ours.iter()
            .flat_map(|(_, _, s)| s.iter().map(|p| p.1))
            .chain(etcd.iter().flat_map(|(_, s)| s.iter().map(|p| p.1))),
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend_area, plot_area) = root.split_vertically(LEGEND_H);
        let mut legend: Vec<(String, LegendMark)> = ours
            .iter()
            .map(|(name, colour, _)| (name.to_string(), LegendMark::Line(*colour)))
            .collect();
        if etcd.iter().any(|(_, s)| !s.is_empty()) {
            legend.push((
                "etcd p50 / p99 (reference, dashed)".to_string(),
                LegendMark::Line(ETCD),
            ));
        }
        draw_legend(&legend_area, &legend)?;

        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(96)
            .build_cartesian_2d(x_range.clone().log_scale().base(2.0), y_range.log_scale())?;
        chart
            .configure_mesh()
            .x_labels(client_labels(&x_range))
            .x_max_light_lines(0)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("concurrent clients (log scale)")
            .y_desc("latency (ms, log scale)")
            .y_label_formatter(&|v| format!("{v}"))
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .light_line_style(GRID)
            .draw()?;
        for (_, line) in &etcd {
            if !line.is_empty() {
                line_with_dots(&mut chart, line, ETCD, true)?;
            }
        }
        for (_, colour, line) in &ours {
            line_with_dots(&mut chart, line, *colour, false)?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_axis_leaves_room_around_a_single_point() {
        let r = client_range(&[]);
        assert!(r.start < 1.0 && r.end > 1.0);
        assert_eq!(client_labels(&(32.0..128.0)), 3);
        assert_eq!(client_labels(&(0.5..512.0)), 11);
    }

    #[test]
    fn latency_decades_round_out_to_powers_of_ten() {
        assert_eq!(decades([0.44, 27.0, 69.0].into_iter()), 0.1..100.0);
        assert_eq!(decades([5.0].into_iter()), 1.0..10.0);
        assert_eq!(decades(std::iter::empty()), 0.1..100.0);
    }
}

//! Throughput over time: completions per second, one line per outcome.
//!
//! Operations are counted in the bin of their completion (an `info` in the
//! bin where its client gave up; one that never ended is not counted). The
//! bin width is the smallest round width that keeps the line within
//! [`MAX_BINS`] points, so a short run is not a single bar and a long one
//! not a cloud.

use anyhow::Result;
use histories::{OpStatus, Operation};
use plotters::prelude::*;

use super::chart::{
    DESC_SIZE, FONT, LABEL_SIZE, LEGEND_H, LegendMark, draw_legend, fault_legend, secs,
    shade_faults, status_colour, status_name, time_range,
};
use super::faults::NemesisLog;
use super::load::op_end;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 380;
/// The most points a line has.
const MAX_BINS: u64 = 150;
/// Bin widths to choose from, in milliseconds.
const BIN_WIDTHS_MS: [u64; 13] = [
    10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// Completions per bin for each outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Bins {
    /// Width of one bin, in nanoseconds.
    pub width: u64,
    /// Completions per bin: ok, fail, info.
    pub counts: Vec<[u64; 3]>,
}

impl Bins {
    /// Counts completions of `ops` over a run of `run_end` nanoseconds.
    pub fn count(ops: &[Operation], run_end: u64) -> Self {
        let width_ms = BIN_WIDTHS_MS
            .iter()
            .copied()
            .find(|&w| run_end / (w * 1_000_000) < MAX_BINS)
            .unwrap_or(BIN_WIDTHS_MS[BIN_WIDTHS_MS.len() - 1]);
        let width = width_ms * 1_000_000;
        let n = usize::try_from(run_end / width + 1).unwrap_or(usize::MAX);
        let mut counts = vec![[0u64; 3]; n];
        for op in ops {
            let Some(end) = op_end(op) else { continue };
            let bin = usize::try_from(end / width)
                .unwrap_or(usize::MAX)
                .min(n - 1);
            counts[bin][slot(op.status)] += 1;
        }
        Bins { width, counts }
    }

    /// The line of one outcome: (bin centre in seconds, operations per
    /// second).
    pub fn series(&self, status: OpStatus) -> Vec<(f64, f64)> {
        let per_s = 1e9 / self.width as f64;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let centre = (i as f64 + 0.5) * secs(self.width);
                (centre, c[slot(status)] as f64 * per_s)
            })
            .collect()
    }
}

fn slot(status: OpStatus) -> usize {
    match status {
        OpStatus::Ok => 0,
        OpStatus::Fail => 1,
        OpStatus::Info => 2,
    }
}

/// Draws the throughput lines as an SVG document.
pub fn render(ops: &[Operation], nemesis: &NemesisLog, run_end: u64) -> Result<String> {
    let bins = Bins::count(ops, run_end);
    let lines: Vec<(OpStatus, Vec<(f64, f64)>)> = [OpStatus::Ok, OpStatus::Fail, OpStatus::Info]
        .into_iter()
        .map(|s| (s, bins.series(s)))
        .collect();
    let peak = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_hi = (peak * 1.1).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend_area, plot_area) = root.split_vertically(LEGEND_H);
        let mut legend: Vec<(String, LegendMark)> = lines
            .iter()
            .map(|(s, _)| {
                (
                    status_name(*s).to_string(),
                    LegendMark::Line(status_colour(*s)),
                )
            })
            .collect();
        legend.extend(fault_legend(&nemesis.kinds()));
        draw_legend(&legend_area, &legend)?;

        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(96)
            .build_cartesian_2d(time_range(run_end), 0.0..y_hi)?;
        let bin_desc = humantime::format_duration(std::time::Duration::from_nanos(bins.width));
        chart
            .configure_mesh()
            .x_desc(format!(
                "time of completion since the run began (s), {bin_desc} bins"
            ))
            .y_desc("completions (ops/s)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .light_line_style(RGBColor(0xee, 0xf2, 0xf6))
            .draw()?;
        shade_faults(&mut chart, &nemesis.windows, run_end, 0.0, y_hi)?;
        for (status, line) in lines {
            chart.draw_series(LineSeries::new(line, status_colour(status).stroke_width(2)))?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(end: u64, status: OpStatus) -> Operation {
        Operation {
            id: 0,
            process: 0,
            f: "put".to_string(),
            key: None,
            input: serde_json::Value::Null,
            output: None,
            status,
            call_index: 0,
            call_time: 0,
            return_index: Some(1),
            return_time: (status != OpStatus::Info).then_some(end),
            info_time: (status == OpStatus::Info).then_some(end),
        }
    }

    #[test]
    fn completions_are_counted_per_second_in_their_bin() {
        let s = 1_000_000_000;
        let ops = vec![
            done(s / 2, OpStatus::Ok),
            done(s / 2 + 1, OpStatus::Ok),
            done(3 * s / 2, OpStatus::Fail),
            done(3 * s / 2, OpStatus::Info),
        ];
        // 20 s: 200 ms bins are the smallest under 150 of them
        let bins = Bins::count(&ops, 20 * s);
        assert_eq!(bins.width, 200_000_000);
        let ok = bins.series(OpStatus::Ok);
        assert_eq!(ok[2], (0.5, 10.0));
        assert_eq!(bins.series(OpStatus::Fail)[7].1, 5.0);
        assert_eq!(bins.series(OpStatus::Info)[7].1, 5.0);
        assert_eq!(ok.iter().map(|p| p.1).sum::<f64>(), 10.0);
    }

    #[test]
    fn an_operation_that_never_ended_is_not_a_completion() {
        let mut open = done(0, OpStatus::Info);
        open.info_time = None;
        let bins = Bins::count(&[open], 1_000_000_000);
        assert!(bins.counts.iter().all(|c| c == &[0, 0, 0]));
    }
}

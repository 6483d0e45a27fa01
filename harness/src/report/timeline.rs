//! The timeline: one lane per client, one bar per operation from invocation
//! to completion, with the fault windows above and behind.
//!
//! A client that times out records `info` and hands its place to a fresh
//! process number, so processes come and go while clients stay. Lanes are
//! therefore clients, not processes: a process takes the first lane that is
//! free when it starts, and a lane is labelled with its first process and
//! how many took it over later.
//!
//! The picture stays small however long the run: bars that would touch
//! within one pixel merge into one bar coloured by the worst outcome among
//! them (info over fail over ok), so a lane holds at most about one bar per
//! pixel of width, and lanes beyond [`MAX_LANES`] are left out (the caption
//! says how many operations that hides).

use std::collections::BTreeMap;

use anyhow::Result;
use histories::{OpStatus, Operation};
use plotters::prelude::*;
use plotters::style::text_anchor;

use super::chart::{
    DESC_SIZE, FONT, INK, LABEL_SIZE, LEGEND_H, LegendMark, SMALL_SIZE, draw_legend, fault_colour,
    fault_legend, secs, shade_faults, status_colour, time_range,
};
use super::faults::NemesisLog;
use super::load::op_end;

/// Width of the picture, in pixels.
const WIDTH: u32 = 1400;
/// Width of the lane label column and of the right margin.
const LEFT: u32 = 96;
const RIGHT: u32 = 24;
/// The most lanes drawn.
pub const MAX_LANES: usize = 48;
/// The most bars drawn: beyond it, bars merge across a few pixels.
const MAX_BARS: usize = 8000;
/// The height all lanes aim to share, and the bounds of one lane.
const LANES_TARGET_H: u32 = 440;
const MIN_ROW_H: u32 = 7;
const MAX_ROW_H: u32 = 22;
/// Height under the plot for the time axis.
const AXIS_H: u32 = 52;
/// Opacity of the fault bars in their strip above the lanes.
const FAULT_BAR_ALPHA: f64 = 0.8;

/// One bar: an operation, or several merged at the picture's resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Lane, 0 at the top.
    pub lane: usize,
    /// Invocation, in nanoseconds.
    pub start: u64,
    /// Completion; the end of the run for an operation that never ended.
    pub end: u64,
    /// The worst outcome among the operations of the bar.
    pub status: OpStatus,
    /// True when the run ended before any completion was recorded.
    pub open: bool,
}

/// Operations laid out on lanes.
#[derive(Debug, Default, PartialEq)]
pub struct Lanes {
    /// The processes of each lane, in the order they used it.
    pub processes: Vec<Vec<u64>>,
    /// Bars, one per operation, by lane then time.
    pub bars: Vec<Bar>,
    /// When a client gave up on an operation (`info`): lane and time.
    pub gave_up: Vec<(usize, u64)>,
    /// Operations on lanes past [`MAX_LANES`], not drawn.
    pub hidden_ops: usize,
}

/// Puts every process on the first lane free when it starts.
pub fn assign_lanes(ops: &[Operation], run_end: u64, max_lanes: usize) -> Lanes {
    // first invocation and end of the last operation of each process
    let mut spans: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in ops {
        let end = op_end(op).unwrap_or(run_end).max(op.call_time);
        let span = spans.entry(op.process).or_insert((op.call_time, end));
        span.0 = span.0.min(op.call_time);
        span.1 = span.1.max(end);
    }
    let mut order: Vec<(u64, u64, u64)> = spans.iter().map(|(&p, &(s, e))| (s, p, e)).collect();
    order.sort_unstable();
    let mut free_at: Vec<u64> = Vec::new();
    let mut lanes = Lanes::default();
    let mut lane_of: BTreeMap<u64, Option<usize>> = BTreeMap::new();
    for (start, process, end) in order {
        let lane = match free_at.iter().position(|&f| f <= start) {
            Some(lane) => Some(lane),
            None if free_at.len() < max_lanes => {
                free_at.push(0);
                lanes.processes.push(Vec::new());
                Some(free_at.len() - 1)
            }
            None => None,
        };
        if let Some(lane) = lane {
            // a process may end where the next starts: keep them apart
            free_at[lane] = end.saturating_add(1);
            lanes.processes[lane].push(process);
        }
        lane_of.insert(process, lane);
    }
    // show lanes in the order of their first process, not of first use
    let mut by_first: Vec<usize> = (0..lanes.processes.len()).collect();
    by_first.sort_by_key(|&lane| lanes.processes[lane][0]);
    let mut position = vec![0; by_first.len()];
    for (at, &lane) in by_first.iter().enumerate() {
        position[lane] = at;
    }
    lanes.processes = by_first
        .iter()
        .map(|&lane| std::mem::take(&mut lanes.processes[lane]))
        .collect();
    for op in ops {
        let Some(lane) = lane_of
            .get(&op.process)
            .copied()
            .flatten()
            .map(|lane| position[lane])
        else {
            lanes.hidden_ops += 1;
            continue;
        };
        let end = op_end(op);
        lanes.bars.push(Bar {
            lane,
            start: op.call_time,
            end: end.unwrap_or(run_end).max(op.call_time),
            status: op.status,
            open: end.is_none(),
        });
        if let Some(t) = op.info_time {
            lanes.gave_up.push((lane, t));
        }
    }
    lanes
        .bars
        .sort_by_key(|b| (b.lane, b.start, b.end, severity(b.status)));
    lanes.gave_up.sort_unstable();
    lanes
}

/// Merges bars of one lane that lie closer than `gap` nanoseconds, and
/// widens every bar to at least `gap` so it shows.
pub fn coalesce(bars: &[Bar], gap: u64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::with_capacity(bars.len());
    for bar in bars {
        let mut bar = bar.clone();
        bar.end = bar.end.max(bar.start.saturating_add(gap));
        match out.last_mut() {
            Some(last) if last.lane == bar.lane && bar.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(bar.end);
                last.open |= bar.open;
                if severity(bar.status) > severity(last.status) {
                    last.status = bar.status;
                }
            }
            _ => out.push(bar),
        }
    }
    out
}

/// Coalesces bars across `gap`, doubling it until at most `max` are left
/// (once the gap spans the run, each lane is one bar, so this ends).
pub fn fit(bars: &[Bar], gap: u64, max: usize) -> Vec<Bar> {
    let mut gap = gap.max(1);
    loop {
        let merged = coalesce(bars, gap);
        if merged.len() <= max || gap == u64::MAX {
            return merged;
        }
        gap = gap.saturating_mul(2);
    }
}

/// Which outcome wins when bars merge: the one a reader must not miss.
fn severity(status: OpStatus) -> u8 {
    match status {
        OpStatus::Ok => 0,
        OpStatus::Fail => 1,
        OpStatus::Info => 2,
    }
}

/// The label of a lane: its first process, and how many followed.
fn lane_label(processes: &[u64]) -> String {
    match processes {
        [] => String::new(),
        [only] => format!("p{only}"),
        [first, rest @ ..] => format!("p{first} +{}", rest.len()),
    }
}

/// Draws the timeline as an SVG document.
pub fn render(ops: &[Operation], nemesis: &NemesisLog, run_end: u64) -> Result<(String, Lanes)> {
    let lanes = assign_lanes(ops, run_end, MAX_LANES);
    let kinds = nemesis.kinds();
    let lane_rows = lanes.processes.len().max(1);
    let rows = lane_rows + kinds.len();
    let row_h = (LANES_TARGET_H / lane_rows as u32).clamp(MIN_ROW_H, MAX_ROW_H);
    let height = LEGEND_H + 12 + rows as u32 * row_h + AXIS_H;
    let plot_w = u64::from(WIDTH - LEFT - RIGHT);
    let ns_per_px = (run_end / plot_w).max(1);
    let bars = fit(&lanes.bars, ns_per_px, MAX_BARS);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (legend_area, plot_area) = root.split_vertically(LEGEND_H);
        let mut legend = vec![
            (
                "ok".to_string(),
                LegendMark::Swatch(status_colour(OpStatus::Ok), 1.0),
            ),
            (
                "fail".to_string(),
                LegendMark::Swatch(status_colour(OpStatus::Fail), 1.0),
            ),
            (
                "info (outcome unknown)".to_string(),
                LegendMark::Swatch(status_colour(OpStatus::Info), 1.0),
            ),
            ("client gave up (info)".to_string(), LegendMark::Cross(INK)),
        ];
        legend.extend(fault_legend(&kinds));
        draw_legend(&legend_area, &legend)?;

        let top = rows as f64;
        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(12)
            .margin_right(RIGHT)
            .x_label_area_size(AXIS_H - 12)
            .y_label_area_size(LEFT)
            .build_cartesian_2d(time_range(run_end), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("time since the run began (s)")
            .y_desc("client lane (first process +later ones)")
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, LABEL_SIZE))
            .light_line_style(RGBColor(0xee, 0xf2, 0xf6))
            .draw()?;

        // row r (0 at the top) spans [top - r - 1, top - r]
        let row_y = |r: usize| (top - r as f64 - 1.0, top - r as f64);
        let lanes_lo = 0.0;
        let lanes_hi = lane_rows as f64;
        shade_faults(&mut chart, &nemesis.windows, run_end, lanes_lo, lanes_hi)?;

        let pad = (row_h / 6).max(1);
        chart.draw_series(bars.iter().map(|b| {
            let (lo, hi) = row_y(kinds.len() + b.lane);
            let colour = status_colour(b.status);
            let style = if b.open {
                colour.mix(0.45).filled()
            } else {
                colour.filled()
            };
            let mut rect = Rectangle::new([(secs(b.start), lo), (secs(b.end), hi)], style);
            rect.set_margin(pad, pad, 0, 0);
            rect
        }))?;
        let cross = (row_h / 3).clamp(2, 5);
        chart.draw_series(gave_up_marks(&lanes.gave_up, ns_per_px).map(|(lane, t)| {
            let (lo, hi) = row_y(kinds.len() + lane);
            Cross::new((secs(t), (lo + hi) / 2.0), cross, INK.stroke_width(1))
        }))?;

        // the fault strip: one row per kind, one bar per window
        let label = TextStyle::from((FONT, SMALL_SIZE).into_font())
            .color(&WHITE)
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Center,
                text_anchor::VPos::Center,
            ));
        for (k, kind) in kinds.iter().enumerate() {
            let (lo, hi) = row_y(k);
            let windows = nemesis.windows.iter().filter(|w| w.fault == *kind);
            for w in windows {
                let (x0, x1) = (secs(w.start), secs(w.end_or(run_end)));
                let mut rect = Rectangle::new(
                    [(x0, lo), (x1.max(x0 + secs(ns_per_px)), hi)],
                    fault_colour(kind).mix(FAULT_BAR_ALPHA).filled(),
                );
                rect.set_margin(2, 2, 0, 0);
                chart.draw_series(std::iter::once(rect))?;
                let px = (w.end_or(run_end) - w.start) / ns_per_px;
                if px >= 28 {
                    chart.draw_series(std::iter::once(Text::new(
                        format!("#{}", w.id),
                        ((x0 + x1) / 2.0, (lo + hi) / 2.0),
                        label.clone(),
                    )))?;
                }
            }
        }

        // row labels, in the label column left of the plot
        let text = TextStyle::from((FONT, LABEL_SIZE).into_font())
            .color(&INK)
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Right,
                text_anchor::VPos::Center,
            ));
        let every = (14 / row_h as usize).max(1);
        let mut labels: Vec<(String, usize)> = kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| (kind.to_string(), k))
            .collect();
        labels.extend(
            lanes
                .processes
                .iter()
                .enumerate()
                .filter(|(i, _)| i % every == 0)
                .map(|(i, ps)| (lane_label(ps), kinds.len() + i)),
        );
        for (text_label, row) in labels {
            let (lo, hi) = row_y(row);
            let (_, y) = chart.backend_coord(&(0.0, (lo + hi) / 2.0));
            let (x, _) = chart.backend_coord(&(0.0, lo));
            root.draw(&Text::new(text_label, (x - 6, y), text.clone()))?;
        }
        root.present()?;
    }
    Ok((svg, lanes))
}

/// Crosses for the gave-up marks, at most one per lane and pixel.
fn gave_up_marks(marks: &[(usize, u64)], ns_per_px: u64) -> impl Iterator<Item = (usize, u64)> {
    let mut last: Option<(usize, u64)> = None;
    marks.iter().copied().filter(move |&(lane, t)| {
        let px = t / ns_per_px;
        let keep = last != Some((lane, px));
        last = Some((lane, px));
        keep
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: usize, process: u64, call: u64, ret: Option<u64>, status: OpStatus) -> Operation {
        Operation {
            id,
            process,
            f: "get".to_string(),
            key: None,
            input: serde_json::Value::Null,
            output: None,
            status,
            call_index: id as u64 * 2,
            call_time: call,
            return_index: ret.map(|_| id as u64 * 2 + 1),
            return_time: if status == OpStatus::Info { None } else { ret },
            info_time: if status == OpStatus::Info { ret } else { None },
        }
    }

    #[test]
    fn a_process_that_replaces_a_timed_out_one_reuses_its_lane() {
        let ops = vec![
            op(0, 0, 0, Some(10), OpStatus::Ok),
            op(1, 1, 1, Some(50), OpStatus::Info),
            op(2, 0, 20, Some(90), OpStatus::Fail),
            op(3, 11, 60, Some(70), OpStatus::Ok),
        ];
        let lanes = assign_lanes(&ops, 100, MAX_LANES);
        assert_eq!(lanes.processes, vec![vec![0], vec![1, 11]]);
        assert_eq!(lanes.gave_up, vec![(1, 50)]);
        assert_eq!(lane_label(&lanes.processes[1]), "p1 +1");
        assert_eq!(lanes.hidden_ops, 0);
    }

    #[test]
    fn an_operation_without_completion_runs_to_the_end_and_holds_its_lane() {
        let ops = vec![
            op(0, 0, 5, None, OpStatus::Info),
            op(1, 1, 6, Some(8), OpStatus::Ok),
            op(2, 2, 50, Some(60), OpStatus::Ok),
        ];
        let lanes = assign_lanes(&ops, 100, MAX_LANES);
        assert_eq!(lanes.processes, vec![vec![0], vec![1, 2]]);
        let open = &lanes.bars[0];
        assert!(open.open);
        assert_eq!(open.end, 100);
    }

    #[test]
    fn lanes_are_listed_by_their_first_process() {
        let ops = vec![
            op(0, 5, 0, Some(10), OpStatus::Ok),
            op(1, 2, 1, Some(10), OpStatus::Ok),
            op(2, 9, 2, Some(10), OpStatus::Ok),
        ];
        let lanes = assign_lanes(&ops, 10, MAX_LANES);
        assert_eq!(lanes.processes, vec![vec![2], vec![5], vec![9]]);
        let lane_of_op: Vec<usize> = lanes.bars.iter().map(|b| b.lane).collect();
        assert_eq!(lane_of_op, vec![0, 1, 2]);
        assert_eq!(lanes.bars[1].start, 0);
    }

    #[test]
    fn lanes_past_the_cap_are_counted_not_drawn() {
        let ops: Vec<Operation> = (0..5)
            .map(|p| op(p, p as u64, 0, Some(10), OpStatus::Ok))
            .collect();
        let lanes = assign_lanes(&ops, 10, 3);
        assert_eq!(lanes.processes.len(), 3);
        assert_eq!(lanes.hidden_ops, 2);
    }

    #[test]
    fn too_many_bars_merge_over_a_wider_gap() {
        // sorted by lane then time, as `assign_lanes` leaves them
        let bars: Vec<Bar> = (0..100)
            .map(|i| Bar {
                lane: i / 50,
                start: i as u64 * 10,
                end: i as u64 * 10 + 1,
                status: OpStatus::Ok,
                open: false,
            })
            .collect();
        assert_eq!(fit(&bars, 1, 1000).len(), 100);
        let fitted = fit(&bars, 1, 10);
        assert!(fitted.len() <= 10, "{}", fitted.len());
        assert!(fitted.len() >= 2, "both lanes keep a bar");
        assert!(fitted.iter().all(|b| b.status == OpStatus::Ok));
        assert!(fitted.iter().map(|b| b.end).max() >= Some(991));
    }

    #[test]
    fn bars_within_a_pixel_merge_and_keep_the_worst_outcome() {
        let bar = |start, end, status| Bar {
            lane: 0,
            start,
            end,
            status,
            open: false,
        };
        let bars = vec![
            bar(0, 1, OpStatus::Ok),
            bar(3, 4, OpStatus::Fail),
            bar(5, 6, OpStatus::Ok),
            bar(100, 101, OpStatus::Ok),
        ];
        let merged = coalesce(&bars, 5);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start, merged[0].end), (0, 10));
        assert_eq!(merged[0].status, OpStatus::Fail);
        assert_eq!((merged[1].start, merged[1].end), (100, 105));
    }
}

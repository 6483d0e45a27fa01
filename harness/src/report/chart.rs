//! What every chart of the report shares: colours, the legend strip, and
//! the shading of fault windows.
//!
//! The legend is drawn in its own strip above the plot, never over the data,
//! and the same colours mean the same thing in every chart: green ok, red
//! fail, amber info; one hue per fault kind.

use histories::OpStatus;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor;

use super::faults::FaultWindow;

/// The colour of `ok` operations.
pub const OK: RGBColor = RGBColor(0x2f, 0x8a, 0x55);
/// The colour of `fail` operations.
pub const FAIL: RGBColor = RGBColor(0xcf, 0x3a, 0x3a);
/// The colour of `info` operations.
pub const INFO: RGBColor = RGBColor(0xe0, 0x8e, 0x0b);
/// Axis text.
pub const INK: RGBColor = RGBColor(0x1f, 0x29, 0x33);

/// How strongly a fault window is shaded behind the data. The tests count
/// shaded windows by this value, so it must be used for nothing else.
pub const SHADE_ALPHA: f64 = 0.14;
/// The legend swatch of a fault kind (darker than the shading, so it stands
/// out on white and is not counted as a window).
const SWATCH_ALPHA: f64 = 0.45;

/// The font of every label.
pub const FONT: &str = "sans-serif";
/// Font size of axis descriptions and legends, as plotters takes it: its
/// SVG backend writes `size / 1.24` pixels, so this is about 13.7 px.
pub const DESC_SIZE: f64 = 17.0;
/// Font size of tick and lane labels (about 12.9 px).
pub const LABEL_SIZE: f64 = 16.0;
/// Font size of labels inside bars (about 11.3 px).
pub const SMALL_SIZE: f64 = 14.0;
/// Height of the legend strip above a chart, in pixels.
pub const LEGEND_H: u32 = 26;

/// The colour of an outcome.
pub fn status_colour(status: OpStatus) -> RGBColor {
    match status {
        OpStatus::Ok => OK,
        OpStatus::Fail => FAIL,
        OpStatus::Info => INFO,
    }
}

/// The name of an outcome, for legends and tables.
pub fn status_name(status: OpStatus) -> &'static str {
    match status {
        OpStatus::Ok => "ok",
        OpStatus::Fail => "fail",
        OpStatus::Info => "info",
    }
}

/// The hue of a fault kind, shared by shading, fault bars and legends.
pub fn fault_colour(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(0x3b, 0x6f, 0xd4),
        "kill" => RGBColor(0xa1, 0x2b, 0x8c),
        "pause" => RGBColor(0x12, 0x8f, 0x8f),
        "join" | "leave" | "move" => RGBColor(0x8a, 0x63, 0x3a),
        _ => RGBColor(0x61, 0x6e, 0x7c),
    }
}

/// One entry of a legend strip.
pub enum LegendMark {
    /// A filled box (bars, shading).
    Swatch(RGBColor, f64),
    /// A dot (scatter points).
    Dot(RGBColor),
    /// A short line (line series).
    Line(RGBColor),
    /// A cross (an operation given up on).
    Cross(RGBColor),
}

/// The legend entries for fault kinds, after the caller's own.
pub fn fault_legend(kinds: &[&str]) -> Vec<(String, LegendMark)> {
    kinds
        .iter()
        .map(|k| {
            (
                format!("{k} (fault window)"),
                LegendMark::Swatch(fault_colour(k), SWATCH_ALPHA),
            )
        })
        .collect()
}

/// Draws a legend strip across the top of `area`, left to right.
pub fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    items: &[(String, LegendMark)],
) -> anyhow::Result<()> {
    let text = TextStyle::from((FONT, DESC_SIZE).into_font())
        .color(&INK)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ));
    let y = (LEGEND_H / 2) as i32;
    let mut x = 70i32;
    for (label, mark) in items {
        match mark {
            LegendMark::Swatch(c, alpha) => area.draw(&Rectangle::new(
                [(x, y - 6), (x + 22, y + 6)],
                c.mix(*alpha).filled(),
            ))?,
            LegendMark::Dot(c) => area.draw(&Circle::new((x + 11, y), 4, c.filled()))?,
            LegendMark::Line(c) => area.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                c.stroke_width(3),
            ))?,
            LegendMark::Cross(c) => area.draw(&Cross::new((x + 11, y), 5, c.stroke_width(2)))?,
        }
        area.draw(&Text::new(label.clone(), (x + 28, y), text.clone()))?;
        // about 7.5 px a character at 13.7 px, generously
        x += 28 + 8 * label.chars().count() as i32 + 22;
    }
    Ok(())
}

/// A chart whose x axis is seconds since the run began.
pub type TimeChart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// Shades every fault window across the plot, from `y_lo` to `y_hi`.
pub fn shade_faults<Y>(
    chart: &mut TimeChart<'_, '_, Y>,
    windows: &[FaultWindow],
    run_end: u64,
    y_lo: Y::ValueType,
    y_hi: Y::ValueType,
) -> anyhow::Result<()>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    chart.draw_series(windows.iter().map(|w| {
        Rectangle::new(
            [
                (secs(w.start), y_lo.clone()),
                (secs(w.end_or(run_end)), y_hi.clone()),
            ],
            fault_colour(&w.fault).mix(SHADE_ALPHA).filled(),
        )
    }))?;
    Ok(())
}

/// Nanoseconds since the start as seconds, the unit of every time axis.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The x range of a run, never empty.
pub fn time_range(run_end: u64) -> std::ops::Range<f64> {
    0.0..secs(run_end).max(0.001)
}

/// The powers of ten around the positive finite `values`, so a log axis has
/// round ends; `empty` when there are none.
pub fn decades(
    values: impl Iterator<Item = f64>,
    empty: std::ops::Range<f64>,
) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return empty;
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_kind_has_a_hue_and_unknown_kinds_are_grey() {
        assert_ne!(fault_colour("partition"), fault_colour("kill"));
        assert_ne!(fault_colour("kill"), fault_colour("pause"));
        assert_eq!(fault_colour("move"), fault_colour("join"));
        assert_eq!(fault_colour("meteor"), RGBColor(0x61, 0x6e, 0x7c));
    }
}

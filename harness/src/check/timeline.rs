//! The counterexample as a self-contained HTML page: one timeline row per
//! process, one bar per operation, and the checker's story drawn on top.
//!
//! The horizontal axis is the *order of events* (each invocation and each
//! completion gets one slot), not wall time: the checker decides by that
//! order alone, and a time scale would crush a burst of operations into a
//! sliver. Times are in the tooltips and on the ruler.
//!
//! The longest linearization found is drawn as numbered pins, one per
//! operation, joined by a line: pin *k* sits inside its operation's bar, to
//! the right of pin *k − 1*. Such points always exist for an order that
//! respects real time: pin *k* goes just after the latest invocation among
//! the first *k* operations, which every one of them outlives (none of them
//! returned before an operation that comes after it had been invoked). A
//! dashed line marks where the prefix ends; the operations that could come
//! next are amber (legal, but every continuation fails) or red (impossible in
//! the stuck state), and the operation whose completion cannot be passed
//! carries a thick red outline and a `!` pin at its completion.
//!
//! A part too long to draw whole (more than `MAX_SLOTS` events) is drawn
//! through a window: the stretch of events leading up to where the search
//! got stuck, and the completions of the operations that could not come
//! next. The side panel still lists the whole prefix.
//!
//! Geometry is computed here; the template (`templates/linearizability.html`)
//! only lays it out, and minijinja escapes every string that came from the
//! history (keys, values, states).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use checker::{CheckResult, Counterexample, CounterexampleOp, PartOutcome};
use histories::OpStatus;
use minijinja::Environment;
use serde::Serialize;

use super::text::{format_nanos, key_label, truncate};

/// The page template; its `.html` name turns on HTML auto-escaping.
const TEMPLATE_NAME: &str = "linearizability.html";
const TEMPLATE: &str = include_str!("../../templates/linearizability.html");

/// Width of the process labels column.
const LEFT: f64 = 64.0;
/// Height of the ruler above the rows.
const TOP: f64 = 40.0;
/// Height of one process row: a lane for pins above a lane for bars.
const ROW_H: f64 = 48.0;
/// Where a bar starts inside its row, and its height.
const BAR_Y: f64 = 22.0;
const BAR_H: f64 = 20.0;
/// Where pins sit inside a row.
const PIN_Y: f64 = 11.0;
/// The width the chart aims for, and the bounds of one event slot.
const TARGET_WIDTH: f64 = 900.0;
const MIN_SLOT: f64 = 26.0;
const MAX_SLOT: f64 = 90.0;
/// The most event slots drawn; longer parts are drawn around the failure.
const MAX_SLOTS: usize = 200;
/// Slots of room after the last event, where indeterminate bars run out.
const TAIL_SLOTS: f64 = 1.5;
/// Approximate advance of one character of the 11px monospace label font.
const CHAR_W: f64 = 6.7;
/// How far a label may run past the end of its bar.
const LABEL_OVERFLOW: f64 = 180.0;
/// Distance between two pins on one bar so they do not overlap.
const PIN_CLEARANCE: f64 = 20.0;
/// Minimum spacing between ruler labels.
const TICK_SPACING: f64 = 90.0;

/// Everything the page is drawn from.
pub struct PageContext<'a> {
    /// The history file.
    pub history: &'a Path,
    /// The model's name.
    pub model: &'a str,
    /// The whole check result (for the summary line).
    pub result: &'a CheckResult,
    /// The failing part.
    pub counterexample: &'a Counterexample,
}

/// Renders the page.
pub fn render(ctx: &PageContext<'_>) -> Result<String> {
    let page = Page::build(ctx);
    let mut env = Environment::new();
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .context("the visualization template does not parse")?;
    let template = env.get_template(TEMPLATE_NAME)?;
    template
        .render(
            minijinja::context! { page => minijinja::Value::from(minijinja::value::Serde(&page)) },
        )
        .context("cannot render the visualization")
}

/// The page's view model.
#[derive(Debug, Serialize)]
struct Page {
    history: String,
    model: String,
    key: String,
    ops: usize,
    failed_ops: usize,
    info_ops: usize,
    processes: usize,
    summary: String,
    chart: Chart,
    initial_state: String,
    prefix: Vec<StepItem>,
    stuck_state: String,
    candidates: Vec<CandidateItem>,
    blocking: Option<BlockingItem>,
}

/// The SVG timeline.
#[derive(Debug, Serialize)]
struct Chart {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    row_h: f64,
    /// Where the chart's bottom edge of the rows is.
    bottom: f64,
    /// The end of the event axis, where indeterminate bars stop.
    end_x: f64,
    /// Vertical guide at every event slot.
    grid: Vec<f64>,
    ticks: Vec<Tick>,
    rows: Vec<RowView>,
    bars: Vec<BarView>,
    pins: Vec<Pin>,
    /// `x,y` pairs joining the step pins in order.
    path: String,
    stuck_x: f64,
    /// Height of the row to scroll into view: the failure's.
    focus_y: f64,
    stuck_label: String,
    /// Set when the part is too long to draw whole: what is shown.
    window: Option<String>,
}

#[derive(Debug, Serialize)]
struct Tick {
    x: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct RowView {
    label: String,
    y: f64,
    stripe: bool,
}

/// One operation's bar.
#[derive(Debug, Serialize)]
struct BarView {
    op: usize,
    /// `linearized`, `pending`, `deadend`, `impossible` or `failed`.
    class: &'static str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    /// Indeterminate: hatched and open-ended.
    info: bool,
    blocking: bool,
    label: String,
    label_x: f64,
    label_y: f64,
    /// Where an indeterminate operation's client gave up waiting.
    info_mark: Option<f64>,
    tip: String,
}

/// A marker above a bar: a step number, an impossible next step, or the
/// completion that could not be passed.
#[derive(Debug, Serialize)]
struct Pin {
    op: usize,
    /// `step`, `impossible` or `blocking`.
    kind: &'static str,
    x: f64,
    y: f64,
    /// Where the pin's stem meets the bar.
    stem_to: f64,
    /// Width of the pin's pill, which grows with its number.
    w: f64,
    text: String,
    tip: String,
}

#[derive(Debug, Serialize)]
struct StepItem {
    n: usize,
    op: usize,
    process: u64,
    description: String,
    state: String,
}

#[derive(Debug, Serialize)]
struct CandidateItem {
    op: usize,
    process: u64,
    description: String,
    state_after: Option<String>,
}

#[derive(Debug, Serialize)]
struct BlockingItem {
    op: usize,
    process: u64,
    description: String,
    completed: String,
}

/// What the checker concluded about one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Linearized,
    Pending,
    DeadEnd,
    Impossible,
    Failed,
}

impl Role {
    fn class(self) -> &'static str {
        match self {
            Role::Linearized => "linearized",
            Role::Pending => "pending",
            Role::DeadEnd => "deadend",
            Role::Impossible => "impossible",
            Role::Failed => "failed",
        }
    }
}

/// Rounds a coordinate to a tenth of a pixel, to keep the SVG small.
fn px(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The event axis: one slot per distinct event index in the part, of which
/// the window `first..=last` is drawn.
struct Axis {
    /// Event indices, ascending.
    events: Vec<u64>,
    /// Event times, parallel to `events`.
    times: Vec<u64>,
    /// False when the history carries no clock (Jepsen logs, EDN without
    /// `:time`): every time then equals its event index, and is not shown.
    timed: bool,
    /// First and last slot drawn.
    first: usize,
    last: usize,
    slot_w: f64,
}

impl Axis {
    /// An axis over every event of `ops`, all of it drawn.
    fn new(ops: &[CounterexampleOp]) -> Self {
        let mut events: BTreeMap<u64, u64> = BTreeMap::new();
        for o in ops {
            events.insert(o.op.call_index, o.op.call_time);
            if let (Some(index), Some(time)) = (o.op.return_index, o.op.return_time) {
                events.insert(index, time);
            }
        }
        let timed = events.iter().any(|(&index, &time)| index != time);
        let mut axis = Axis {
            times: events.values().copied().collect(),
            events: events.into_keys().collect(),
            timed,
            first: 0,
            last: 0,
            slot_w: MIN_SLOT,
        };
        axis.set_window(0, axis.events.len().saturating_sub(1));
        axis
    }

    /// Draws only slots `first..=last`, as wide as the target width allows.
    fn set_window(&mut self, first: usize, last: usize) {
        self.first = first;
        self.last = last.max(first);
        let slots = (self.last - self.first + 1) as f64 + TAIL_SLOTS;
        self.slot_w = ((TARGET_WIDTH - LEFT) / slots).clamp(MIN_SLOT, MAX_SLOT);
    }

    /// True when some events are left out of the drawing.
    fn is_windowed(&self) -> bool {
        self.first > 0 || self.last + 1 < self.events.len()
    }

    /// Whether a (fractional) slot position falls inside the window.
    fn shows(&self, slot: f64) -> bool {
        slot >= self.first as f64 - 0.5 && slot <= self.last as f64 + 0.5
    }

    /// The slot of an event index that is on the axis.
    fn slot(&self, index: u64) -> f64 {
        match self.events.binary_search(&index) {
            Ok(s) | Err(s) => s as f64,
        }
    }

    /// The x coordinate of a (fractional) slot position.
    fn x(&self, slot: f64) -> f64 {
        LEFT + (slot - self.first as f64 + 0.5) * self.slot_w
    }

    /// The far right of the window, where open-ended bars stop.
    fn end_x(&self) -> f64 {
        self.x(self.last as f64 + TAIL_SLOTS)
    }

    /// An event, for people: its index, and its time when the history has
    /// a clock.
    fn at(&self, index: u64, time: u64) -> String {
        if self.timed {
            format!("event {index}, {}", format_nanos(time))
        } else {
            format!("event {index}")
        }
    }

    /// A slot position just after the last event at or before `time`.
    fn slot_after_time(&self, time: u64) -> f64 {
        let last = self.times.partition_point(|&t| t <= time);
        last as f64 - 0.5
    }
}

/// Where each step's pin goes, in slots, and where the prefix ends.
///
/// Pin *k* goes just after the latest invocation among the first *k*
/// operations; steps sharing that slot are spread evenly inside it. The
/// module doc explains why every pin then lies inside its operation.
fn step_slots(
    cx: &Counterexample,
    by_id: &HashMap<usize, &CounterexampleOp>,
    axis: &Axis,
) -> (Vec<f64>, f64) {
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (base slot, steps in group)
    let mut base = 0usize;
    for (n, step) in cx.longest_prefix.iter().enumerate() {
        let call = by_id
            .get(&step.op)
            .map_or(0, |o| axis.slot(o.op.call_index) as usize);
        if n == 0 || call > base {
            base = call.max(base);
            groups.push((base, 1));
        } else if let Some(last) = groups.last_mut() {
            last.1 += 1;
        }
    }
    let mut slots = Vec::with_capacity(cx.longest_prefix.len());
    for &(base, count) in &groups {
        for j in 0..count {
            slots.push(base as f64 + (j + 1) as f64 / (count + 1) as f64);
        }
    }
    let stuck = match (groups.last(), slots.last()) {
        (Some(&(_, count)), Some(&last)) => last + 0.5 / (count + 1) as f64,
        _ => -0.5,
    };
    (slots, stuck)
}

/// The slots to draw when the part is too long to draw whole: the stretch
/// before the point where the search got stuck, and the completions of the
/// operations that could not come next.
fn choose_window(
    cx: &Counterexample,
    by_id: &HashMap<usize, &CounterexampleOp>,
    axis: &Axis,
    stuck: f64,
) -> (usize, usize) {
    let n = axis.events.len();
    if n <= MAX_SLOTS {
        return (0, n.saturating_sub(1));
    }
    let stuck_slot = stuck.max(0.0).ceil() as usize;
    let completions = cx
        .candidates
        .iter()
        .map(|c| c.op)
        .chain(cx.blocking_op)
        .filter_map(|id| by_id.get(&id)?.op.return_index)
        .map(|r| axis.slot(r) as usize);
    let hi = completions
        .fold(stuck_slot, usize::max)
        .min(stuck_slot + MAX_SLOTS / 3)
        .saturating_add(3)
        .min(n - 1);
    (hi.saturating_sub(MAX_SLOTS - 1), hi)
}

impl Page {
    fn build(ctx: &PageContext<'_>) -> Page {
        let cx = ctx.counterexample;
        let by_id: HashMap<usize, &CounterexampleOp> =
            cx.ops.iter().map(|o| (o.op.id, o)).collect();
        let mut axis = Axis::new(&cx.ops);
        let (step_slots, stuck_slot) = step_slots(cx, &by_id, &axis);
        let (first, last) = choose_window(cx, &by_id, &axis, stuck_slot);
        axis.set_window(first, last);

        let mut roles: HashMap<usize, Role> = HashMap::new();
        let mut step_of: HashMap<usize, usize> = HashMap::new();
        for (n, step) in cx.longest_prefix.iter().enumerate() {
            roles.insert(step.op, Role::Linearized);
            step_of.insert(step.op, n);
        }
        for c in &cx.candidates {
            let role = if c.state_after.is_some() {
                Role::DeadEnd
            } else {
                Role::Impossible
            };
            roles.insert(c.op, role);
        }
        let role_of = |o: &CounterexampleOp| {
            if o.op.status == OpStatus::Fail {
                Role::Failed
            } else {
                roles.get(&o.op.id).copied().unwrap_or(Role::Pending)
            }
        };

        // What the window shows: operations overlapping it, except that an
        // indeterminate operation invoked before it (which overlaps
        // everything after) is drawn only when it matters here.
        let drawn: Vec<&CounterexampleOp> = cx
            .ops
            .iter()
            .filter(|o| {
                let call = axis.slot(o.op.call_index);
                let end = match (o.op.status, o.op.return_index) {
                    (OpStatus::Ok | OpStatus::Fail, Some(r)) => axis.slot(r),
                    _ => f64::INFINITY,
                };
                if call > axis.last as f64 || end < axis.first as f64 {
                    return false;
                }
                if call >= axis.first as f64 || end.is_finite() {
                    return true;
                }
                match role_of(o) {
                    Role::DeadEnd | Role::Impossible => true,
                    Role::Linearized => step_of
                        .get(&o.op.id)
                        .is_some_and(|&n| axis.shows(step_slots[n])),
                    Role::Pending | Role::Failed => false,
                }
            })
            .collect();

        let processes: BTreeSet<u64> = drawn.iter().map(|o| o.op.process).collect();
        let row_of: HashMap<u64, usize> =
            processes.iter().enumerate().map(|(r, &p)| (p, r)).collect();
        let row_top =
            |process: u64| TOP + row_of.get(&process).copied().unwrap_or(0) as f64 * ROW_H;

        // Where the next operation of the same process starts, per operation.
        let mut next_start: HashMap<usize, f64> = HashMap::new();
        let mut last_of_process: HashMap<u64, usize> = HashMap::new();
        for o in &cx.ops {
            if let Some(previous) = last_of_process.insert(o.op.process, o.op.id) {
                next_start.insert(previous, axis.x(axis.slot(o.op.call_index)));
            }
        }

        let end_x = axis.end_x();
        let mut bars = Vec::with_capacity(drawn.len());
        for o in &drawn {
            let op = &o.op;
            let role = role_of(o);
            let info = op.status == OpStatus::Info;
            // Bars cut by the window's left edge slide under the row labels.
            let x0 = axis.x(axis.slot(op.call_index)).max(LEFT - 12.0);
            let x1 = match op.return_index {
                Some(r) if !info => axis.x(axis.slot(r)).min(end_x),
                _ => end_x,
            };
            let w = (x1 - x0).max(4.0);
            let y = row_top(op.process) + BAR_Y;
            // A label may run past its bar, up to the process's next bar.
            let label_x = x0.max(LEFT) + 5.0;
            let room = next_start
                .get(&op.id)
                .copied()
                .unwrap_or(f64::INFINITY)
                .min(x1 + LABEL_OVERFLOW)
                .min(end_x + 20.0)
                .max(x1)
                - label_x;
            let fits = ((room - 7.0) / CHAR_W).floor().max(0.0) as usize;
            let label = if fits >= 3 {
                truncate(&o.description, fits)
            } else {
                String::new()
            };
            let info_mark = op
                .info_time
                .map(|t| axis.slot_after_time(t))
                .filter(|&s| axis.shows(s))
                .map(|s| px(axis.x(s)));
            bars.push(BarView {
                op: op.id,
                class: role.class(),
                x: px(x0),
                y: px(y),
                w: px(w),
                h: BAR_H,
                info,
                blocking: cx.blocking_op == Some(op.id),
                label,
                label_x: px(label_x),
                label_y: px(y + BAR_H / 2.0 + 4.0),
                info_mark,
                tip: op_tip(o, role, cx, &step_of, &axis),
            });
        }

        let drawn_ids: HashSet<usize> = drawn.iter().map(|o| o.op.id).collect();
        let is_drawn = |id: usize| drawn_ids.contains(&id);
        let mut pins = Vec::new();
        let mut path = Vec::new();
        for (n, (step, &slot)) in cx.longest_prefix.iter().zip(&step_slots).enumerate() {
            let Some(o) = by_id.get(&step.op) else {
                continue;
            };
            if !axis.shows(slot) || !is_drawn(step.op) {
                continue;
            }
            let x = px(axis.x(slot));
            let y = px(row_top(o.op.process) + PIN_Y);
            path.push(format!("{x},{y}"));
            pins.push(Pin {
                op: step.op,
                kind: "step",
                x,
                y,
                stem_to: px(row_top(o.op.process) + BAR_Y),
                w: pin_width(n + 1),
                text: (n + 1).to_string(),
                tip: format!(
                    "step {}: {}\nstate after: {}",
                    n + 1,
                    o.description,
                    truncate(&step.state_after, 200)
                ),
            });
        }
        for c in cx.candidates.iter().filter(|c| c.state_after.is_none()) {
            let Some(o) = by_id.get(&c.op) else { continue };
            if !is_drawn(c.op) {
                continue;
            }
            let call_x = axis.x(axis.slot(o.op.call_index)).max(LEFT);
            let mut x = axis.x(stuck_slot + 0.2).max(call_x + 0.3 * axis.slot_w);
            if let (Some(r), OpStatus::Ok) = (o.op.return_index, o.op.status) {
                // Keep clear of the `!` pin when this is also the blocking op.
                let clearance = if cx.blocking_op == Some(c.op) {
                    PIN_CLEARANCE
                } else {
                    4.0
                };
                x = x.min(axis.x(axis.slot(r)) - clearance).max(call_x + 6.0);
            }
            pins.push(Pin {
                op: c.op,
                kind: "impossible",
                x: px(x.min(end_x)),
                y: px(row_top(o.op.process) + PIN_Y),
                stem_to: px(row_top(o.op.process) + BAR_Y),
                w: pin_width(0),
                text: "✕".to_string(),
                tip: format!(
                    "step {} cannot be {}: impossible in state {}",
                    cx.longest_prefix.len() + 1,
                    o.description,
                    truncate(&cx.stuck_state, 200)
                ),
            });
        }
        if let Some(o) = cx.blocking_op.and_then(|id| by_id.get(&id))
            && let Some(r) = o.op.return_index
            && axis.shows(axis.slot(r))
            && is_drawn(o.op.id)
        {
            pins.push(Pin {
                op: o.op.id,
                kind: "blocking",
                x: px(axis.x(axis.slot(r))),
                y: px(row_top(o.op.process) + PIN_Y),
                stem_to: px(row_top(o.op.process) + BAR_Y),
                w: pin_width(0),
                text: "!".to_string(),
                tip: format!(
                    "{} completed here, yet no order places it before this point",
                    o.description
                ),
            });
        }

        let bottom = TOP + processes.len() as f64 * ROW_H;
        let every = (TICK_SPACING / axis.slot_w).ceil().max(1.0) as usize;
        let tick_slots: Vec<usize> = (axis.first..=axis.last)
            .step_by(every)
            .filter(|&s| s < axis.events.len())
            .collect();
        let tick_labels = if axis.timed {
            tick_times(
                &tick_slots
                    .iter()
                    .map(|&s| axis.times[s])
                    .collect::<Vec<_>>(),
            )
        } else {
            tick_slots
                .iter()
                .map(|&s| format!("event {}", axis.events[s]))
                .collect()
        };
        let ticks = tick_slots
            .iter()
            .zip(tick_labels)
            .map(|(&s, label)| Tick {
                x: px(axis.x(s as f64)),
                label,
            })
            .collect();
        let window = axis.is_windowed().then(|| {
            let first_step = step_slots
                .iter()
                .position(|&s| axis.shows(s))
                .map_or(cx.longest_prefix.len(), |k| k + 1);
            format!(
                "This part has {} events; the timeline shows the {} around where the search got stuck \
                 (events {} to {}). Steps before step {first_step} are in the list on the right.",
                axis.events.len(),
                axis.last - axis.first + 1,
                axis.events[axis.first],
                axis.events[axis.last],
            )
        });
        let focus_y = ["blocking", "impossible", "step"]
            .iter()
            .find_map(|kind| pins.iter().rev().find(|p| p.kind == *kind))
            .map_or(TOP, |p| p.y);
        let chart = Chart {
            width: px(end_x + 24.0),
            height: px(bottom + 12.0),
            left: LEFT,
            top: TOP,
            row_h: ROW_H,
            bottom: px(bottom),
            end_x: px(end_x),
            grid: (axis.first..=axis.last)
                .map(|s| px(axis.x(s as f64)))
                .collect(),
            ticks,
            rows: processes
                .iter()
                .enumerate()
                .map(|(r, p)| RowView {
                    label: format!("p{p}"),
                    y: px(TOP + r as f64 * ROW_H),
                    stripe: r % 2 == 1,
                })
                .collect(),
            bars,
            pins,
            path: path.join(" "),
            focus_y,
            stuck_x: px(axis.x(stuck_slot)),
            stuck_label: format!("stuck after step {}", cx.longest_prefix.len()),
            window,
        };

        let describe = |id: usize| {
            by_id
                .get(&id)
                .map_or_else(|| "?".to_string(), |o| o.description.clone())
        };
        let process = |id: usize| by_id.get(&id).map_or(0, |o| o.op.process);
        Page {
            history: ctx.history.display().to_string(),
            model: ctx.model.to_string(),
            key: key_label(cx.key.as_ref()),
            ops: cx.ops.len(),
            failed_ops: cx
                .ops
                .iter()
                .filter(|o| o.op.status == OpStatus::Fail)
                .count(),
            info_ops: cx
                .ops
                .iter()
                .filter(|o| o.op.status == OpStatus::Info)
                .count(),
            processes: cx
                .ops
                .iter()
                .map(|o| o.op.process)
                .collect::<BTreeSet<_>>()
                .len(),
            summary: summary(ctx.result),
            chart,
            initial_state: cx.initial_state.clone(),
            prefix: cx
                .longest_prefix
                .iter()
                .enumerate()
                .map(|(n, step)| StepItem {
                    n: n + 1,
                    op: step.op,
                    process: process(step.op),
                    description: describe(step.op),
                    state: step.state_after.clone(),
                })
                .collect(),
            stuck_state: cx.stuck_state.clone(),
            candidates: cx
                .candidates
                .iter()
                .map(|c| CandidateItem {
                    op: c.op,
                    process: process(c.op),
                    description: describe(c.op),
                    state_after: c.state_after.clone(),
                })
                .collect(),
            blocking: cx
                .blocking_op
                .and_then(|id| by_id.get(&id))
                .map(|o| BlockingItem {
                    op: o.op.id,
                    process: o.op.process,
                    description: o.description.clone(),
                    completed: match (o.op.return_index, o.op.return_time) {
                        (Some(i), Some(t)) => axis.at(i, t),
                        _ => "never".to_string(),
                    },
                }),
        }
    }
}

/// Width of a pin showing step `n` (0 for the one-character symbols).
fn pin_width(n: usize) -> f64 {
    let chars = if n == 0 { 1 } else { n.to_string().len() };
    (5.8 * chars as f64 + 8.0).max(17.0)
}

/// Ruler labels for ascending times: one unit for all, chosen by the
/// largest, with just enough decimals that neighbours differ.
fn tick_times(times: &[u64]) -> Vec<String> {
    let largest = times.iter().copied().max().unwrap_or(0);
    let (unit, scale) = match largest {
        0..1_000 => ("ns", 1.0),
        1_000..1_000_000 => ("µs", 1e3),
        1_000_000..1_000_000_000 => ("ms", 1e6),
        _ => ("s", 1e9),
    };
    let render = |decimals: usize| -> Vec<String> {
        times
            .iter()
            .map(|&t| format!("{:.decimals$} {unit}", t as f64 / scale))
            .collect()
    };
    for decimals in 0..6 {
        let labels = render(decimals);
        let distinct =
            (1..times.len()).all(|i| times[i] == times[i - 1] || labels[i] != labels[i - 1]);
        if distinct {
            return labels;
        }
    }
    render(6)
}

/// One line about the whole check, for the page header.
fn summary(result: &CheckResult) -> String {
    let parts = result.parts.len();
    let failing = result
        .parts
        .iter()
        .filter(|p| p.outcome == PartOutcome::NotLinearizable)
        .count();
    format!(
        "{} checked operations in {} part{} ({} not linearizable), {:.1} ms",
        result.stats.ops,
        parts,
        if parts == 1 { "" } else { "s" },
        failing,
        result.stats.elapsed_ms
    )
}

/// The tooltip of one bar: what the operation was and what the checker made
/// of it.
fn op_tip(
    o: &CounterexampleOp,
    role: Role,
    cx: &Counterexample,
    step_of: &HashMap<usize, usize>,
    axis: &Axis,
) -> String {
    let op = &o.op;
    let mut lines = vec![
        format!("#{}  process {}  {}", op.id, op.process, o.description),
        format!("invoked: {}", axis.at(op.call_index, op.call_time)),
    ];
    match (op.status, op.return_index, op.return_time) {
        (OpStatus::Ok, Some(i), Some(t)) => lines.push(format!("completed ok: {}", axis.at(i, t))),
        (OpStatus::Fail, Some(i), Some(t)) => lines.push(format!("failed: {}", axis.at(i, t))),
        _ => {
            let gave_up = match (op.info_time, axis.timed) {
                (Some(t), true) => format!("the client gave up at {}", format_nanos(t)),
                (Some(_), false) => "the client gave up".to_string(),
                (None, _) => "no completion recorded".to_string(),
            };
            lines.push(format!(
                "outcome unknown ({gave_up}): it may take effect at any time after its invocation, or never"
            ));
        }
    }
    let verdict = match role {
        Role::Linearized => {
            let n = step_of.get(&op.id).copied().unwrap_or(0);
            let state = cx
                .longest_prefix
                .get(n)
                .map_or("?", |s| s.state_after.as_str());
            format!(
                "linearized as step {} → state {}",
                n + 1,
                truncate(state, 200)
            )
        }
        Role::Pending => "not reached: the search got stuck before placing it".to_string(),
        Role::DeadEnd => {
            let after = cx
                .candidates
                .iter()
                .find(|c| c.op == op.id)
                .and_then(|c| c.state_after.as_deref())
                .unwrap_or("?");
            format!(
                "could come next (→ {}), but every continuation fails",
                truncate(after, 200)
            )
        }
        Role::Impossible => format!(
            "cannot come next: impossible in state {}",
            truncate(&cx.stuck_state, 200)
        ),
        Role::Failed => "failed: never took effect, not checked".to_string(),
    };
    lines.push(verdict);
    if cx.blocking_op == Some(op.id) {
        lines.push("completed, yet no order places it before its completion".to_string());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use checker::synth::{KvWorkload, inject_phantom_read, inject_stale_read, kv_history};
    use checker::{CheckOptions, check_with_model};
    use histories::{ReadOptions, read_jsonl};
    use serde_json::json;

    use super::*;

    fn page_of(ops: &[histories::Operation]) -> Option<Page> {
        let options = CheckOptions {
            threads: 1,
            ..CheckOptions::default()
        };
        let result = check_with_model("kv", ops, &options).expect("the kv model fits");
        let counterexample = result.counterexample.as_ref()?;
        Some(Page::build(&PageContext {
            history: Path::new("h.jsonl"),
            model: "kv",
            result: &result,
            counterexample,
        }))
    }

    #[test]
    fn step_pins_sit_inside_their_bars_in_linearization_order() {
        let mut steps_seen = 0;
        for seed in 1..=25 {
            let workload = KvWorkload {
                clients: 6,
                ops: 150,
                keys: 2,
                info_ratio: 0.1,
                fail_ratio: 0.05,
                seed,
                ..KvWorkload::default()
            };
            let Some(bad) = inject_stale_read(&kv_history(&workload), seed) else {
                continue;
            };
            let page =
                page_of(&bad.operations().unwrap()).expect("a stale read is never linearizable");
            let pins: Vec<&Pin> = page
                .chart
                .pins
                .iter()
                .filter(|p| p.kind == "step")
                .collect();
            assert_eq!(
                pins.len(),
                page.prefix.len(),
                "seed {seed}: one pin per step"
            );
            for pair in pins.windows(2) {
                assert!(
                    pair[0].x < pair[1].x,
                    "seed {seed}: pins go left to right in order"
                );
            }
            for pin in &pins {
                let bar = page.chart.bars.iter().find(|b| b.op == pin.op).unwrap();
                assert!(
                    bar.x <= pin.x && pin.x <= bar.x + bar.w,
                    "seed {seed}: pin of op {} at {} outside its bar [{}, {}]",
                    pin.op,
                    pin.x,
                    bar.x,
                    bar.x + bar.w
                );
            }
            steps_seen += pins.len();
        }
        assert!(
            steps_seen > 50,
            "the seeds exercise long prefixes ({steps_seen} steps)"
        );
    }

    #[test]
    fn long_parts_are_drawn_around_the_failure() {
        let workload = KvWorkload {
            clients: 5,
            ops: 800,
            keys: 1,
            seed: 7,
            ..KvWorkload::default()
        };
        let bad = inject_phantom_read(&kv_history(&workload), json!("never written"), 7).unwrap();
        let page =
            page_of(&bad.operations().unwrap()).expect("a phantom read is never linearizable");
        let chart = &page.chart;
        assert!(chart.window.is_some(), "an 800-operation part is windowed");
        assert!(
            chart.grid.len() <= MAX_SLOTS,
            "{} slots drawn",
            chart.grid.len()
        );
        assert!(
            chart.left <= chart.stuck_x && chart.stuck_x <= chart.end_x,
            "the stuck point is in view"
        );
        let blocking = page
            .blocking
            .as_ref()
            .expect("the phantom read cannot be placed");
        assert!(
            chart.bars.iter().any(|b| b.op == blocking.op && b.blocking),
            "the blocking operation is drawn"
        );
        assert!(chart.pins.iter().any(|p| p.kind == "blocking"));
        assert!(
            chart.bars.len() < page.ops / 2,
            "only the window's operations are drawn"
        );
        let last_step = chart.pins.iter().rfind(|p| p.kind == "step");
        assert_eq!(
            last_step.map(|p| p.text.clone()),
            Some(page.prefix.len().to_string()),
            "the steps just before the failure are drawn"
        );
    }

    #[test]
    fn ruler_labels_get_just_enough_decimals_to_differ() {
        assert_eq!(
            tick_times(&[2_603_000_000, 2_605_000_000]),
            ["2.603 s", "2.605 s"]
        );
        assert_eq!(tick_times(&[1_000_000, 2_000_000]), ["1 ms", "2 ms"]);
        assert_eq!(tick_times(&[5, 5, 7]), ["5 ns", "5 ns", "7 ns"]);
    }

    #[test]
    fn impossible_and_blocking_pins_of_one_operation_do_not_overlap() {
        // Many earlier reads shrink the slots to their minimum width, so the
        // stale get's bar is narrow and its two pins compete for room.
        let mut lines: Vec<String> = (0..30u64)
            .flat_map(|i| {
                [
                    format!(r#"{{"index":{},"process":2,"type":"invoke","f":"get","key":"k","value":null,"time":{}}}"#, 2 * i, 2 * i),
                    format!(r#"{{"index":{},"process":2,"type":"ok","f":"get","key":"k","value":"","time":{}}}"#, 2 * i + 1, 2 * i + 1),
                ]
            })
            .collect();
        lines.extend([
            r#"{"index":60,"process":0,"type":"invoke","f":"put","key":"k","value":"a","time":60}"#.to_string(),
            r#"{"index":61,"process":0,"type":"ok","f":"put","key":"k","value":"a","time":61}"#.to_string(),
            r#"{"index":62,"process":1,"type":"invoke","f":"get","key":"k","value":null,"time":62}"#.to_string(),
            r#"{"index":63,"process":1,"type":"ok","f":"get","key":"k","value":"","time":63}"#.to_string(),
        ]);
        let history = read_jsonl(lines.join("\n").as_bytes(), ReadOptions::default()).unwrap();
        let page = page_of(&history.operations().unwrap()).expect("the get is stale");
        let impossible = page
            .chart
            .pins
            .iter()
            .find(|p| p.kind == "impossible")
            .unwrap();
        let blocking = page
            .chart
            .pins
            .iter()
            .find(|p| p.kind == "blocking")
            .unwrap();
        assert_eq!(impossible.op, blocking.op);
        assert!(blocking.x - impossible.x >= PIN_CLEARANCE - 0.1);
        let bar = page
            .chart
            .bars
            .iter()
            .find(|b| b.op == impossible.op)
            .unwrap();
        assert!(impossible.x > bar.x, "the ✕ stays on its bar");
        assert_eq!((bar.class, bar.blocking), ("impossible", true));
    }

    #[test]
    fn indeterminate_operations_run_to_the_end_of_the_axis() {
        let text = [
            r#"{"index":0,"process":0,"type":"invoke","f":"append","key":"k","value":"a","time":0}"#,
            r#"{"index":1,"process":0,"type":"info","f":"append","key":"k","value":"a","time":5}"#,
            r#"{"index":2,"process":1,"type":"invoke","f":"get","key":"k","value":null,"time":6}"#,
            r#"{"index":3,"process":1,"type":"ok","f":"get","key":"k","value":"b","time":7}"#,
        ]
        .join("\n");
        let history = read_jsonl(text.as_bytes(), ReadOptions::default()).unwrap();
        let page = page_of(&history.operations().unwrap()).expect("`b` was never appended");
        let info = page.chart.bars.iter().find(|b| b.info).unwrap();
        assert!((info.x + info.w - page.chart.end_x).abs() < 0.2);
        let mark = info.info_mark.expect("the client gave up at time 5");
        assert!(info.x < mark && mark < info.x + info.w);
    }
}

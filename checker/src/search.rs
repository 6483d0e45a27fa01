//! The linearizability search for one part (Wing & Gong, Lowe, Porcupine).
//!
//! # The search
//!
//! Calls and returns of the part's operations form one doubly linked list in
//! real-time order; indeterminate operations return after everything else.
//! A call that comes before the first return still in the list is a
//! *candidate*: every operation that returned before it was invoked is
//! already linearized. The search walks candidates from the head; when the
//! model accepts one in the current state it is *linearized*: its call and
//! return are unlinked (dancing links, so undoing is O(1)), the state
//! advances, and the walk restarts from the head. Reaching a return means the
//! returning operation can no longer be placed: backtrack to the last choice
//! and try the next candidate. An empty list is a linearization; backtracking
//! past the root proves there is none.
//!
//! Configurations (linearized set, state) already explored are skipped (see
//! [`crate::memo`]). Indeterminate operations need no special case: they
//! never block a return, and one placed last, after every completed
//! operation, has no observable effect — that is "never took effect".
//!
//! # Read-only reduction, and why it is sound
//!
//! Let `R` be a candidate whose class is read-only (whenever `R` is legal in
//! a state `t`, `step(t, R) = t`) and which is legal in the current state
//! `s`. The search linearizes `R` at once, with no choice point.
//!
//! Claim: the current configuration `C` has a valid completion iff
//! `C + R` has one. "If" is immediate. "Only if": take a valid completion
//! `σ = x1 … xk R y1 …` of `C` (every remaining operation, `R` included,
//! appears in it). Let `σ' = R x1 … xk y1 …`.
//! - Real-time order: `R` is a candidate, so no remaining operation returned
//!   before `R` was invoked; nothing must precede `R`. Moving `R` earlier
//!   only strengthens the constraints where `R` comes first. Every other
//!   pair keeps its relative order.
//! - Model: `R` is legal in `s` and leaves `s` unchanged, so `x1 … xk` run
//!   from the same state as in `σ` and reach the same state `t` in which `σ`
//!   applied `R`; there `R` was legal, hence `step(t, R) = t`, so `y1 …` also
//!   start from the same state. Every step of `σ'` is legal.
//!
//! Nothing in the argument depends on whether other operations completed:
//! pending and indeterminate operations are just remaining operations whose
//! return is at infinity, and an indeterminate read (output unknown) is legal
//! everywhere, so it is always linearized at once. An `R` that is *not*
//! legal now is left alone — it may become legal later. The reduction is
//! applied after every step, the memo records the reduced configuration, and
//! the equivalence above makes that exact: memoized failure of `C + R`
//! proves failure of `C`. The "never changes the state" premise is the
//! model's promise; [`crate::intern::Interner`] verifies it on every
//! transition it computes and fails the check if it is broken.
//!
//! # Model hints
//!
//! A model may add ordering facts that hold in every valid linearization
//! ([`crate::Model::hints`]); an operation is a candidate only once its
//! hinted predecessors are linearized. This removes no valid linearization,
//! and the argument above still applies: `σ'` is a valid linearization, so
//! it obeys the facts too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::check::CheckError;
use crate::intern::Stepper;
use crate::memo::Memo;

/// One part, compiled: per operation its call and return positions in
/// real-time order (`u64::MAX` for indeterminate) and its class, plus
/// ordering facts from the model (`(a, b)`: `a` precedes `b`).
pub(crate) struct PartInput {
    pub call: Vec<u64>,
    pub ret: Vec<u64>,
    pub class: Vec<u32>,
    pub before: Vec<(u32, u32)>,
}

/// Shared memory accounting across the parts checked in parallel.
pub(crate) struct MemoryGauge {
    used: AtomicUsize,
    peak: AtomicUsize,
    budget: Option<usize>,
}

impl MemoryGauge {
    pub(crate) fn new(budget: Option<usize>) -> Self {
        MemoryGauge {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            budget,
        }
    }

    /// Replaces this search's previous report `mine` with `now`; false when
    /// the total is over budget.
    fn report(&self, mine: &mut usize, now: usize) -> bool {
        let total = if now >= *mine {
            self.used.fetch_add(now - *mine, Ordering::Relaxed) + (now - *mine)
        } else {
            self.used.fetch_sub(*mine - now, Ordering::Relaxed) - (*mine - now)
        };
        *mine = now;
        self.peak.fetch_max(total, Ordering::Relaxed);
        self.budget.is_none_or(|b| total <= b)
    }

    /// Highest total reported.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// When a search must give up.
pub(crate) struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    pub memory: &'a MemoryGauge,
}

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    Deadline,
    Memory,
    Cancelled,
}

/// Where a failed search got furthest, in part-local operation numbers.
pub(crate) struct Failure {
    /// The longest linearization found: (operation, state after it).
    pub prefix: Vec<(u32, u32)>,
    /// The state after that prefix.
    pub state: u32,
    /// Candidates at that point: (operation, state after it if legal).
    pub candidates: Vec<(u32, Option<u32>)>,
    /// The operation whose return cannot be passed, if any.
    pub blocking: Option<u32>,
}

pub(crate) enum Outcome {
    Linearizable,
    NotLinearizable(Failure),
    Aborted(Abort),
}

/// Counters describing one search.
#[derive(Clone, Debug, Default)]
pub(crate) struct SearchStats {
    /// Configurations explored (memo insertions).
    pub nodes: u64,
    /// Configurations skipped because the memo had them.
    pub memo_hits: u64,
    /// Dead ends.
    pub backtracks: u64,
    /// Operations linearized by the read-only reduction.
    pub forced: u64,
    /// Distinct model states reached.
    pub states: usize,
    /// Ordering hints in force.
    pub hint_edges: usize,
    /// Indeterminate operations the hints dropped.
    pub dropped: usize,
}

const HEAD: u32 = 0;
const UNCOMPUTED: u32 = u32::MAX;
const ILLEGAL: u32 = u32::MAX - 1;
/// Below this many classes the step cache is a dense table.
const DENSE_CLASSES: usize = 64;
/// Limits are checked every this many loop iterations.
const TICK_MASK: u32 = (1 << 10) - 1;

/// `(state, class) -> state` transitions already computed.
enum StepCache {
    Dense { classes: usize, table: Vec<u32> },
    Sparse(FxHashMap<u64, u32>),
}

impl StepCache {
    fn new(classes: usize) -> Self {
        if classes <= DENSE_CLASSES {
            StepCache::Dense {
                classes,
                table: Vec::new(),
            }
        } else {
            StepCache::Sparse(FxHashMap::default())
        }
    }

    #[inline]
    fn get(&self, state: u32, class: u32) -> u32 {
        match self {
            StepCache::Dense { classes, table } => table
                .get(state as usize * classes + class as usize)
                .copied()
                .unwrap_or(UNCOMPUTED),
            StepCache::Sparse(map) => map
                .get(&(u64::from(state) << 32 | u64::from(class)))
                .copied()
                .unwrap_or(UNCOMPUTED),
        }
    }

    fn put(&mut self, state: u32, class: u32, next: u32) {
        match self {
            StepCache::Dense { classes, table } => {
                let at = state as usize * *classes + class as usize;
                if at >= table.len() {
                    table.resize((state as usize + 1) * *classes, UNCOMPUTED);
                }
                table[at] = next;
            }
            StepCache::Sparse(map) => {
                map.insert(u64::from(state) << 32 | u64::from(class), next);
            }
        }
    }

    fn approx_bytes(&self) -> usize {
        match self {
            StepCache::Dense { table, .. } => table.capacity() * 4,
            StepCache::Sparse(map) => map.capacity() * 13,
        }
    }
}

#[derive(Clone, Copy)]
struct Frame {
    op: u32,
    prev_state: u32,
    forced: bool,
}

/// SplitMix64: a fixed, well-mixed 64-bit function for Zobrist keys.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[inline]
fn state_key(state: u32) -> u64 {
    splitmix64(u64::from(state) ^ 0xA076_1D64_78BD_642F)
}

struct Engine<'s> {
    /// Part-local operation number of each search operation (return order).
    order: Vec<u32>,
    class: Vec<u32>,
    read_only: Vec<bool>,
    call_ev: Vec<u32>,
    ret_ev: Vec<u32>,
    /// Event id -> operation << 1 | is_return.
    ev: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    tail: u32,
    zobrist: Vec<u64>,
    /// Hinted successors of each operation (CSR: `succ[succ_at[i]..succ_at[i + 1]]`).
    succ_at: Vec<u32>,
    succ: Vec<u32>,
    /// Number of hinted predecessors not yet linearized.
    waiting: Vec<u32>,
    words: Vec<u64>,
    /// First word of `words` that is not all ones.
    lo: usize,
    /// One past the last non-zero word.
    hi: usize,
    hash: u64,
    state: u32,
    stack: Vec<Frame>,
    best: Vec<Frame>,
    best_state: u32,
    memo: Memo,
    cache: StepCache,
    stepper: &'s mut dyn Stepper,
    stats: SearchStats,
    reported_bytes: usize,
}

/// Checks one part. `Err` only for model contract violations.
///
/// `explain` is for parts already known not to be linearizable (the model
/// refuted an operation): the search then only looks for the longest prefix
/// to show, stops after that many configurations or at any limit, and
/// reports the best prefix found so far instead of giving up.
pub(crate) fn search(
    input: &PartInput,
    classes: usize,
    stepper: &mut dyn Stepper,
    limits: &Limits<'_>,
    explain: Option<u64>,
) -> Result<(Outcome, SearchStats), CheckError> {
    let mut engine = Engine::new(input, classes, stepper);
    let outcome = engine.run(limits, explain);
    engine.stats.states = engine.stepper.state_count();
    let bytes = engine.approx_bytes();
    limits.memory.report(&mut engine.reported_bytes, bytes);
    limits.memory.report(&mut engine.reported_bytes, 0);
    Ok((outcome?, engine.stats))
}

impl<'s> Engine<'s> {
    fn new(input: &PartInput, classes: usize, stepper: &'s mut dyn Stepper) -> Self {
        let n = input.call.len();
        // Number operations by return (then call) so the linearized set is a
        // run of ones plus a short window; see `memo`.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| (input.ret[i as usize], input.call[i as usize]));
        let class: Vec<u32> = order.iter().map(|&i| input.class[i as usize]).collect();
        let read_only: Vec<bool> = class.iter().map(|&c| stepper.read_only(c)).collect();

        // Events in real-time order: (position, is_return, op).
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        for (rank, &i) in order.iter().enumerate() {
            events.push((input.call[i as usize], false, rank as u32));
            events.push((input.ret[i as usize], true, rank as u32));
        }
        events.sort_unstable();
        let tail = 2 * n as u32 + 1;
        let mut ev = vec![0u32; 2 * n + 2];
        let mut call_ev = vec![0u32; n];
        let mut ret_ev = vec![0u32; n];
        for (k, &(_, is_ret, op)) in events.iter().enumerate() {
            let id = k as u32 + 1;
            ev[id as usize] = op << 1 | u32::from(is_ret);
            if is_ret {
                ret_ev[op as usize] = id;
            } else {
                call_ev[op as usize] = id;
            }
        }
        let next: Vec<u32> = (0..=tail)
            .map(|e| if e == tail { tail } else { e + 1 })
            .collect();
        let prev: Vec<u32> = (0..=tail).map(|e| e.saturating_sub(1)).collect();
        let zobrist = (0..n as u64)
            .map(|i| splitmix64(i.wrapping_mul(0x2545_F491_4F6C_DD1D)))
            .collect();
        let mut rank = vec![0u32; n];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let mut edges: Vec<(u32, u32)> = input
            .before
            .iter()
            .filter(|&&(a, b)| a != b && (a as usize) < n && (b as usize) < n)
            .map(|&(a, b)| (rank[a as usize], rank[b as usize]))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let mut succ_at = vec![0u32; n + 1];
        let mut waiting = vec![0u32; n];
        for &(a, b) in &edges {
            succ_at[a as usize + 1] += 1;
            waiting[b as usize] += 1;
        }
        for i in 0..n {
            succ_at[i + 1] += succ_at[i];
        }
        let succ: Vec<u32> = edges.iter().map(|&(_, b)| b).collect();
        Engine {
            order,
            class,
            read_only,
            call_ev,
            ret_ev,
            ev,
            next,
            prev,
            tail,
            zobrist,
            succ_at,
            succ,
            waiting,
            words: vec![0u64; n.div_ceil(64)],
            lo: 0,
            hi: 0,
            hash: 0,
            state: 0,
            stack: Vec::new(),
            best: Vec::new(),
            best_state: 0,
            memo: Memo::new(),
            cache: StepCache::new(classes),
            stepper,
            stats: SearchStats::default(),
            reported_bytes: 0,
        }
    }

    fn run(&mut self, limits: &Limits<'_>, explain: Option<u64>) -> Result<Outcome, CheckError> {
        self.state = self.stepper.initial();
        self.best_state = self.state;
        self.closure()?;
        match self.remember() {
            Some(_) => {}
            None => return self.stop(Abort::Memory, explain.is_some()),
        }
        let mut entry = self.next[HEAD as usize];
        // Start so the first iteration already checks the limits.
        let mut ticks: u32 = TICK_MASK;
        loop {
            if self.next[HEAD as usize] == self.tail {
                return Ok(Outcome::Linearizable);
            }
            ticks = ticks.wrapping_add(1);
            if ticks & TICK_MASK == 0 {
                if let Some(abort) = self.over_limits(limits) {
                    return self.stop(abort, explain.is_some());
                }
                if explain.is_some_and(|budget| self.stats.nodes >= budget) {
                    return self.stop(Abort::Cancelled, true);
                }
            }
            let code = self.ev[entry as usize];
            if entry != self.tail && code & 1 == 0 {
                let op = code >> 1;
                if self.waiting[op as usize] != 0 {
                    entry = self.next[entry as usize];
                    continue;
                }
                match self.step(self.state, op)? {
                    Some(after) => {
                        let depth = self.stack.len();
                        self.push(op, after, false);
                        self.closure()?;
                        match self.remember() {
                            Some(true) => {
                                self.stats.nodes += 1;
                                entry = self.next[HEAD as usize];
                            }
                            Some(false) => {
                                self.stats.memo_hits += 1;
                                while self.stack.len() > depth {
                                    self.pop();
                                }
                                entry = self.next[self.call_ev[op as usize] as usize];
                            }
                            None => return self.stop(Abort::Memory, explain.is_some()),
                        }
                    }
                    None => entry = self.next[entry as usize],
                }
            } else {
                // A return (or the end): its operation cannot be placed here.
                self.stats.backtracks += 1;
                if self.stack.len() > self.best.len() {
                    self.best.clear();
                    self.best.extend_from_slice(&self.stack);
                    self.best_state = self.state;
                }
                while self.stack.last().is_some_and(|f| f.forced) {
                    self.pop();
                }
                let Some(choice) = self.pop() else {
                    return Ok(Outcome::NotLinearizable(self.failure()?));
                };
                entry = self.next[self.call_ev[choice.op as usize] as usize];
            }
        }
    }

    /// Ends the search early: gives up (`Aborted`), or, when the part is
    /// already known to fail, unwinds and explains with the best prefix so far.
    fn stop(&mut self, abort: Abort, known_failing: bool) -> Result<Outcome, CheckError> {
        if !known_failing {
            return Ok(Outcome::Aborted(abort));
        }
        if self.stack.len() > self.best.len() {
            self.best.clear();
            self.best.extend_from_slice(&self.stack);
            self.best_state = self.state;
        }
        while self.pop().is_some() {}
        Ok(Outcome::NotLinearizable(self.failure()?))
    }

    /// Linearizes every candidate that is read-only and legal now (sound by
    /// the argument in the module doc).
    fn closure(&mut self) -> Result<(), CheckError> {
        let mut e = self.next[HEAD as usize];
        while e != self.tail {
            let code = self.ev[e as usize];
            if code & 1 == 1 {
                break;
            }
            let op = code >> 1;
            if self.read_only[op as usize]
                && self.waiting[op as usize] == 0
                && let Some(after) = self.step(self.state, op)?
            {
                let before = self.prev[e as usize];
                self.push(op, after, true);
                self.stats.forced += 1;
                e = self.next[before as usize];
                continue;
            }
            e = self.next[e as usize];
        }
        Ok(())
    }

    #[inline]
    fn step(&mut self, state: u32, op: u32) -> Result<Option<u32>, CheckError> {
        let class = self.class[op as usize];
        match self.cache.get(state, class) {
            UNCOMPUTED => {
                let next = self.stepper.step(state, class)?;
                self.cache.put(state, class, next.unwrap_or(ILLEGAL));
                Ok(next)
            }
            ILLEGAL => Ok(None),
            next => Ok(Some(next)),
        }
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }

    fn push(&mut self, op: u32, after: u32, forced: bool) {
        self.unlink(self.call_ev[op as usize]);
        self.unlink(self.ret_ev[op as usize]);
        let w = op as usize / 64;
        self.words[w] |= 1 << (op % 64);
        self.hi = self.hi.max(w + 1);
        while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
        self.hash ^= self.zobrist[op as usize];
        for k in self.succ_at[op as usize]..self.succ_at[op as usize + 1] {
            self.waiting[self.succ[k as usize] as usize] -= 1;
        }
        self.stack.push(Frame {
            op,
            prev_state: self.state,
            forced,
        });
        self.state = after;
    }

    fn pop(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        let op = frame.op;
        // Undo in reverse order of `push`.
        self.relink(self.ret_ev[op as usize]);
        self.relink(self.call_ev[op as usize]);
        let w = op as usize / 64;
        self.words[w] &= !(1 << (op % 64));
        self.lo = self.lo.min(w);
        while self.hi > 0 && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
        self.hash ^= self.zobrist[op as usize];
        for k in self.succ_at[op as usize]..self.succ_at[op as usize + 1] {
            self.waiting[self.succ[k as usize] as usize] += 1;
        }
        self.state = frame.prev_state;
        Some(frame)
    }

    /// Adds the current configuration to the memo: `Some(true)` if new,
    /// `None` if the memo cannot grow.
    fn remember(&mut self) -> Option<bool> {
        let key = self.hash ^ state_key(self.state);
        let hi = self.hi.max(self.lo);
        self.memo
            .insert(key, self.state, self.lo as u32, &self.words[self.lo..hi])
            .ok()
    }

    fn approx_bytes(&self) -> usize {
        self.memo.approx_bytes()
            + self.cache.approx_bytes()
            + self.stepper.approx_bytes()
            + (self.stack.capacity() + self.best.capacity()) * std::mem::size_of::<Frame>()
            + self.ev.len() * 16
    }

    fn over_limits(&mut self, limits: &Limits<'_>) -> Option<Abort> {
        if (limits.cancelled)() {
            return Some(Abort::Cancelled);
        }
        if limits.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(Abort::Deadline);
        }
        let bytes = self.approx_bytes();
        if !limits.memory.report(&mut self.reported_bytes, bytes) {
            return Some(Abort::Memory);
        }
        None
    }

    /// Rebuilds the furthest configuration reached and lists what could be
    /// tried there. Called with the stack empty (every event linked).
    fn failure(&mut self) -> Result<Failure, CheckError> {
        let best = std::mem::take(&mut self.best);
        let mut prefix = Vec::with_capacity(best.len());
        for (i, frame) in best.iter().enumerate() {
            let after = best.get(i + 1).map_or(self.best_state, |f| f.prev_state);
            prefix.push((self.order[frame.op as usize], after));
            self.push(frame.op, after, frame.forced);
        }
        let state = self.best_state;
        let mut candidates = Vec::new();
        let mut blocking = None;
        let mut e = self.next[HEAD as usize];
        while e != self.tail {
            let code = self.ev[e as usize];
            let op = code >> 1;
            if code & 1 == 1 {
                blocking = Some(self.order[op as usize]);
                break;
            }
            if self.waiting[op as usize] != 0 {
                e = self.next[e as usize];
                continue;
            }
            let after = self.step(state, op)?;
            candidates.push((self.order[op as usize], after));
            e = self.next[e as usize];
        }
        Ok(Failure {
            prefix,
            state,
            candidates,
            blocking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register over small integers compiled by hand: classes are
    /// write(v) for v < 4, read(v) for v < 4 as classes 4..8; states are values.
    struct TinyRegister;

    impl Stepper for TinyRegister {
        fn initial(&mut self) -> u32 {
            0
        }
        fn step(&mut self, state: u32, class: u32) -> Result<Option<u32>, CheckError> {
            Ok(if class < 4 {
                Some(class)
            } else {
                (state == class - 4).then_some(state)
            })
        }
        fn read_only(&self, class: u32) -> bool {
            class >= 4
        }
        fn describe_state(&self, state: u32) -> String {
            state.to_string()
        }
        fn approx_bytes(&self) -> usize {
            0
        }
        fn state_count(&self) -> usize {
            4
        }
    }

    fn run(ops: &[(u64, u64, u32)]) -> Outcome {
        let input = PartInput {
            call: ops.iter().map(|o| o.0).collect(),
            ret: ops.iter().map(|o| o.1).collect(),
            class: ops.iter().map(|o| o.2).collect(),
            before: Vec::new(),
        };
        let gauge = MemoryGauge::new(None);
        let never = || false;
        let limits = Limits {
            deadline: None,
            cancelled: &never,
            memory: &gauge,
        };
        search(&input, 8, &mut TinyRegister, &limits, None)
            .unwrap()
            .0
    }

    const W1: u32 = 1;
    const W2: u32 = 2;
    const R0: u32 = 4;
    const R1: u32 = 5;
    const R2: u32 = 6;

    #[test]
    fn sequential_write_then_read_is_linearizable() {
        assert!(matches!(
            run(&[(0, 1, W1), (2, 3, R1)]),
            Outcome::Linearizable
        ));
    }

    #[test]
    fn stale_read_after_completed_write_is_not() {
        let Outcome::NotLinearizable(f) = run(&[(0, 1, W1), (2, 3, R0)]) else {
            panic!("expected a violation");
        };
        assert_eq!(f.prefix, vec![(0, 1)]);
        assert_eq!(f.candidates, vec![(1, None)]);
        assert_eq!(f.blocking, Some(1));
    }

    #[test]
    fn concurrent_read_may_see_either_side() {
        assert!(matches!(
            run(&[(0, 3, W1), (1, 2, R0)]),
            Outcome::Linearizable
        ));
        assert!(matches!(
            run(&[(0, 3, W1), (1, 2, R1)]),
            Outcome::Linearizable
        ));
    }

    #[test]
    fn reads_forcing_opposite_orders_of_two_writes_fail() {
        // w1 and w2 overlap; a later read sees 1 then a later read sees 2 then 1.
        let ops = [(0, 3, W1), (1, 2, W2), (4, 5, R2), (6, 7, R1)];
        assert!(matches!(run(&ops), Outcome::NotLinearizable(_)));
    }

    #[test]
    fn indeterminate_write_may_land_late_or_never() {
        let never = u64::MAX;
        // The info write of 2 lands between two reads...
        assert!(matches!(
            run(&[(0, never, W2), (1, 2, R0), (3, 4, R2)]),
            Outcome::Linearizable
        ));
        // ...or never.
        assert!(matches!(
            run(&[(0, never, W2), (1, 2, R0), (3, 4, R0)]),
            Outcome::Linearizable
        ));
        // But not before its invocation.
        assert!(matches!(
            run(&[(1, 2, R2), (3, never, W2)]),
            Outcome::NotLinearizable(_)
        ));
    }
}

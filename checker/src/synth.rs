//! Synthetic histories with known verdicts, for tests and benchmarks.
//!
//! The generators simulate a correct store: concurrent clients invoke
//! operations at random times, each takes effect at a random instant inside
//! its interval (the simulation applies them in that order), and completes
//! later. Such a history is linearizable by construction — the effect
//! instants are a witness. Some operations time out (`info`): they take
//! effect at a random instant that may fall after the client gave up, or
//! never, and the client continues as a new process, as in Jepsen. Some
//! fail and have no effect. The mutators then break a history in ways that
//! are never linearizable.
//!
//! Everything is seeded (ChaCha8), so a seed names a history.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use histories::{Event, EventType, History, OpStatus, Operation};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// Shape of a generated key/value history (the classic lab-test workload:
/// get / put / append with unique appended values).
#[derive(Clone, Debug, PartialEq)]
pub struct KvWorkload {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations in total.
    pub ops: usize,
    /// Keys, chosen uniformly.
    pub keys: usize,
    /// Fraction of gets.
    pub get_ratio: f64,
    /// Fraction of puts (the rest are appends).
    pub put_ratio: f64,
    /// Fraction of operations that time out (`info`).
    pub info_ratio: f64,
    /// Fraction of operations that `fail`.
    pub fail_ratio: f64,
    /// Upper bound of each half of an operation's latency, in nanoseconds.
    pub latency_ns: u64,
    /// The seed.
    pub seed: u64,
}

impl Default for KvWorkload {
    fn default() -> Self {
        KvWorkload {
            clients: 10,
            ops: 1000,
            keys: 10,
            get_ratio: 0.4,
            put_ratio: 0.1,
            info_ratio: 0.01,
            fail_ratio: 0.01,
            latency_ns: 1_000_000,
            seed: 1,
        }
    }
}

/// Shape of a generated register history (read / write / cas over a small
/// value domain, like Jepsen's etcd tests).
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterWorkload {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations in total.
    pub ops: usize,
    /// Values are drawn from `0..values`.
    pub values: u64,
    /// Fraction of reads.
    pub read_ratio: f64,
    /// Fraction of writes (the rest are compare-and-sets).
    pub write_ratio: f64,
    /// Fraction of operations that time out (`info`).
    pub info_ratio: f64,
    /// Upper bound of each half of an operation's latency, in nanoseconds.
    pub latency_ns: u64,
    /// The seed.
    pub seed: u64,
}

impl Default for RegisterWorkload {
    fn default() -> Self {
        RegisterWorkload {
            clients: 5,
            ops: 200,
            values: 5,
            read_ratio: 0.4,
            write_ratio: 0.3,
            info_ratio: 0.05,
            latency_ns: 1_000_000,
            seed: 1,
        }
    }
}

/// How a simulated operation ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Ok,
    Fail,
    Info,
    /// No completion event at all (the history stops first).
    Pending,
}

struct SimOp {
    process: u64,
    f: &'static str,
    key: Option<Value>,
    input: Value,
    output: Value,
    invoke: u64,
    complete: u64,
    /// When it takes effect; `None` if it never does.
    effect: Option<u64>,
    end: End,
}

/// Runs `count` operations from `clients` clients; `make` chooses each
/// operation (f, key, input) given the rng and the process; `ends` picks how
/// it ends. Returns operations with times and effect instants.
fn simulate(
    rng: &mut ChaCha8Rng,
    clients: usize,
    count: usize,
    latency: u64,
    mut make: impl FnMut(&mut ChaCha8Rng, u64) -> (&'static str, Option<Value>, Value),
    mut ends: impl FnMut(&mut ChaCha8Rng, &'static str) -> End,
) -> Vec<SimOp> {
    let latency = latency.max(2);
    let mut free: BinaryHeap<Reverse<(u64, usize)>> =
        (0..clients.max(1)).map(|c| Reverse((0, c))).collect();
    let mut process: Vec<u64> = (0..clients.max(1) as u64).collect();
    let mut next_process = process.len() as u64;
    let mut ops = Vec::with_capacity(count);
    while ops.len() < count {
        let Some(Reverse((at, client))) = free.pop() else {
            break;
        };
        let invoke = at + rng.random_range(1..=latency / 2);
        let p = process[client];
        let (f, key, input) = make(rng, p);
        let mut end = ends(rng, f);
        let effect_at = invoke + rng.random_range(1..latency);
        let complete = effect_at + rng.random_range(1..latency);
        let effect = match end {
            End::Ok => Some(effect_at),
            End::Fail => None,
            // An indeterminate op may land after the client gave up, or never.
            End::Info | End::Pending => rng
                .random_bool(0.5)
                .then(|| invoke + rng.random_range(1..3 * latency)),
        };
        if end == End::Info {
            process[client] = next_process;
            next_process += 1;
        }
        if ops.len() + clients >= count && end == End::Info {
            end = End::Pending;
        }
        ops.push(SimOp {
            process: p,
            f,
            key,
            input: input.clone(),
            output: input,
            invoke,
            complete,
            effect,
            end,
        });
        if end != End::Pending {
            free.push(Reverse((complete, client)));
        }
    }
    ops
}

/// Applies effects in order of their instants, filling in what reads saw.
fn apply_effects(ops: &mut [SimOp], mut apply: impl FnMut(&mut SimOp)) {
    let mut order: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].effect.is_some())
        .collect();
    order.sort_by_key(|&i| (ops[i].effect, i));
    for i in order {
        apply(&mut ops[i]);
    }
}

/// Turns simulated operations into a history.
fn to_history(ops: &[SimOp]) -> History {
    let mut raw: Vec<(u64, usize, bool)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        raw.push((op.invoke, i, false));
        if op.end != End::Pending {
            raw.push((op.complete, i, true));
        }
    }
    raw.sort_unstable();
    let events = raw
        .iter()
        .enumerate()
        .map(|(index, &(time, i, completion))| {
            let op = &ops[i];
            let (kind, value) = if !completion {
                let v = if op.f == "get" || op.f == "read" {
                    Value::Null
                } else {
                    op.input.clone()
                };
                (EventType::Invoke, v)
            } else {
                match op.end {
                    End::Ok => (EventType::Ok, op.output.clone()),
                    End::Fail => (EventType::Fail, op.input.clone()),
                    _ => (EventType::Info, op.input.clone()),
                }
            };
            Event {
                index: index as u64,
                process: op.process,
                kind,
                f: op.f.to_string(),
                key: op.key.clone(),
                value,
                time,
            }
        })
        .collect();
    History::new(events)
}

/// A linearizable key/value history (see the module doc).
pub fn kv_history(w: &KvWorkload) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed);
    let mut counters: HashMap<u64, u64> = HashMap::new();
    let keys = w.keys.max(1);
    let mut ops = simulate(
        &mut rng,
        w.clients,
        w.ops,
        w.latency_ns,
        |rng, p| {
            let key = json!(rng.random_range(0..keys).to_string());
            let roll: f64 = rng.random();
            if roll < w.get_ratio {
                return ("get", Some(key), Value::Null);
            }
            let n = counters.entry(p).or_insert(0);
            let value = json!(format!("x {p} {n} y"));
            *n += 1;
            let f = if roll < w.get_ratio + w.put_ratio {
                "put"
            } else {
                "append"
            };
            (f, Some(key), value)
        },
        |rng, _| end_for(rng, w.info_ratio, w.fail_ratio),
    );
    let mut store: HashMap<String, String> = HashMap::new();
    apply_effects(&mut ops, |op| {
        let key = op
            .key
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match op.f {
            "get" => {
                op.output = store.get(&key).map_or(Value::Null, |v| json!(v));
            }
            "put" => {
                store.insert(key, op.input.as_str().unwrap_or_default().to_string());
            }
            _ => store
                .entry(key)
                .or_default()
                .push_str(op.input.as_str().unwrap_or_default()),
        }
    });
    to_history(&ops)
}

/// A linearizable register history (see the module doc). A compare that
/// does not match completes `fail`, as in Jepsen.
pub fn register_history(w: &RegisterWorkload) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed);
    let values = w.values.max(1);
    let mut ops = simulate(
        &mut rng,
        w.clients,
        w.ops,
        w.latency_ns,
        |rng, _| {
            let roll: f64 = rng.random();
            if roll < w.read_ratio {
                ("read", None, Value::Null)
            } else if roll < w.read_ratio + w.write_ratio {
                ("write", None, json!(rng.random_range(0..values)))
            } else {
                let pair = json!([rng.random_range(0..values), rng.random_range(0..values)]);
                ("cas", None, pair)
            }
        },
        |rng, _| end_for(rng, w.info_ratio, 0.0),
    );
    let mut register = Value::Null;
    apply_effects(&mut ops, |op| match op.f {
        "read" => op.output = register.clone(),
        "write" => register = op.input.clone(),
        _ => {
            if register == op.input[0] {
                register = op.input[1].clone();
            } else if op.end == End::Ok {
                // The compare did not match: Jepsen records that as a failure.
                op.end = End::Fail;
            }
        }
    });
    to_history(&ops)
}

fn end_for(rng: &mut ChaCha8Rng, info: f64, fail: f64) -> End {
    let roll: f64 = rng.random();
    if roll < info {
        End::Info
    } else if roll < info + fail {
        End::Fail
    } else {
        End::Ok
    }
}

/// Replaces the `ok` value of operation `op` in a history.
fn set_output(history: &mut History, op: &Operation, value: Value) {
    if let Some(index) = op.return_index
        && let Some(event) = history.events.iter_mut().find(|e| e.index == index)
    {
        event.value = value;
    }
}

/// Breaks a kv history with a stale read: a get that is invoked after an
/// append or put completed returns what an earlier get saw before that write
/// was invoked. With unique appended values a key never returns to an old
/// value, so the result is never linearizable. `None` if the history has no
/// such triple of operations.
pub fn inject_stale_read(history: &History, seed: u64) -> Option<History> {
    let ops = history.operations().ok()?;
    let ok = |o: &&Operation| o.status == OpStatus::Ok;
    let mut triples = Vec::new();
    for g in ops.iter().filter(ok).filter(|o| o.f == "get") {
        for w in ops
            .iter()
            .filter(ok)
            .filter(|o| o.key == g.key && (o.f == "put" || o.f == "append"))
        {
            if w.return_index.is_none_or(|r| r >= g.call_index)
                || w.input.as_str().is_none_or(str::is_empty)
            {
                continue;
            }
            for g0 in ops
                .iter()
                .filter(ok)
                .filter(|o| o.key == g.key && o.f == "get")
            {
                if g0.return_index.is_some_and(|r| r < w.call_index) && g0.output != g.output {
                    triples.push((g.id, g0.id));
                }
            }
        }
    }
    if triples.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (g, g0) = triples[rng.random_range(0..triples.len())];
    let mut broken = history.clone();
    set_output(
        &mut broken,
        &ops[g],
        ops[g0].output.clone().unwrap_or(Value::Null),
    );
    Some(broken)
}

/// Breaks a history with a phantom read: one successful read (`get` or
/// `read`) returns `phantom`, a value that was never written. Never
/// linearizable as long as `phantom` is not a reachable state. `None` if the
/// history has no successful read.
pub fn inject_phantom_read(history: &History, phantom: Value, seed: u64) -> Option<History> {
    let ops = history.operations().ok()?;
    let reads: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.status == OpStatus::Ok && (o.f == "get" || o.f == "read"))
        .collect();
    if reads.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target = reads[rng.random_range(0..reads.len())];
    let mut broken = history.clone();
    set_output(&mut broken, target, phantom);
    Some(broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let w = KvWorkload::default();
        assert_eq!(kv_history(&w), kv_history(&w));
        let r = RegisterWorkload::default();
        assert_eq!(register_history(&r), register_history(&r));
    }

    #[test]
    fn generated_histories_pair_and_have_the_requested_size() {
        let w = KvWorkload {
            ops: 500,
            info_ratio: 0.05,
            ..KvWorkload::default()
        };
        let ops = kv_history(&w).operations().unwrap();
        assert_eq!(ops.len(), 500);
        assert!(ops.iter().any(|o| o.status == OpStatus::Info));
        assert!(ops.iter().any(|o| o.status == OpStatus::Fail));
    }
}

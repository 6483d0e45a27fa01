//! A key/value store with get, put and append, checked one key at a time.
//!
//! History encoding: every op carries its `key`. `put` and `append` carry a
//! string value on invoke and completion; `get` invokes with `null` and its
//! `ok` carries the string read, `null` or `""` when the key is absent. As
//! in the classic lab tests (and Porcupine's kv model) an absent key and the
//! empty string are the same state, so a store that returns `""` for a
//! missing key and one that returns `null` both check.
//!
//! The specification is one key's value; the checker partitions the history
//! by key, and recombines keys into a product state when partitioning is
//! turned off.

use histories::{OpStatus, Operation};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::model::{HintOp, Hints};
use crate::spec::CheckerSpec;

/// One key's value (`""` when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvValue(pub String);

/// A key/value operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Read the value.
    Get,
    /// Replace the value.
    Put(String),
    /// Append to the value.
    Append(String),
}

/// What a key/value operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvRet {
    /// The value read (`""` when absent).
    GetOk(String),
    /// A put completed.
    PutOk,
    /// An append completed.
    AppendOk,
}

impl SequentialSpec for KvValue {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get => KvRet::GetOk(self.0.clone()),
            KvOp::Put(v) => {
                self.0.clone_from(v);
                KvRet::PutOk
            }
            KvOp::Append(v) => {
                self.0.push_str(v);
                KvRet::AppendOk
            }
        }
    }

    fn is_valid_step(&mut self, op: &KvOp, ret: &KvRet) -> bool {
        match (op, ret) {
            (KvOp::Get, KvRet::GetOk(v)) => &self.0 == v,
            _ => &self.invoke(op) == ret,
        }
    }
}

fn string_value(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("{what} value must be a string, found {other}")),
    }
}

impl CheckerSpec for KvValue {
    const NAME: &'static str = "kv";

    fn decode(op: &Operation) -> Result<(KvOp, Option<KvRet>), String> {
        let done = op.status == OpStatus::Ok;
        match op.f.as_str() {
            "get" => {
                let ret = match (&op.output, done) {
                    (Some(Value::Null), true) => Some(KvRet::GetOk(String::new())),
                    (Some(v), true) => Some(KvRet::GetOk(string_value(v, "get")?)),
                    _ => None,
                };
                Ok((KvOp::Get, ret))
            }
            "put" => Ok((
                KvOp::Put(string_value(&op.input, "put")?),
                done.then_some(KvRet::PutOk),
            )),
            "append" => Ok((
                KvOp::Append(string_value(&op.input, "append")?),
                done.then_some(KvRet::AppendOk),
            )),
            other => Err(format!(
                "the kv model knows get, put and append, not `{other}`"
            )),
        }
    }

    fn is_read_only(op: &KvOp, _ret: Option<&KvRet>) -> bool {
        matches!(op, KvOp::Get)
    }

    fn hints(ops: &[HintOp<'_, (KvOp, Option<KvRet>)>]) -> Hints {
        append_order_hints(ops)
    }

    fn describe(&self) -> String {
        Value::String(self.0.clone()).to_string()
    }

    fn describe_op(op: &KvOp, ret: Option<&KvRet>) -> String {
        let call = match op {
            KvOp::Get => "get()".to_string(),
            KvOp::Put(v) => format!("put({})", Value::String(v.clone())),
            KvOp::Append(v) => format!("append({})", Value::String(v.clone())),
        };
        match ret {
            None => format!("{call} -> ?"),
            Some(KvRet::GetOk(v)) => format!("{call} -> {}", Value::String(v.clone())),
            Some(_) => format!("{call} -> ok"),
        }
    }
}

/// How a value read decomposes into written values.
enum Parse {
    /// No decomposition: no order of writes produces this value.
    Impossible,
    /// Exactly one: the distinct written values, in order; the first is a
    /// put's value when `starts_with_put`.
    Unique {
        values: Vec<u32>,
        starts_with_put: bool,
    },
    /// Several; nothing can be concluded.
    Ambiguous,
}

/// Ordering facts for one key, read off what gets returned.
///
/// A key's value is the last put's value (or "") followed by the values of
/// the appends since, in order. Take a get that returned `v`, and suppose
/// `v` has exactly one decomposition `[p] a1 … ak` into written values (a
/// put's value first or not, then append values; empty values disable all
/// of this). Then in every valid linearization:
///
/// - the operations between the last put and the get are appends with
///   values `a1 … ak`, in this order, and the last put has value `p` (or
///   there is no put before the get at all). When a value belongs to a
///   single operation of that kind, that operation is identified, so
///   consecutive identified ones give edges `a_i → a_{i+1}` and `p → a1`;
/// - a write whose value does not occur in the decomposition (for its
///   kind) lies outside that stretch: if it was invoked after every put
///   that could be `p` returned (or there is no `p`), it follows the get:
///   edge `get → write`. Only writes concurrent with the get need it.
///
/// A decomposition starting with an append is only considered when no put
/// had certainly completed before the get was invoked.
///
/// Some reads are refuted outright (reported as impossible): a value with
/// no decomposition at all; a value containing something only written by
/// operations invoked after the get returned; and a value missing a write
/// that completed before the get began although it was invoked after every
/// put that could head the value (or at all, without a put head) — such a
/// write lies between the head and the get in every linearization. Without
/// this, refuting a read of a phantom value would mean trying every order of
/// the appends before it.
///
/// Separately, an indeterminate write whose value occurs in no
/// decomposition may be assumed never to have happened: in a valid
/// linearization no get lies between it and the next put (that get's
/// unique decomposition would contain its value), so removing it changes
/// no observation. This needs every get to decompose uniquely or not at
/// all; one ambiguous read disables it.
fn append_order_hints(ops: &[HintOp<'_, (KvOp, Option<KvRet>)>]) -> Hints {
    let mut table = TokenTable::default();
    for (i, h) in ops.iter().enumerate() {
        let (v, is_put) = match &h.op.0 {
            KvOp::Put(v) => (v, true),
            KvOp::Append(v) => (v, false),
            KvOp::Get => continue,
        };
        if v.is_empty() {
            return Hints::default();
        }
        table.add(v.as_bytes(), i, is_put);
    }
    table.lengths.sort_unstable();
    table.lengths.dedup();
    // The first return of a completed put: appends cannot open a value read
    // by a get invoked after it.
    let first_put_done = ops
        .iter()
        .filter(|h| matches!(h.op.0, KvOp::Put(_)))
        .filter_map(|h| h.ret)
        .min()
        .unwrap_or(u64::MAX);

    let mut by_call: Vec<usize> = (0..ops.len()).collect();
    by_call.sort_by_key(|&i| ops[i].call);
    let is_write = |i: usize| !matches!(ops[i].op.0, KvOp::Get);
    // value id and kind of each write
    let value_of: Vec<Option<(u32, bool)>> = ops
        .iter()
        .map(|h| match &h.op.0 {
            KvOp::Put(v) => Some((table.ids[v.as_bytes()], true)),
            KvOp::Append(v) => Some((table.ids[v.as_bytes()], false)),
            KvOp::Get => None,
        })
        .collect();
    let mut observed = vec![false; table.values.len()];
    let mut in_read = vec![usize::MAX; table.values.len()];
    let mut all_decomposed = true;
    let mut edges: FxHashSet<(usize, usize)> = FxHashSet::default();
    let mut impossible: Vec<(usize, String)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut scratch = ParseScratch::default();
    let show =
        |val: u32| Value::String(String::from_utf8_lossy(table.bytes[val as usize]).into_owned());
    'gets: for (pos, &g) in by_call.iter().enumerate() {
        let call = ops[g].call;
        open.retain(|&x| ops[x].ret.is_none_or(|r| r > call));
        if is_write(g) {
            open.push(g);
            continue;
        }
        let (KvOp::Get, Some(KvRet::GetOk(v))) = ops[g].op else {
            continue;
        };
        let Some(g_ret) = ops[g].ret else { continue };
        let put_done = first_put_done < call;
        let shown = Value::String(v.clone());
        let (values, starts_with_put) = match scratch.parse(v.as_bytes(), &table, !put_done) {
            Parse::Unique {
                values,
                starts_with_put,
            } => (values, starts_with_put),
            Parse::Impossible => {
                let after = if put_done {
                    " once a put has completed"
                } else {
                    ""
                };
                impossible.push((g, format!("get returned {shown}, which no sequence of this key's writes produces{after}")));
                continue;
            }
            Parse::Ambiguous => {
                all_decomposed = false;
                continue;
            }
        };
        // Mark each value with its kind in this read: bit 1 = as put, 2 = as append.
        for (k, &val) in values.iter().enumerate() {
            observed[val as usize] = true;
            let kind = if k == 0 && starts_with_put { 1 } else { 2 };
            in_read[val as usize] = if in_read[val as usize] >> 2 == g {
                in_read[val as usize] | kind
            } else {
                g << 2 | kind
            };
        }
        let writers = |k: usize| -> &Vec<usize> {
            let vals = &table.values[values[k] as usize];
            if k == 0 && starts_with_put {
                &vals.puts
            } else {
                &vals.appends
            }
        };
        // Every value read needs a writer invoked before the get returned.
        for (k, &val) in values.iter().enumerate() {
            if !writers(k).iter().any(|&x| ops[x].call < g_ret) {
                impossible.push((
                    g,
                    format!(
                        "get returned {shown}, but {} was only written after the get returned",
                        show(val)
                    ),
                ));
                continue 'gets;
            }
        }
        // The operation behind each element, when there is only one that
        // could be it (of the right kind, invoked before the get returned).
        let identify = |k: usize| -> Option<usize> {
            let mut it = writers(k).iter().copied().filter(|&x| ops[x].call < g_ret);
            let first = it.next()?;
            it.next().is_none().then_some(first)
        };
        let ids: Vec<Option<usize>> = (0..values.len()).map(identify).collect();
        for pair in ids.windows(2) {
            if let (Some(a), Some(b)) = (pair[0], pair[1]) {
                edges.insert((a, b));
            }
        }
        // When the value's head was put: the latest return among the puts
        // that could be it (unknown if one is indeterminate).
        let head_done = if starts_with_put {
            let mut latest = Some(0);
            for &p in writers(0).iter().filter(|&&p| ops[p].call < g_ret) {
                latest = match (latest, ops[p].ret) {
                    (Some(l), Some(r)) => Some(l.max(r)),
                    _ => None,
                };
            }
            match latest {
                Some(r) => Some(r),
                None => continue,
            }
        } else {
            None
        };
        let not_in_read = |x: usize| -> bool {
            let Some((val, put)) = value_of[x] else {
                return false;
            };
            let kind = if put { 1 } else { 2 };
            !(in_read[val as usize] >> 2 == g && in_read[val as usize] & kind != 0)
        };
        // A write invoked after the head was put (after nothing, without a
        // put head) lies between the head and the get or after the get. If
        // it completed before the get began, it must be in the value.
        let first = head_done.map_or(0, |r| by_call.partition_point(|&x| ops[x].call <= r));
        for &x in by_call[first.min(pos)..pos].iter() {
            if ops[x].ret.is_some_and(|r| r < call) && not_in_read(x) {
                let (val, put) = value_of[x].unwrap_or((0, false));
                let what = if put { "put" } else { "append" };
                impossible.push((g, format!("get returned {shown}, missing the {what} of {} that completed before the get began", show(val))));
                continue 'gets;
            }
        }
        // If it has not completed by then, it follows the get.
        let later = by_call[pos + 1..]
            .iter()
            .take_while(|&&x| ops[x].call < g_ret);
        for &x in open.iter().chain(later) {
            if not_in_read(x) && head_done.is_none_or(|r| ops[x].call > r) {
                edges.insert((g, x));
            }
        }
    }
    let mut before: Vec<(usize, usize)> = edges.into_iter().collect();
    before.sort_unstable();
    let never = if all_decomposed {
        (0..ops.len())
            .filter(|&i| ops[i].ret.is_none())
            .filter(|&i| value_of[i].is_some_and(|(val, _)| !observed[val as usize]))
            .collect()
    } else {
        Vec::new()
    };
    Hints {
        before,
        never,
        impossible,
    }
}

/// The operations that wrote one value.
#[derive(Default)]
struct ValueOps {
    puts: Vec<usize>,
    appends: Vec<usize>,
}

/// The written values of one key, for decomposing reads.
#[derive(Default)]
struct TokenTable<'a> {
    ids: FxHashMap<&'a [u8], u32>,
    /// The text of each value.
    bytes: Vec<&'a [u8]>,
    values: Vec<ValueOps>,
    value_len: Vec<usize>,
    /// Distinct value lengths, ascending.
    lengths: Vec<usize>,
}

impl<'a> TokenTable<'a> {
    fn add(&mut self, value: &'a [u8], op: usize, is_put: bool) {
        let next = self.values.len() as u32;
        let id = *self.ids.entry(value).or_insert(next);
        if id == next {
            self.bytes.push(value);
            self.values.push(ValueOps::default());
            self.value_len.push(value.len());
            self.lengths.push(value.len());
        }
        let entry = &mut self.values[id as usize];
        if is_put {
            entry.puts.push(op);
        } else {
            entry.appends.push(op);
        }
    }
}

/// Reusable buffers for decomposing read values.
#[derive(Default)]
struct ParseScratch {
    /// Number of decompositions of each prefix, saturating at 2.
    ways: Vec<u8>,
    /// The value ending the first decomposition of each prefix.
    last: Vec<u32>,
}

impl ParseScratch {
    /// Decomposes `v` into an optional put value followed by append values;
    /// `may_start_with_append` is false once some put certainly completed.
    fn parse(&mut self, v: &[u8], table: &TokenTable<'_>, may_start_with_append: bool) -> Parse {
        let n = v.len();
        if n == 0 {
            return if may_start_with_append {
                Parse::Unique {
                    values: Vec::new(),
                    starts_with_put: false,
                }
            } else {
                Parse::Impossible
            };
        }
        // Position 0 is special: a put's value or (maybe) an append's.
        let mut heads: Vec<(u32, bool)> = Vec::new();
        for &len in &table.lengths {
            if len > n {
                break;
            }
            if let Some(&id) = table.ids.get(&v[..len]) {
                let ops = &table.values[id as usize];
                if !ops.puts.is_empty() {
                    heads.push((id, true));
                }
                if may_start_with_append && !ops.appends.is_empty() {
                    heads.push((id, false));
                }
            }
        }
        let mut found: Option<(u32, bool, Vec<u32>)> = None;
        let mut count = 0u8;
        for (head, is_put) in heads {
            let start = table.value_len[head as usize];
            match self.appends_only(&v[start..], table) {
                0 => {}
                1 if count == 0 => {
                    count = 1;
                    found = Some((head, is_put, self.rebuild(v.len() - start, table)));
                }
                _ => count = 2,
            }
            if count >= 2 {
                return Parse::Ambiguous;
            }
        }
        match found {
            None => Parse::Impossible,
            Some((head, starts_with_put, rest)) => {
                let mut values = Vec::with_capacity(rest.len() + 1);
                values.push(head);
                values.extend(rest);
                Parse::Unique {
                    values,
                    starts_with_put,
                }
            }
        }
    }

    /// Number of ways (0, 1 or 2 = many) to split `v` into append values.
    fn appends_only(&mut self, v: &[u8], table: &TokenTable<'_>) -> u8 {
        let n = v.len();
        self.ways.clear();
        self.ways.resize(n + 1, 0);
        self.last.clear();
        self.last.resize(n + 1, u32::MAX);
        self.ways[0] = 1;
        for i in 0..n {
            if self.ways[i] == 0 {
                continue;
            }
            for &len in &table.lengths {
                if i + len > n {
                    break;
                }
                let Some(&id) = table.ids.get(&v[i..i + len]) else {
                    continue;
                };
                if table.values[id as usize].appends.is_empty() {
                    continue;
                }
                let j = i + len;
                if self.ways[j] == 0 {
                    self.last[j] = id;
                }
                self.ways[j] = (self.ways[j] + self.ways[i]).min(2);
            }
        }
        self.ways[n]
    }

    /// The unique split found by the last `appends_only` of length `n`.
    fn rebuild(&self, n: usize, table: &TokenTable<'_>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut j = n;
        while j > 0 {
            let id = self.last[j];
            out.push(id);
            j -= table.value_len[id as usize];
        }
        out.reverse();
        out
    }
}

//! `results.json`, read leniently.
//!
//! The runner writes it last, so a crashed run may have none, or half of one.
//! Every field is therefore optional here and a missing or mistyped field
//! shows as "unknown" rather than failing the report. The checker's own
//! JSON (`faultline check --json`) is kept as a value and summarised in
//! words: the verdict, the search's totals and, for a non-linearizable
//! history, the counterexample.

use std::fmt::Write as _;

use serde_json::Value;

/// The most prefix steps the counterexample summary lists; the HTML
/// timeline linked from the report has the rest.
const MAX_PREFIX_STEPS: usize = 12;
/// The most candidates the counterexample summary lists.
const MAX_CANDIDATES: usize = 12;

/// What the runner concluded, each field `None` when it is not known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunResults {
    /// The test's name.
    pub test: Option<String>,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: Option<String>,
    /// The seed of every random choice of the run.
    pub seed: Option<u64>,
    /// When the run began (RFC 3339).
    pub started_at: Option<String>,
    /// How long it ran, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The network fault backend.
    pub net: Option<String>,
    /// Cluster size.
    pub nodes: Option<u64>,
    /// Client processes at once.
    pub concurrency: Option<u64>,
    /// The workload's name.
    pub workload: Option<String>,
    /// The nemesis kinds asked for.
    pub nemesis: Option<Vec<String>>,
    /// Acknowledged operations per second during the client phase.
    pub rate_ok_per_s: Option<f64>,
    /// Why the run is unknown or failed, when the runner knows.
    pub error: Option<String>,
    /// Whether every node came back and answered the final reads.
    pub recovered: Option<bool>,
    /// The counterexample page, relative to the store directory.
    pub timeline: Option<String>,
    /// The checker's report, as `faultline check --json` prints it.
    pub checker: Option<Value>,
}

impl RunResults {
    /// Reads the text of `results.json`; the error says why nothing at all
    /// could be used (not JSON, or not an object).
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("results.json is not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("results.json is not a JSON object".to_string());
        };
        let string = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
        let number = |k: &str| map.get(k).and_then(Value::as_u64);
        Ok(RunResults {
            test: string("test"),
            verdict: string("verdict"),
            seed: number("seed"),
            started_at: string("started_at"),
            duration_ms: number("duration_ms"),
            net: string("net"),
            nodes: number("nodes"),
            concurrency: number("concurrency"),
            workload: string("workload"),
            nemesis: map.get("nemesis").and_then(Value::as_array).map(|kinds| {
                kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
            rate_ok_per_s: map.get("rate_ok_per_s").and_then(Value::as_f64),
            error: string("error"),
            recovered: map.get("recovered").and_then(Value::as_bool),
            timeline: string("timeline"),
            checker: map.get("checker").filter(|c| c.is_object()).cloned(),
        })
    }

    /// The verdict, folded onto the three the report knows.
    pub fn verdict_class(&self) -> &'static str {
        match self.verdict.as_deref() {
            Some("valid") => "valid",
            Some("invalid") => "invalid",
            _ => "unknown",
        }
    }

    /// The checker's conclusion in a few lines of text, `None` without a
    /// checker report.
    pub fn checker_summary(&self) -> Option<String> {
        self.checker.as_ref().map(summarise_checker)
    }
}

/// Puts the checker's JSON into words, tolerating any missing piece.
fn summarise_checker(checker: &Value) -> String {
    let mut out = String::new();
    let verdict = checker
        .get("verdict")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let _ = write!(out, "{verdict}");
    if let Some(model) = checker.get("model").and_then(Value::as_str) {
        let _ = write!(out, " (model {model})");
    }
    if let Some(reason) = checker.get("unknown_reason").filter(|r| !r.is_null()) {
        let _ = write!(out, "; unknown because: {}", plain(reason));
    }
    out.push('\n');
    if let Some(stats) = checker.get("stats") {
        let get = |k: &str| match stats.get(k) {
            Some(Value::Number(n)) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or(0.0)),
            Some(v) => plain(v),
            None => "?".to_string(),
        };
        let _ = writeln!(
            out,
            "{} operations in {} parts, searched {} configurations in {} ms",
            get("ops"),
            get("parts"),
            get("nodes"),
            get("elapsed_ms")
        );
    }
    if let Some(line) = checker.get("dropped_torn_line").and_then(Value::as_u64) {
        let _ = writeln!(
            out,
            "a torn last line ({line}) was dropped from the history"
        );
    }
    if let Some(cx) = checker.get("counterexample").filter(|c| c.is_object()) {
        summarise_counterexample(cx, &mut out);
    }
    out
}

/// The counterexample, in the spirit of the checker's own text output.
fn summarise_counterexample(cx: &Value, out: &mut String) {
    let ops = cx.get("ops").and_then(Value::as_array);
    let describe = |id: u64| -> String {
        ops.and_then(|ops| {
            ops.iter().find(|o| {
                o.get("op")
                    .and_then(|op| op.get("id"))
                    .and_then(Value::as_u64)
                    == Some(id)
            })
        })
        .map_or_else(
            || format!("#{id}"),
            |o| {
                let process = o
                    .get("op")
                    .and_then(|op| op.get("process"))
                    .map_or_else(|| "?".to_string(), plain);
                let what = o.get("description").and_then(Value::as_str).unwrap_or("?");
                format!("#{id} p{process} {what}")
            },
        )
    };
    let key = cx
        .get("key")
        .filter(|k| !k.is_null())
        .map_or_else(String::new, |k| format!(" on key {}", plain(k)));
    let _ = writeln!(
        out,
        "not linearizable{key} ({} operations in the failing part)",
        ops.map_or(0, Vec::len)
    );
    if let Some(why) = cx.get("explanation").and_then(Value::as_str) {
        let _ = writeln!(out, "why: {why}");
    }
    if let Some(state) = cx.get("initial_state").and_then(Value::as_str) {
        let _ = writeln!(out, "initial state: {state}");
    }
    if let Some(prefix) = cx.get("longest_prefix").and_then(Value::as_array) {
        let _ = writeln!(
            out,
            "longest linearizable prefix: {} operations",
            prefix.len()
        );
        let skip = prefix.len().saturating_sub(MAX_PREFIX_STEPS);
        if skip > 0 {
            let _ = writeln!(out, "  … {skip} earlier steps");
        }
        for step in &prefix[skip..] {
            let id = step.get("op").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let after = step
                .get("state_after")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let _ = writeln!(out, "  {} => {after}", describe(id));
        }
    }
    if let Some(state) = cx.get("stuck_state").and_then(Value::as_str) {
        let _ = writeln!(out, "stuck in state {state}; could not come next:");
    }
    if let Some(candidates) = cx.get("candidates").and_then(Value::as_array) {
        for c in candidates.iter().take(MAX_CANDIDATES) {
            let id = c.get("op").and_then(Value::as_u64).unwrap_or(u64::MAX);
            match c.get("state_after").and_then(Value::as_str) {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "  {} => {s}, but every continuation fails",
                        describe(id)
                    );
                }
                None => {
                    let _ = writeln!(out, "  {} is impossible in that state", describe(id));
                }
            }
        }
        if candidates.len() > MAX_CANDIDATES {
            let _ = writeln!(out, "  … {} more", candidates.len() - MAX_CANDIDATES);
        }
    }
    if let Some(b) = cx.get("blocking_op").and_then(Value::as_u64) {
        let _ = writeln!(
            out,
            "{} completed, yet cannot be placed before its completion",
            describe(b)
        );
    }
}

/// A JSON value as text, without quotes around strings.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_fields_are_unknown_not_errors() {
        let r =
            RunResults::parse(r#"{"verdict": 3, "seed": "x", "nodes": 5, "nemesis": ["kill", 1]}"#)
                .unwrap();
        assert_eq!(r.verdict, None);
        assert_eq!(r.verdict_class(), "unknown");
        assert_eq!(r.seed, None);
        assert_eq!(r.nodes, Some(5));
        assert_eq!(r.nemesis, Some(vec!["kill".to_string()]));
    }

    #[test]
    fn garbage_says_why() {
        let err = RunResults::parse("{\"verdict\": \"val").unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = RunResults::parse("[1,2]").unwrap_err();
        assert!(err.contains("not a JSON object"), "{err}");
    }

    #[test]
    fn counterexample_is_put_into_words() {
        let checker = serde_json::json!({
            "verdict": "not_linearizable",
            "model": "kv",
            "stats": {"ops": 10, "parts": 2, "nodes": 99, "elapsed_ms": 70.311336},
            "counterexample": {
                "key": "k3",
                "explanation": "read of a value never written",
                "ops": [
                    {"op": {"id": 4, "process": 2}, "description": "get -> \"x\""},
                    {"op": {"id": 5, "process": 3}, "description": "append(\"y\")"}
                ],
                "initial_state": "\"\"",
                "longest_prefix": [{"op": 5, "state_after": "\"y\""}],
                "stuck_state": "\"y\"",
                "candidates": [{"op": 4, "state_after": null}],
                "blocking_op": 4
            }
        });
        let text = summarise_checker(&checker);
        assert!(text.starts_with("not_linearizable (model kv)"), "{text}");
        assert!(
            text.contains("not linearizable on key k3 (2 operations"),
            "{text}"
        );
        assert!(
            text.contains("why: read of a value never written"),
            "{text}"
        );
        assert!(text.contains("#5 p3 append(\"y\") => \"y\""), "{text}");
        assert!(text.contains("#4 p2 get -> \"x\" is impossible"), "{text}");
        assert!(
            text.contains("cannot be placed before its completion"),
            "{text}"
        );
    }
}

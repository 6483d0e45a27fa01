//! From measured loads to the figures people read: one [`Point`] per
//! client count (the median over runs), the reference beside it, the
//! one-line summary, the text table, and `bench.json`.

use client::load::{LoadReport, OpKind};
use serde::Serialize;

use super::config::BenchConfig;
use super::reference::{self, EtcdFigure};

/// One client count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Concurrent clients.
    pub clients: usize,
    /// Successful operations per second (median over runs).
    pub ops_per_sec: f64,
    /// Median latency, ms (median over runs, like every latency here).
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Operations given up on, summed over runs: a median would hide them.
    pub errors: u64,
    /// etcd's figure at this client count, when the mix is one published
    /// operation and one was published at this count.
    pub etcd: Option<EtcdFigure>,
    /// `ops_per_sec` over etcd's.
    pub ratio: Option<f64>,
    /// What each run measured, in run order.
    pub runs: Vec<LoadReport>,
}

impl Point {
    /// The point of `runs` (non-empty, all at `clients` clients); `kind` is
    /// the mix's only operation, if it has one.
    pub fn of(clients: usize, runs: Vec<LoadReport>, kind: Option<OpKind>) -> Point {
        let ms = |us: u64| us as f64 / 1000.0;
        let ops_per_sec = median(runs.iter().map(|r| r.ops_per_sec));
        let etcd = kind.and_then(|k| reference::lookup(k, clients));
        Point {
            clients,
            ops_per_sec,
            p50_ms: median(runs.iter().map(|r| ms(r.latency_us.p50))),
            p99_ms: median(runs.iter().map(|r| ms(r.latency_us.p99))),
            p999_ms: median(runs.iter().map(|r| ms(r.latency_us.p999))),
            errors: runs.iter().map(|r| r.errors).sum(),
            ratio: etcd.and_then(|e| reference::ratio(ops_per_sec, e.ops_per_sec)),
            etcd,
            runs,
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count);
/// 0 for none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The reference a bench was compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// The system and how it was measured.
    pub source: &'static str,
    /// The operation compared.
    pub op: OpKind,
    /// Every published figure for it.
    pub figures: &'static [EtcdFigure],
    /// How this bench's setup differs from the reference's.
    pub departures: Vec<String>,
}

impl Reference {
    /// The reference for `config`, when its mix is one operation etcd has
    /// figures for.
    pub fn of(config: &BenchConfig) -> Option<Reference> {
        let op = config.mix.only()?;
        let figures = reference::series(op);
        (!figures.is_empty()).then(|| Reference {
            source: reference::SOURCE,
            op,
            figures,
            departures: reference::departures(config),
        })
    }
}

/// `bench.json`: everything a machine needs to read a bench back.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The headline, e.g. `kvd 3 nodes put: 256 clients 21,300 ops/s p99
    /// 9.1 ms (2.35× etcd)`.
    pub summary: String,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Start to the last point, seconds.
    pub elapsed_s: f64,
    /// What ran.
    pub config: BenchConfig,
    /// The reference compared with, if any.
    pub reference: Option<Reference>,
    /// One per client count, ascending.
    pub points: Vec<Point>,
}

/// The headline of a bench: the point of highest throughput, with its
/// ratio to etcd, or else the ratio of the busiest point that has one.
pub fn summary(config: &BenchConfig, points: &[Point]) -> String {
    let head = format!("kvd {} {}", config.shape(), config.mix_name());
    let Some(best) = points
        .iter()
        .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))
    else {
        return format!("{head}: no points");
    };
    let mut line = format!(
        "{head}: {} clients {} ops/s p99 {}",
        best.clients,
        thousands(best.ops_per_sec),
        format_ms(best.p99_ms)
    );
    if let Some(ratio) = best.ratio {
        line.push_str(&format!(" ({ratio:.2}× etcd)"));
    } else if let Some((clients, ratio)) = points
        .iter()
        .rev()
        .find_map(|p| p.ratio.map(|r| (p.clients, r)))
    {
        line.push_str(&format!(" ({ratio:.2}× etcd at {clients} clients)"));
    }
    let errors: u64 = points.iter().map(|p| p.errors).sum();
    if errors > 0 {
        line.push_str(&format!(", {}", plural(errors, "error")));
    }
    line
}

/// The table printed at the end (and shown on the page).
pub fn table(points: &[Point]) -> String {
    let with_etcd = points.iter().any(|p| p.etcd.is_some());
    let mut rows = vec![{
        let mut head = vec!["clients", "ops/s", "p50", "p99", "p99.9", "errors"];
        if with_etcd {
            head.extend(["etcd ops/s", "ours/etcd"]);
        }
        head.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for p in points {
        let mut row = vec![
            p.clients.to_string(),
            thousands(p.ops_per_sec),
            format_ms(p.p50_ms),
            format_ms(p.p99_ms),
            format_ms(p.p999_ms),
            p.errors.to_string(),
        ];
        if with_etcd {
            row.push(p.etcd.map_or("–".into(), |e| thousands(e.ops_per_sec)));
            row.push(p.ratio.map_or("–".into(), |r| format!("{r:.2}×")));
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A rate with thousands separators: `21,300`.
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// `1 run`, `3 runs`.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A latency with about three significant figures: `850 µs`, `9.1 ms`,
/// `27 ms`, `1,200 ms`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".to_string()
    } else if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", thousands(ms))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use client::load::Latency;

    use super::*;

    fn report(clients: usize, ops_per_sec: f64, p99_us: u64, errors: u64) -> LoadReport {
        LoadReport {
            clients,
            duration_s: 8.0,
            warmup_s: 2.0,
            keys: 10_000,
            value_size: 256,
            mix: "put=1".into(),
            seed: 1,
            ops: (ops_per_sec * 8.0) as u64,
            errors,
            ops_per_sec,
            latency_us: Latency {
                p50: p99_us / 4,
                p90: p99_us / 2,
                p99: p99_us,
                p999: p99_us * 2,
                max: p99_us * 3,
                mean: p99_us as f64 / 3.0,
            },
            by_op: BTreeMap::new(),
            by_group: None,
        }
    }

    #[test]
    fn a_point_takes_the_median_of_its_runs_and_sums_their_errors() {
        let runs = vec![
            report(64, 9_000.0, 30_000, 1),
            report(64, 11_000.0, 20_000, 0),
            report(64, 10_000.0, 40_000, 2),
        ];
        let p = Point::of(64, runs, Some(OpKind::Put));
        assert_eq!(p.ops_per_sec, 10_000.0);
        assert_eq!(p.p99_ms, 30.0);
        assert_eq!(p.errors, 3);
        assert_eq!(p.etcd.unwrap().ops_per_sec, 5_483.0);
        assert_eq!(p.ratio, Some(10_000.0 / 5_483.0));
        assert_eq!(p.runs.len(), 3);
    }

    #[test]
    fn an_even_number_of_runs_takes_the_mean_of_the_middle_two() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median([7.0].into_iter()), 7.0);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn mixed_loads_and_unpublished_counts_have_no_reference() {
        let mixed = Point::of(64, vec![report(64, 1.0, 1, 0)], None);
        assert!(mixed.etcd.is_none() && mixed.ratio.is_none());
        let unpublished = Point::of(16, vec![report(16, 1.0, 1, 0)], Some(OpKind::Get));
        assert!(unpublished.etcd.is_none() && unpublished.ratio.is_none());
    }

    #[test]
    fn the_summary_names_the_fastest_point_and_its_ratio() {
        let config = super::super::config::config_from_flags("").unwrap();
        let points = vec![
            Point::of(1, vec![report(1, 800.0, 2_000, 0)], Some(OpKind::Put)),
            Point::of(
                256,
                vec![report(256, 21_300.0, 9_100, 0)],
                Some(OpKind::Put),
            ),
            Point::of(64, vec![report(64, 15_000.0, 8_000, 0)], Some(OpKind::Put)),
        ];
        assert_eq!(
            summary(&config, &points),
            "kvd 3 nodes put: 256 clients 21,300 ops/s p99 9.10 ms (2.35× etcd)"
        );
    }

    #[test]
    fn without_a_ratio_at_the_fastest_point_the_summary_takes_the_busiest_one_with_a_ratio() {
        let config = super::super::config::config_from_flags("--mix get --runs 3").unwrap();
        let points = vec![
            Point::of(1, vec![report(1, 2_103.0, 300, 0)], Some(OpKind::Get)),
            Point::of(64, vec![report(64, 16_682.0, 1_700, 0)], Some(OpKind::Get)),
            Point::of(
                256,
                vec![report(256, 20_000.0, 5_000, 2)],
                Some(OpKind::Get),
            ),
        ];
        assert_eq!(
            summary(&config, &points),
            "kvd 3 nodes get: 256 clients 20,000 ops/s p99 5.00 ms (2.00× etcd at 64 clients), 2 errors"
        );
    }

    #[test]
    fn the_table_lines_up_and_shows_etcd_only_when_it_has_a_figure() {
        let points = vec![
            Point::of(1, vec![report(1, 858.0, 2_600, 0)], Some(OpKind::Get)),
            Point::of(16, vec![report(16, 4_000.0, 12_000, 5)], Some(OpKind::Get)),
        ];
        let text = table(&points);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with("etcd ops/s  ours/etcd"), "{text}");
        assert!(lines[1].ends_with("2,103      0.41×"), "{text}");
        assert!(lines[2].ends_with("–          –"), "{text}");
        assert!(lines[2].contains("4,000"), "{text}");
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
    }

    #[test]
    fn numbers_read_the_way_people_write_them() {
        assert_eq!(thousands(21_300.4), "21,300");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(format_ms(0.44), "440 µs");
        assert_eq!(format_ms(9.1), "9.10 ms");
        assert_eq!(format_ms(27.0), "27.0 ms");
        assert_eq!(format_ms(1_200.0), "1,200 ms");
        assert_eq!(plural(1, "run"), "1 run");
        assert_eq!(plural(0, "error"), "0 errors");
    }
}

//! The figures kvd is held against: etcd 3.4 measured on a machine of the
//! same kind, as BENCHMARKS.md reports them.
//!
//! etcd publishes the system a user would pick instead of kvd, so a
//! benchmark that only printed kvd's figures would not say whether they are
//! good. The reference was taken with `faultline bench`'s defaults (3
//! members on loopback, fsync on, 256-byte values, 10,000 keys, 2 s warm-up
//! then 8 s, median of 3); a run that departs from them still shows the
//! reference, with the departures listed beside it.

use client::load::OpKind;
use serde::Serialize;

use super::config::BenchConfig;

/// One reference point: etcd at a client count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EtcdFigure {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency, where published.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, where published.
    pub p99_ms: Option<f64>,
}

/// Where the figures come from, for the page and `bench.json`.
pub const SOURCE: &str = "etcd 3.4.23 (Debian's etcd-server), 3 members on 127.0.0.1, fsync on, \
     256-byte values, keys uniform over 10,000, 2 s warm-up then 8 s, median of 3 runs, same \
     machine kind (BENCHMARKS.md)";

const fn figure(clients: usize, ops: f64, p50: Option<f64>, p99: Option<f64>) -> EtcdFigure {
    EtcdFigure {
        clients,
        ops_per_sec: ops,
        p50_ms: p50,
        p99_ms: p99,
    }
}

/// Puts, every request to the leader.
const PUTS: [EtcdFigure; 4] = [
    figure(1, 858.0, Some(1.09), Some(2.6)),
    figure(16, 3_171.0, Some(4.7), Some(12.0)),
    figure(64, 5_483.0, Some(10.8), Some(27.0)),
    figure(256, 9_068.0, Some(26.0), Some(69.0)),
];

/// Linearizable gets (etcd's default); fewer points were published.
const GETS: [EtcdFigure; 2] = [
    figure(1, 2_103.0, Some(0.44), None),
    figure(64, 8_341.0, None, None),
];

/// Every published figure for `kind` (none for appends).
pub fn series(kind: OpKind) -> &'static [EtcdFigure] {
    match kind {
        OpKind::Put => &PUTS,
        OpKind::Get => &GETS,
        OpKind::Append => &[],
    }
}

/// The figure for `kind` at exactly `clients`, if one was published.
pub fn lookup(kind: OpKind, clients: usize) -> Option<EtcdFigure> {
    series(kind).iter().copied().find(|f| f.clients == clients)
}

/// Ours over theirs (2.0: twice etcd's throughput); `None` when there is no
/// meaningful quotient.
pub fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (ours.is_finite() && theirs.is_finite() && theirs > 0.0).then(|| ours / theirs)
}

/// What in `config` differs from the setup the reference was measured in;
/// empty when the figures compare like for like.
pub fn departures(config: &BenchConfig) -> Vec<String> {
    let mut out = Vec::new();
    if config.groups > 0 {
        out.push(format!(
            "{} replica groups (etcd: one group)",
            config.groups
        ));
    }
    if config.nodes != 3 {
        out.push(format!("{} nodes per group (etcd: 3)", config.nodes));
    }
    if config.keys != 10_000 {
        out.push(format!("{} keys (etcd: 10,000)", config.keys));
    }
    if config.warmup.as_secs_f64() != 2.0 || config.duration.as_secs_f64() != 8.0 {
        out.push(format!(
            "{} warm-up + {} measured (etcd: 2s + 8s)",
            humantime::format_duration(config.warmup),
            humantime::format_duration(config.duration)
        ));
    }
    if config.runs != 3 {
        out.push(format!(
            "{} of {} run{} (etcd: median of 3)",
            if config.runs == 1 { "result" } else { "median" },
            config.runs,
            if config.runs == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(line: &str) -> BenchConfig {
        super::super::config::config_from_flags(line).unwrap()
    }

    #[test]
    fn puts_have_a_reference_at_every_default_client_count() {
        for clients in [1, 16, 64, 256] {
            assert!(lookup(OpKind::Put, clients).is_some(), "{clients}");
        }
        let at_64 = lookup(OpKind::Put, 64).unwrap();
        assert_eq!(at_64.ops_per_sec, 5_483.0);
        assert_eq!((at_64.p50_ms, at_64.p99_ms), (Some(10.8), Some(27.0)));
    }

    #[test]
    fn gets_have_a_reference_only_where_one_was_published() {
        assert_eq!(lookup(OpKind::Get, 1).unwrap().ops_per_sec, 2_103.0);
        assert_eq!(lookup(OpKind::Get, 64).unwrap().ops_per_sec, 8_341.0);
        assert_eq!(lookup(OpKind::Get, 16), None);
        assert_eq!(lookup(OpKind::Get, 256), None);
    }

    #[test]
    fn other_client_counts_and_appends_have_none() {
        assert_eq!(lookup(OpKind::Put, 32), None);
        assert_eq!(lookup(OpKind::Append, 1), None);
        assert!(series(OpKind::Append).is_empty());
    }

    #[test]
    fn the_ratio_is_ours_over_etcds_and_absent_without_a_divisor() {
        assert_eq!(
            ratio(17_149.5, 5_483.0).map(|r| (r * 1000.0).round()),
            Some(3128.0)
        );
        assert_eq!(ratio(429.0, 858.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 858.0), None);
    }

    #[test]
    fn the_default_setup_departs_only_in_its_number_of_runs() {
        assert_eq!(
            departures(&config("")),
            ["result of 1 run (etcd: median of 3)"]
        );
        assert!(departures(&config("--runs 3")).is_empty());
        let sharded = departures(&config("--groups 2 --keys 100 --runs 3"));
        assert_eq!(
            sharded,
            [
                "2 replica groups (etcd: one group)",
                "100 keys (etcd: 10,000)"
            ]
        );
    }
}

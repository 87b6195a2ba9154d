//! Per validator, over a window of recorded runs: how long it takes (p50, p95, max), how often
//! it times out or crashes, and how much the cache answers; as a table, JSON, or OpenMetrics
//! text for Prometheus (node exporter's textfile collector, or a pushgateway).

use super::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One validator's figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatorStats {
    pub name: String,
    /// Runs in which it ran (not skipped).
    pub runs: u32,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
    pub sum_ms: u64,
    pub timeout_rate: f64,
    pub crash_rate: f64,
    /// Files answered from the cache among the files it was asked to check; `None` when it was
    /// asked to check none.
    pub cache_hit_rate: Option<f64>,
}

/// The nearest-rank percentile `p` (0 to 100) of `sorted`: the smallest value at or below which
/// at least `p`% of the values lie. `None` for no values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The figures of every validator that ran in `runs`, by name.
pub fn of<'a>(runs: impl IntoIterator<Item = &'a Summary>) -> Vec<ValidatorStats> {
    #[derive(Default)]
    struct Tally {
        durations: Vec<u64>,
        timeouts: u32,
        crashes: u32,
        files: u64,
        cached: u64,
    }
    let mut by_name: BTreeMap<&str, Tally> = BTreeMap::new();
    for v in runs
        .into_iter()
        .flat_map(|r| &r.validators)
        .filter(|v| v.ran())
    {
        let t = by_name.entry(&v.name).or_default();
        t.durations.push(v.duration_ms);
        t.timeouts += u32::from(v.status == "timed_out");
        t.crashes += u32::from(v.status == "crashed");
        t.files += u64::from(v.files);
        t.cached += u64::from(v.cached_files);
    }
    by_name
        .into_iter()
        .map(|(name, mut t)| {
            t.durations.sort_unstable();
            let runs = u32::try_from(t.durations.len()).unwrap_or(u32::MAX);
            let rate = |n: u32| f64::from(n) / f64::from(runs);
            ValidatorStats {
                name: name.to_owned(),
                runs,
                p50_ms: percentile(&t.durations, 50.0).unwrap_or(0),
                p95_ms: percentile(&t.durations, 95.0).unwrap_or(0),
                max_ms: t.durations.last().copied().unwrap_or(0),
                sum_ms: t.durations.iter().sum(),
                timeout_rate: rate(t.timeouts),
                crash_rate: rate(t.crashes),
                cache_hit_rate: (t.files > 0).then(|| t.cached as f64 / t.files as f64),
            }
        })
        .collect()
}

/// A table for the terminal.
pub fn human(stats: &[ValidatorStats], runs: usize) -> String {
    if stats.is_empty() {
        return format!("no validator ran in the {runs} runs recorded in this window\n");
    }
    let mut out = format!("over {runs} runs\n");
    let _ = writeln!(
        out,
        "{:<16} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}",
        "validator", "runs", "p50", "p95", "max", "timeout", "crash", "cache hit"
    );
    for s in stats {
        let hit = s
            .cache_hit_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>9} {:>9} {:>9} {:>7.1}% {:>7.1}% {:>9}",
            s.name,
            s.runs,
            seconds(s.p50_ms),
            seconds(s.p95_ms),
            seconds(s.max_ms),
            s.timeout_rate * 100.0,
            s.crash_rate * 100.0,
            hit
        );
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// OpenMetrics text (the Prometheus exposition format's successor, which Prometheus reads):
/// durations as a summary with the 0.5 and 0.95 quantiles, the rest as gauges.
pub fn openmetrics(stats: &[ValidatorStats]) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, unit: Option<&str>, help: &str| {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(unit) = unit {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        let _ = writeln!(out, "# HELP {name} {help}");
    };
    let name = "orchestrator_validator_duration_seconds";
    family(
        &mut out,
        name,
        "summary",
        Some("seconds"),
        "How long a validator's runs took, over the window.",
    );
    for s in stats {
        let v = label(&s.name);
        for (q, ms) in [("0.5", s.p50_ms), ("0.95", s.p95_ms)] {
            let _ = writeln!(
                out,
                "{name}{{validator=\"{v}\",quantile=\"{q}\"}} {}",
                secs(ms)
            );
        }
        let _ = writeln!(out, "{name}_sum{{validator=\"{v}\"}} {}", secs(s.sum_ms));
        let _ = writeln!(out, "{name}_count{{validator=\"{v}\"}} {}", s.runs);
    }
    for gauge in GAUGES {
        family(&mut out, gauge.name, "gauge", Some(gauge.unit), gauge.help);
        for s in stats {
            if let Some(x) = (gauge.value)(s) {
                let _ = writeln!(
                    out,
                    "{}{{validator=\"{}\"}} {x}",
                    gauge.name,
                    label(&s.name)
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A gauge family: its name, unit and help, and how a validator's figures give its value.
struct Gauge {
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    value: fn(&ValidatorStats) -> Option<f64>,
}

const GAUGES: [Gauge; 4] = [
    Gauge {
        name: "orchestrator_validator_duration_max_seconds",
        unit: "seconds",
        help: "The longest of a validator's runs, over the window.",
        value: |s| Some(secs(s.max_ms)),
    },
    Gauge {
        name: "orchestrator_validator_timeout_ratio",
        unit: "ratio",
        help: "The share of a validator's runs that timed out.",
        value: |s| Some(s.timeout_rate),
    },
    Gauge {
        name: "orchestrator_validator_crash_ratio",
        unit: "ratio",
        help: "The share of a validator's runs that crashed.",
        value: |s| Some(s.crash_rate),
    },
    Gauge {
        name: "orchestrator_validator_cache_hit_ratio",
        unit: "ratio",
        help: "The share of a validator's files answered from the cache.",
        value: |s| s.cache_hit_rate,
    },
];

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::tests::summary;
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=20).map(|n| n * 10).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(100));
        assert_eq!(percentile(&sorted, 95.0), Some(190));
        assert_eq!(percentile(&sorted, 100.0), Some(200));
        assert_eq!(percentile(&sorted, 0.0), Some(10));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn figures_per_validator_over_known_runs() {
        // pyright: 10 runs of 1..10 s, one timed out, one crashed; ruff skipped once.
        let mut runs = Vec::new();
        for n in 1..=10u64 {
            let status = match n {
                9 => "timed_out",
                10 => "crashed",
                _ => "passed",
            };
            let ruff = if n == 1 { "skipped" } else { "passed" };
            runs.push(summary(
                0,
                &[("pyright", status, n * 1000), ("ruff", ruff, 20)],
            ));
        }
        let stats = of(&runs);
        let pyright = &stats[0];
        assert_eq!(pyright.name, "pyright");
        assert_eq!(pyright.runs, 10);
        assert_eq!(
            (pyright.p50_ms, pyright.p95_ms, pyright.max_ms),
            (5000, 10000, 10000)
        );
        assert_eq!(pyright.sum_ms, 55_000);
        assert!((pyright.timeout_rate - 0.1).abs() < 1e-9);
        assert!((pyright.crash_rate - 0.1).abs() < 1e-9);
        assert_eq!(pyright.cache_hit_rate, Some(0.5));
        assert_eq!(stats[1].runs, 9, "the skipped run is not counted");
        let text = openmetrics(&stats);
        assert!(text.contains(
            "orchestrator_validator_duration_seconds{validator=\"pyright\",quantile=\"0.95\"} 10\n"
        ));
        assert!(
            text.contains("orchestrator_validator_duration_seconds_count{validator=\"ruff\"} 9\n")
        );
        assert!(text.contains("orchestrator_validator_timeout_ratio{validator=\"pyright\"} 0.1\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# TYPE").count(), 5);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
